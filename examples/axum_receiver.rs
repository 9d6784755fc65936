//! A real HTTP receiver for CodePipeline-style webhooks, on axum and hyper.
//!
//! ```sh
//! cargo run -p codepipeline-webhooks --example axum_receiver --features http            # 127.0.0.1:3000
//! cargo run -p codepipeline-webhooks --example axum_receiver --features http -- 0.0.0.0:8080
//! ```
//!
//! It holds a `Registry` loaded with the example webhook (`examples/webhook.json`, targeting the
//! `Source` action configured by `examples/action-configuration.json`) and serves
//! `POST /trigger?t=…&v=1` and answers as the engine's `Verdict::http_answer` says: 202 when the
//! pipeline would start, 200 when a filter did not match (with the reason only for a sender that
//! proved the secret), 403 for an unknown URL, a source address or a signature, 400 for a
//! malformed payload. Every verdict goes to the log (stderr).
//!
//! What a stranger can cost it is bounded:
//! - the URL token is looked up before a byte of the body is read: an unknown one is refused at
//!   once, whatever the body claims to be;
//! - a body is read no further than the webhook's own limit (`Registry::max_body_bytes`): a
//!   `Content-Length` over it is refused (413) before reading, and a body that grows past it
//!   while being read (chunked, or longer than declared) is cut off by `http_body_util::Limited`;
//! - time: hyper closes a connection whose request headers do not arrive within
//!   [`Limits::headers`] (idle connections included), tower-http's `RequestBodyTimeoutLayer` ends
//!   a body that stalls for [`Limits::body_idle`], and its `TimeoutLayer` answers 408 to a request
//!   not done within [`Limits::request`].

use std::error::Error;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{ConnectInfo, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Extension, Json, Router};
use codepipeline_webhooks::registry::{ActionDeclaration, PipelineDeclaration, Registry, StageDeclaration};
use codepipeline_webhooks::{ActionConfiguration, PutWebhookInput, Request};
use http_body_util::{BodyExt, Limited};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower_http::timeout::{RequestBodyTimeoutLayer, TimeoutLayer};

/// The URL token of the demo webhook. Fixed so that the README's `curl` line works as written; a
/// real deployment keeps the registry's default, 256 random bits per webhook.
pub const DEMO_TOKEN: &str = "demo-token-not-for-production";

/// How long the receiver waits for a client.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// For a connection's request headers, from the moment the server reads for them: a new or
    /// kept-alive connection that sends no request is closed after this (hyper's
    /// `header_read_timeout`).
    pub headers: Duration,
    /// The longest pause between two pieces of a body (tower-http's `RequestBodyTimeoutLayer`).
    pub body_idle: Duration,
    /// A whole request, body and evaluation included (tower-http's `TimeoutLayer`, 408).
    pub request: Duration,
}

impl Default for Limits {
    /// GitHub sends a delivery at once and gives up after 10 seconds: nothing legitimate waits
    /// longer.
    fn default() -> Self {
        Self { headers: Duration::from_secs(10), body_idle: Duration::from_secs(10), request: Duration::from_secs(30) }
    }
}

/// The receiver: `POST /trigger?t=…&v=1` against `registry`. It needs `ConnectInfo<SocketAddr>`
/// in each request's extensions, as [`serve`] puts it there.
pub fn app(registry: Arc<Registry>, limits: Limits) -> Router {
    Router::new()
        .route("/trigger", post(trigger))
        .layer(RequestBodyTimeoutLayer::new(limits.body_idle))
        .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, limits.request))
        .with_state(registry)
}

/// Serves [`app`] on `listener`, one hyper HTTP/1 connection per client, with the header read
/// timeout of `limits`. Runs until accepting fails.
pub async fn serve(listener: tokio::net::TcpListener, registry: Arc<Registry>, limits: Limits) -> std::io::Result<()> {
    let app = app(registry, limits);
    loop {
        let (stream, peer) = listener.accept().await?;
        let service = TowerToHyperService::new(app.clone().layer(Extension(ConnectInfo(peer))));
        tokio::spawn(async move {
            let mut http = hyper::server::conn::http1::Builder::new();
            http.timer(TokioTimer::new()).header_read_timeout(limits.headers);
            if let Err(error) = http.serve_connection(TokioIo::new(stream), service).await {
                eprintln!("{peer} connection: {error}");
            }
        });
    }
}

async fn trigger(
    State(registry): State<Arc<Registry>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    request: axum::extract::Request,
) -> Response {
    let (parts, body) = request.into_parts();
    let url = parts.uri.path_and_query().map_or("", |p| p.as_str());
    // The token first: a stranger's body is never read.
    let limit = match registry.max_body_bytes(url) {
        Ok(limit) => limit,
        Err(error) => {
            eprintln!("{peer} {error}");
            return StatusCode::FORBIDDEN.into_response();
        }
    };
    let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        eprintln!("{peer} body of {} bytes declared; the limit is {limit}", declared.unwrap_or_default());
        return StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let body = match Limited::new(body, limit).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(error) => {
            // Over the limit, or stalled past Limits::body_idle.
            eprintln!("{peer} body not read: {error}");
            let status = if error.is::<http_body_util::LengthLimitError>() {
                StatusCode::PAYLOAD_TOO_LARGE
            } else {
                StatusCode::REQUEST_TIMEOUT
            };
            return status.into_response();
        }
    };
    let request = Request::from_parts(&parts, &body).source_ip(peer);
    match registry.trigger(url, &request) {
        Ok(verdict) => {
            eprintln!("{peer} {verdict}");
            // The engine's mapping: 202 trigger, 200 a filter miss (the reason only for a sender
            // that proved the secret), 403 address or signature, 400 a malformed payload.
            let answer = verdict.http_answer();
            let status = StatusCode::from_u16(answer.status()).unwrap_or(StatusCode::FORBIDDEN);
            (status, Json(answer.into_body())).into_response()
        }
        Err(error) => {
            eprintln!("{peer} {error}");
            StatusCode::FORBIDDEN.into_response()
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
    serve(listener, registry, Limits::default()).await?;
    Ok(())
}
