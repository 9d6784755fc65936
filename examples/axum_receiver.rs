//! A real HTTP receiver for CodePipeline-style webhooks, on axum.
//!
//! ```sh
//! cargo run --example axum_receiver --features http            # listens on 127.0.0.1:3000
//! cargo run --example axum_receiver --features http -- 0.0.0.0:8080
//! ```
//!
//! It holds a `Registry` loaded with the example webhook (`examples/webhook.json`, targeting the
//! `Source` action configured by `examples/action-configuration.json`) and serves
//! `POST /trigger?t=…&v=1`: 202 when the pipeline would start, 403 for anything else, whatever
//! the reason (an unknown URL, a bad signature, a filter), so that the caller learns nothing; the
//! reason goes to the log (stderr).

use std::collections::HashMap;
use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use codepipeline_webhooks::registry::{ActionDeclaration, PipelineDeclaration, Registry, StageDeclaration};
use codepipeline_webhooks::{ActionConfiguration, DEFAULT_MAX_BODY_BYTES, PutWebhookInput, Request};

/// The URL token of the demo webhook. Fixed so that the README's `curl` line works as written; a
/// real deployment keeps the registry's default, 256 random bits per webhook.
pub const DEMO_TOKEN: &str = "demo-token-not-for-production";

/// The receiver: `POST /trigger?t=…&v=1` against `registry`.
pub fn app(registry: Arc<Registry>) -> Router {
    Router::new()
        .route("/trigger", post(trigger))
        .layer(DefaultBodyLimit::max(DEFAULT_MAX_BODY_BYTES))
        .with_state(registry)
}

async fn trigger(
    State(registry): State<Arc<Registry>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let token = query.get("t").map(String::as_str).unwrap_or_default();
    let request = Request::from_headers(&headers, &body).source_ip(peer);
    match registry.trigger_token(token, &request) {
        Ok(verdict) => {
            eprintln!("{peer} {verdict}");
            if verdict.is_trigger() { StatusCode::ACCEPTED } else { StatusCode::FORBIDDEN }
        }
        Err(error) => {
            eprintln!("{peer} {error}");
            StatusCode::FORBIDDEN
        }
    }
}

/// A registry holding the example webhook under [`DEMO_TOKEN`], its pipeline's first stage built
/// from the example action configuration.
pub fn demo_registry() -> Result<Registry, Box<dyn Error>> {
    let root = env!("CARGO_MANIFEST_DIR");
    let input = PutWebhookInput::from_json(&std::fs::read_to_string(format!("{root}/examples/webhook.json"))?)?;
    let configuration: ActionConfiguration =
        serde_json::from_str(&std::fs::read_to_string(format!("{root}/examples/action-configuration.json"))?)?;
    let source =
        ActionDeclaration { name: input.webhook.target_action.clone(), configuration, other: Default::default() };
    let pipeline = PipelineDeclaration {
        name: input.webhook.target_pipeline.clone(),
        stages: vec![StageDeclaration { name: "Source".into(), actions: vec![source], other: Default::default() }],
        other: Default::default(),
    };
    let registry = Registry::builder()
        .region("us-east-1")
        .account_id("111111111111")
        .token_source(|| DEMO_TOKEN.to_owned())
        .build()?;
    registry.put_pipeline(pipeline)?;
    registry.put_webhook(input)?;
    Ok(registry)
}

#[allow(dead_code)] // Not used when the integration test includes this file as a module.
#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let addr: SocketAddr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:3000".into()).parse()?;
    let registry = Arc::new(demo_registry()?);
    let listener = tokio::net::TcpListener::bind(addr).await?;
    eprintln!("listening on http://{}/trigger?t={DEMO_TOKEN}&v=1", listener.local_addr()?);
    axum::serve(listener, app(registry).into_make_service_with_connect_info::<SocketAddr>()).await?;
    Ok(())
}
