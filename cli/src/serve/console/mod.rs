//! The console: the delivery log as a JSON API and as server-rendered HTML pages, on a listener
//! of its own (never routed through the data plane's).
//!
//! Security model:
//! - By default it listens on loopback only. A non-loopback `--console-listen` needs
//!   `--console-token-file`; then every request carries the token (`Authorization: Bearer`, or
//!   the `HttpOnly`, `SameSite=Strict` cookie the login form sets).
//! - Without a token, the `Host` header must name a loopback host (a DNS-rebinding page cannot
//!   read the console through a name of its own).
//! - Every change (redeliver, test) is a POST: forms carry a per-process CSRF token; the JSON
//!   API's POSTs need the `X-Console-Request` header, which a cross-site form cannot send; a
//!   present `Origin` must be the console's own.
//! - Everything shown came from strangers (bodies, header values, found values, delivery ids):
//!   the templates escape it, and a strict Content-Security-Policy (no script at all, styles only
//!   from the console's own stylesheet) holds even if a template slips.
//! - No secret is ever shown: not the webhook's secret, not its URL token, not signature values.

mod api;
pub mod client;
mod pages;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use http::{HeaderValue, Method, StatusCode, header};
use serde_json::{Value, json};
use subtle::ConstantTimeEq as _;

use super::App;
use super::deliveries::{self, Stored};
use super::service::ServeError;
use codepipeline_webhooks::registry::WebhookState;
use codepipeline_webhooks::{Request as Delivery, Verdict};

/// The console's options (of `serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct ConsoleArgs {
    /// Where the console listens: `HOST:PORT` (default a free loopback port, printed on stdout as
    /// `console on http://ADDR`), or `off`. A non-loopback address needs `--console-token-file`.
    #[arg(long, default_value = "127.0.0.1:0", value_name = "ADDR|off")]
    pub console_listen: String,
    /// A file whose content (trimmed, at least 16 characters) is the console's bearer token.
    #[arg(long, value_name = "FILE")]
    pub console_token_file: Option<PathBuf>,
}

/// The console's listener and token, checked before the service starts.
pub(crate) struct Bound {
    listener: tokio::net::TcpListener,
    token: Option<String>,
}

impl std::fmt::Debug for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Bound").field("listener", &self.listener).field("token", &self.token.is_some()).finish()
    }
}

impl Bound {
    /// The address it listens on.
    pub(crate) fn addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }
}

/// Checks the options and binds: `None` for `off`; refused when a non-loopback address has no
/// token.
pub(crate) async fn bind(args: &ConsoleArgs) -> Result<Option<Bound>, ServeError> {
    if args.console_listen.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let addr: SocketAddr = args.console_listen.parse().map_err(|_| {
        ServeError::Config(format!(
            "--console-listen must be HOST:PORT (an IP address) or off, not '{}'",
            args.console_listen
        ))
    })?;
    let token = match &args.console_token_file {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ServeError::Config(format!("cannot read --console-token-file {}: {e}", path.display())))?;
            let token = text.trim().to_owned();
            if token.len() < 16 || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ServeError::Config(
                    "--console-token-file must hold a token of at least 16 printable characters".into(),
                ));
            }
            Some(token)
        }
        None => None,
    };
    if !addr.ip().is_loopback() && token.is_none() {
        return Err(ServeError::Config(format!(
            "refusing to start: the console would listen on {addr}, which is not a loopback address, without a \
             token. Pass --console-token-file FILE, or --console-listen 127.0.0.1:PORT, or --console-listen off"
        )));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    Ok(Some(Bound { listener, token }))
}

/// The console's state: the service, its token and the CSRF token of its forms.
pub(crate) struct Console {
    app: Arc<App>,
    token: Option<String>,
    csrf: String,
}

/// Serves the console until the service stops.
pub(crate) async fn serve(app: Arc<App>, bound: Bound) {
    let mut csrf = [0u8; 32];
    getrandom::fill(&mut csrf).expect("the operating system's random source is available");
    let timeout = app.config.read_timeout;
    let console = Arc::new(Console { app, token: bound.token, csrf: hex::encode(csrf) });
    let router = Router::new()
        .route("/", get(pages::webhooks))
        .route("/webhooks/{name}", get(pages::deliveries))
        .route("/deliveries/{id}", get(pages::delivery))
        .route("/deliveries/{id}/test", post(pages::test))
        .route("/deliveries/{id}/redeliver", post(pages::redeliver))
        .route("/login", get(pages::login_form).post(pages::login))
        .route("/static/console.css", get(stylesheet))
        .route("/api/webhooks", get(api::webhooks))
        .route("/api/webhooks/{name}/deliveries", get(api::deliveries))
        .route("/api/deliveries/{id}", get(api::delivery))
        .route("/api/deliveries/{id}/redeliver", post(api::redeliver))
        .fallback(not_found)
        .layer(axum::middleware::from_fn_with_state(console.clone(), guard))
        .with_state(console);
    super::service::serve_connections(bound.listener, router, None, timeout).await;
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], "not found\n").into_response()
}

async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "max-age=300")],
        include_str!("console.css"),
    )
        .into_response()
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; \
                   frame-ancestors 'none'; base-uri 'none'";

/// The cookie the login form sets.
const COOKIE: &str = "cpw_console";

fn loopback_host(host: &str) -> bool {
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    name.eq_ignore_ascii_case("localhost") || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

fn presented_token(request: &Request) -> Option<&str> {
    let headers = request.headers();
    if let Some(bearer) =
        headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(bearer.trim());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| c.trim().strip_prefix(COOKIE).and_then(|rest| rest.strip_prefix('=')))
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// Host, token, origin and the API's POST header; then the security headers on every answer.
async fn guard(State(console): State<Arc<Console>>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    let api = path.starts_with("/api/");
    let host = request.headers().get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let refused = if console.token.is_none() && !loopback_host(&host) {
        Some((StatusCode::MISDIRECTED_REQUEST, "the console answers only to a loopback host name"))
    } else if let Some(origin) = request.headers().get(header::ORIGIN).and_then(|v| v.to_str().ok())
        && request.method() != Method::GET
        && origin != format!("http://{host}")
        && origin != format!("https://{host}")
    {
        Some((StatusCode::FORBIDDEN, "cross-origin request refused"))
    } else if api && request.method() == Method::POST && !request.headers().contains_key("x-console-request") {
        Some((StatusCode::FORBIDDEN, "the API's POSTs need the X-Console-Request header"))
    } else {
        None
    };
    let mut response = if let Some((status, message)) = refused {
        error(api, status, message)
    } else if let Some(token) = &console.token
        && !(path == "/login" || path.starts_with("/static/"))
        && !presented_token(&request).is_some_and(|t| same(t, token))
    {
        if api {
            error(true, StatusCode::UNAUTHORIZED, "the console needs its token (Authorization: Bearer TOKEN)")
        } else {
            (StatusCode::SEE_OTHER, [(header::LOCATION, "/login")]).into_response()
        }
    } else {
        next.run(request).await
    };
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // same-origin, not no-referrer: with no-referrer a browser sends `Origin: null` on the forms.
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    response
}

/// An error: JSON `{"error": message}` for the API, text for pages.
fn error(api: bool, status: StatusCode, message: &str) -> Response {
    if api {
        (status, [(header::CONTENT_TYPE, "application/json")], json!({ "error": message }).to_string()).into_response()
    } else {
        (status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], format!("{message}\n")).into_response()
    }
}

/// Why a redelivery or a test could not run.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    fn new(status: StatusCode, message: impl Into<String>) -> Refusal {
        Refusal { status, message: message.into() }
    }
}

impl From<super::store::StoreError> for Refusal {
    fn from(e: super::store::StoreError) -> Refusal {
        tracing::warn!(error = %e, "console: the store failed");
        Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the store is unavailable")
    }
}

/// What redelivering (or testing) a stored delivery gave.
#[derive(Debug)]
pub(crate) enum Outcome {
    /// Tested against the current definition: the verdict only.
    Tested(Value),
    /// Delivered again: the answer's status and body, and the new log entry.
    Delivered { status: u16, answer: Value, delivery: Option<i64> },
}

async fn stored(console: &Console, id: i64) -> Result<Stored, Refusal> {
    deliveries::get(&console.app.store, id)
        .await?
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "no such delivery"))
}

fn webhook_state(console: &Console, name: &str) -> Result<WebhookState, Refusal> {
    console
        .app
        .registry
        .export_webhook(name)
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, format!("the webhook '{name}' no longer exists")))
}

/// Evaluates a stored delivery against its webhook's current definition. `dry_run`: the verdict
/// only (compiled apart, so nothing is stamped); otherwise through the data plane's own path
/// (deduplication, execution, the log, with a link to `original`).
pub(crate) async fn redeliver(console: &Console, original: &Stored, dry_run: bool) -> Result<Outcome, Refusal> {
    if original.body_truncated || original.status == 413 {
        return Err(Refusal::new(
            StatusCode::CONFLICT,
            "the body of this delivery was not kept whole (over the cap, too large, or refused before it was read): \
             it cannot be delivered again",
        ));
    }
    let state = webhook_state(console, &original.webhook)?;
    let headers = original.header_map();
    let source: IpAddr = original.source.parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let peer = SocketAddr::new(source, 0);
    if dry_run {
        let verdict = test(console, &state, &headers, &original.body, peer)?;
        return Ok(Outcome::Tested(serde_json::to_value(&verdict).unwrap_or(Value::Null)));
    }
    let app = &console.app;
    let info = app
        .registry
        .resolve_token(&state.token)
        .ok_or_else(|| Refusal::new(StatusCode::NOT_FOUND, "the webhook no longer exists"))?;
    let body = axum::body::Bytes::from(original.body.clone());
    let response = super::data::deliver(app, &info, peer, headers, body, Instant::now(), Some(original.id), None).await;
    let status = response.status().as_u16();
    let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let answer = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    app.deliveries.flush().await;
    let delivery = deliveries::latest_redelivery(&app.store, original.id).await?;
    Ok(Outcome::Delivered { status, answer, delivery })
}

/// The verdict of the webhook as defined now, compiled apart from the registry's copy.
fn test(
    console: &Console,
    state: &WebhookState,
    headers: &http::HeaderMap,
    body: &[u8],
    peer: SocketAddr,
) -> Result<Verdict, Refusal> {
    let definition = &state.definition;
    let pipeline = console.app.registry.pipeline(&definition.target_pipeline).ok_or_else(|| {
        Refusal::new(StatusCode::CONFLICT, format!("the pipeline '{}' no longer exists", definition.target_pipeline))
    })?;
    let config = pipeline
        .first_stage_configuration(&definition.target_action)
        .map_err(|e| Refusal::new(StatusCode::CONFLICT, format!("the webhook cannot trigger: {}", e.message())))?;
    let mut options = super::service::webhook_options(&console.app.config);
    if let (Some(previous), Some(until)) = (&state.previous_secret_token, state.previous_secret_valid_until)
        && until > super::now()
    {
        options = options.accept_previous_secret(previous.clone());
    }
    let webhook = options
        .build(definition, config)
        .map_err(|e| Refusal::new(StatusCode::CONFLICT, format!("the webhook does not compile: {}", e.message())))?;
    Ok(webhook.evaluate(&Delivery::from_headers(headers, body).source_ip(peer)))
}

/// A URL with its token hidden.
pub(crate) fn hidden_url(console: &Console) -> String {
    format!("{}/trigger?t=…&v=1", console.app.config.public_url)
}

/// A time (seconds since the Unix epoch) as RFC 3339 in UTC, to the second.
pub(crate) fn rfc3339(at: f64) -> String {
    let secs = at.max(0.0) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z", rem / 3600, rem % 3600 / 60, rem % 60)
}

/// The body of a form or JSON answer, read under a small cap.
pub(crate) async fn small_body(body: Body) -> Option<axum::body::Bytes> {
    axum::body::to_bytes(body, 16 * 1024).await.ok()
}

#[cfg(test)]
mod tests {
    use super::{loopback_host, rfc3339};

    #[test]
    fn loopback_hosts() {
        for host in ["127.0.0.1:8081", "localhost:1", "[::1]:9", "LOCALHOST", "127.1.2.3"] {
            assert!(loopback_host(host), "{host}");
        }
        for host in ["evil.example:8081", "10.0.0.1:80", "", "[::2]:1", "localhost.evil.example"] {
            assert!(!loopback_host(host), "{host}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(rfc3339(0.0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000.5), "2023-11-14T22:13:20Z");
        assert_eq!(rfc3339(951_782_400.0), "2000-02-29T00:00:00Z");
    }
}
