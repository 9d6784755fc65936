//! `codepipeline-webhooks serve`: the PutWebhook API over the AWS protocol (JSON 1.1, SigV4), a
//! receiver for deliveries, executions, and SQLite persistence. The service calls the
//! [`registry`](crate::registry), never the other way round.
//!
//! Modules, one job each: [`control`] (the AWS JSON 1.1 decoder and error shape; pure, so it is
//! also built alone by feature `control-plane` for fuzzing), and with feature `server`: `api`
//! (operations against the state), `sigv4` (request verification), `data` (the `/trigger`
//! receiver), `store` (SQLite: the one module a Postgres backend would replace), `executions`
//! (the on-trigger runner), `metrics`, and the service itself (configuration, routes, startup,
//! shutdown).

pub mod control;

#[cfg(feature = "server")]
mod api;
#[cfg(feature = "server")]
pub mod data;
#[cfg(feature = "server")]
pub mod executions;
#[cfg(feature = "server")]
pub mod metrics;
#[cfg(feature = "server")]
mod service;
#[cfg(feature = "server")]
pub mod sigv4;
#[cfg(feature = "server")]
pub mod store;

#[cfg(feature = "server")]
pub(crate) use service::{App, TokenInfo, now, uuid};
#[cfg(feature = "server")]
pub use service::{LogFormat, ServeArgs, ServeConfig, ServeError, config, main, run};
