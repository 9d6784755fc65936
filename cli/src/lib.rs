//! The library behind the `codepipeline-webhooks` binary: the service that `serve` runs. It is
//! built on the engine crate's public API only (`codepipeline_webhooks`), never the other way
//! round; crates that embed webhooks depend on the engine, not on this crate.
//!
//! Feature `serve` (default) brings the service's I/O (tokio, axum, SQLite, SigV4). Without it,
//! only [`serve::control`], the pure AWS JSON 1.1 decoder, builds: what the `control_plane` fuzz
//! target links.
#![forbid(unsafe_code)]
#![warn(missing_docs, missing_debug_implementations)]

pub mod serve;
