//! `codepipeline-webhooks serve`: the PutWebhook API over the AWS protocol (JSON 1.1, SigV4), a
//! receiver for deliveries, executions, and SQLite persistence. The service calls the
//! [`registry`](codepipeline_webhooks::registry), never the other way round.
//!
//! Modules, one job each: [`control`] (the AWS JSON 1.1 decoder and error shape; pure, so it is
//! also built alone, without the default feature `serve`, for fuzzing), and with feature `serve`: `api`
//! (operations against the state), `sigv4` (request verification), `data` (the `/trigger`
//! receiver), `store` (the database, SQLite or Postgres, through sqlx), `dedupe` (SQLite's
//! duplicate window, in memory), `executions`
//! (the on-trigger runner and its durable queue), `limits` (the budget of buffered bodies), `pool`
//! (the fair evaluation pool), `procgroup` (the programs' process groups), `metrics`,
//! `deliveries` (the delivery log), `console` (its API and pages, on a listener of its own), and
//! the service itself (configuration, routes, startup, shutdown).

pub mod control;

#[cfg(feature = "serve")]
mod api;
#[cfg(feature = "serve")]
pub mod console;
#[cfg(feature = "serve")]
pub mod data;
#[cfg(feature = "serve")]
mod dedupe;
#[cfg(feature = "serve")]
pub mod deliveries;
#[cfg(feature = "serve")]
pub mod executions;
#[cfg(feature = "serve")]
pub mod limits;
#[cfg(feature = "serve")]
mod logbuf;
#[cfg(feature = "serve")]
pub mod metrics;
mod modes;
#[cfg(feature = "serve")]
pub mod pool;
#[cfg(feature = "serve")]
pub mod procgroup;
mod revisions;
#[cfg(feature = "serve")]
mod runs;
#[cfg(feature = "serve")]
mod service;
#[cfg(feature = "serve")]
pub mod sigv4;
#[cfg(feature = "serve")]
pub mod store;

#[cfg(feature = "serve")]
pub(crate) use service::{App, execution_id, now};
#[cfg(feature = "serve")]
pub use service::{LogFormat, ServeArgs, ServeConfig, ServeError, config, main, run};
