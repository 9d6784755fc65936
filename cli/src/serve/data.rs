//! The data plane: `POST /trigger?t=…&v=1`. The token is looked up before the body is read (an
//! unknown token costs no buffering), the body is read under the webhook's size limit and a
//! timeout, and the registry's verdict becomes the HTTP answer.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, StatusCode, header};
use serde_json::json;

use super::App;
use super::deliveries::{Entry, Started, X_GITHUB_DELIVERY, X_GITHUB_EVENT};
use super::limits::{BodyError, Reservation};
use super::store::{ExecutionRow, QueuedJob, Recorded, TriggerRecord};
use codepipeline_webhooks::registry::Resolved;
use codepipeline_webhooks::{Request, Step, Verdict};

/// How long a repeated `X-GitHub-Delivery` is remembered.
pub const DEDUPE_WINDOW_SECS: f64 = 3600.0;

/// The longest `X-GitHub-Delivery` kept as it is for the duplicate window (GitHub's are 36
/// characters: a GUID).
pub const DELIVERY_ID_KEPT_MAX: usize = 128;

/// What the duplicate window keys a delivery id on: the id itself, or, past
/// [`DELIVERY_ID_KEPT_MAX`] bytes, `sha256:` and the hex of its SHA-256. A header can be tens of
/// kilobytes, and the id is a key of the database's own (on Postgres a primary key, whose
/// b-tree index holds an entry of about 2.7 KB at most: a 20,000-character id that did not
/// compress failed its whole batch of triggers, and the store's readiness with it). Two ids share a key
/// only when one is the other's key (or SHA-256 collides). The delivery log, the on-trigger
/// program's `GITHUB_DELIVERY` and the log lines show this key too, so a redelivery from the
/// console is the same id.
pub fn delivery_key(id: &str) -> std::borrow::Cow<'_, str> {
    use sha2::Digest as _;
    if id.len() <= DELIVERY_ID_KEPT_MAX {
        return std::borrow::Cow::Borrowed(id);
    }
    std::borrow::Cow::Owned(format!("sha256:{}", hex::encode(sha2::Sha256::digest(id.as_bytes()))))
}

/// 503 with `Retry-After`: a bound of the service is reached; the sender may try again.
fn busy() -> Response {
    let mut response = empty(StatusCode::SERVICE_UNAVAILABLE);
    response.headers_mut().insert(header::RETRY_AFTER, http::HeaderValue::from(super::limits::RETRY_AFTER_SECS));
    response
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    // Serialised into bytes: `Value`'s `Display` (`to_string`) goes through a formatter.
    json_bytes(status, serde_json::to_vec(&body).unwrap_or_else(|_| b"{}".to_vec()))
}

/// An answer whose JSON body is already bytes.
fn json_bytes(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// The largest body evaluated on the async worker that read it; larger ones are evaluated on a
/// blocking thread.
const INLINE_EVALUATION_MAX: usize = 64 * 1024;

/// `POST /trigger`: called by the connection's service before axum's router (which routes
/// every other request), so that the busiest path takes no router dispatch, no boxed futures
/// and no copy of its headers (axum's `HeaderMap` extractor clones them).
pub(crate) async fn trigger<B>(app: Arc<App>, peer: SocketAddr, request: http::Request<B>) -> Response
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let started = Instant::now();
    let (parts, body) = request.into_parts();
    let headers = parts.headers;
    // Found before a byte of the body is read, once: the compiled webhook comes with it. The
    // query is read by the registry's rules (the `t` parameter, any order, percent-encoded or
    // not, `v` absent or 1), as the engine's own `Registry::trigger` reads a URL.
    let url = parts.uri.path_and_query().map_or("", http::uri::PathAndQuery::as_str);
    let Some(info) = app.registry.resolve_url(url) else {
        app.metrics.delivery("unknown_token", "none", started.elapsed());
        tracing::info!(outcome = "unknown_token", peer = %peer.ip(), "delivery to an unknown URL");
        return empty(StatusCode::NOT_FOUND);
    };
    if let Some(e) = info.error() {
        // The webhook does not compile against its pipeline as it is now.
        app.metrics.delivery("error", "none", started.elapsed());
        tracing::warn!(webhook = %info.name(), code = e.code(), message = e.message(), "webhook cannot trigger");
        let reason = format!("the webhook cannot trigger: {}: {}", e.code(), e.message());
        app.deliveries.record(Entry::unevaluated(&info, peer, &headers, 409, "webhook", reason, None));
        return empty(StatusCode::CONFLICT);
    }
    let limit = info.max_body_bytes().unwrap_or(app.config.max_body_bytes);
    let declared =
        headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        app.metrics.delivery("too_large", "payload", started.elapsed());
        tracing::info!(webhook = %info.name(), outcome = "too_large", "Content-Length over the limit");
        app.deliveries.record(Entry::too_large(&info, peer, &headers, limit));
        return empty(StatusCode::PAYLOAD_TOO_LARGE);
    }
    // Read into the global budget of buffered bodies (held until this request is answered).
    let deadline = tokio::time::Instant::now() + app.config.read_timeout;
    let (bytes, held): (Bytes, _) = match app.budget.read(body, limit, declared, deadline).await {
        Ok(read) => read,
        Err(BodyError::TooLarge) => {
            app.metrics.delivery("too_large", "payload", started.elapsed());
            tracing::info!(webhook = %info.name(), outcome = "too_large", "body over the limit");
            app.deliveries.record(Entry::too_large(&info, peer, &headers, limit));
            return empty(StatusCode::PAYLOAD_TOO_LARGE);
        }
        Err(BodyError::Busy) => {
            app.metrics.delivery("busy", "none", started.elapsed());
            tracing::warn!(webhook = %info.name(), outcome = "busy", "the body budget is full");
            let reason = "busy: the server's budget of buffered bodies is full; try again".to_owned();
            app.deliveries.record(Entry::unevaluated(&info, peer, &headers, 503, "service", reason, None));
            return busy();
        }
        Err(BodyError::Broken) => {
            app.metrics.delivery("bad_request", "payload", started.elapsed());
            let reason =
                "the request's body could not be read (the connection broke off or its framing is invalid)".to_owned();
            app.deliveries.record(Entry::unevaluated(&info, peer, &headers, 400, "payload", reason, None));
            return empty(StatusCode::BAD_REQUEST);
        }
        Err(BodyError::Timeout) => {
            app.metrics.delivery("bad_request", "payload", started.elapsed());
            tracing::info!(webhook = %info.name(), outcome = "timeout", "body not received in time");
            let reason = format!("the body was not received within {} s", app.config.read_timeout.as_secs_f64());
            app.deliveries.record(Entry::unevaluated(&info, peer, &headers, 408, "payload", reason, None));
            return empty(StatusCode::REQUEST_TIMEOUT);
        }
    };
    deliver(&app, &info, peer, headers, bytes, started, None, Some(held)).await
}

/// A delivery whose body was read: evaluated on the fair pool, answered and recorded in the
/// delivery log. The console's redeliver goes through here too (`redelivery_of`: the log entry
/// it repeats). `held`: the body's room in the budget of buffered bodies, if it took some.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn deliver(
    app: &Arc<App>,
    info: &Resolved,
    peer: SocketAddr,
    headers: HeaderMap,
    bytes: Bytes,
    started: Instant,
    redelivery_of: Option<i64>,
    held: Option<Reservation>,
) -> Response {
    let deadline = tokio::time::Instant::now() + app.config.read_timeout;
    // Evaluated in this webhook's turn of the pool.
    // Short when evaluated inline (below): it may then borrow a slot past the webhook's share.
    let inline = bytes.len() <= INLINE_EVALUATION_MAX;
    let slot = match tokio::time::timeout_at(deadline, app.pool.acquire(info.name(), inline)).await {
        Ok(slot) => slot,
        Err(_) => {
            app.metrics.delivery("busy", "none", started.elapsed());
            tracing::warn!(webhook = %info.name(), outcome = "busy", "no evaluation slot in time");
            let reason = "busy: no evaluation slot within the read timeout; try again".to_owned();
            let entry = Entry::unevaluated(info, peer, &headers, 503, "service", reason, Some(&bytes))
                .redelivery_of(redelivery_of);
            app.deliveries.record(entry);
            return busy();
        }
    };
    // A small body is evaluated here, on the async worker: its cost is bounded by its size
    // (the engine's work budget), tens of microseconds, less than a hand-off to another thread
    // and back. A larger one goes to a blocking thread, so that a flood of megabyte bodies
    // cannot hold up the async workers (and with them /healthz and the control plane). Either
    // way it holds its webhook's slot of the fair pool while it runs.
    let (evaluated, headers, _held) = if inline {
        let request = Request::from_headers(&headers, &bytes).source_ip(peer);
        let verdict = app.registry.evaluate_resolved(info, &request);
        drop(slot);
        (verdict, headers, held)
    } else {
        // The slot and the body's room in the budget go with the evaluation: if the sender goes
        // away meanwhile (this future is dropped), they are freed when the work ends, not before.
        // The headers go to the evaluation and come back with its verdict (moved, not copied).
        let task = {
            let (app, info, bytes) = (app.clone(), info.clone(), bytes.clone());
            tokio::task::spawn_blocking(move || {
                let request = Request::from_headers(&headers, &bytes).source_ip(peer);
                let verdict = app.registry.evaluate_resolved(&info, &request);
                drop(slot);
                (verdict, headers, held)
            })
        };
        let Ok(done) = task.await else {
            app.metrics.delivery("error", "none", started.elapsed());
            tracing::error!(webhook = %info.name(), "the evaluation task failed");
            return empty(StatusCode::INTERNAL_SERVER_ERROR);
        };
        done
    };
    let verdict = match evaluated {
        Ok(v) => v,
        Err(e) => {
            app.metrics.delivery("error", "none", started.elapsed());
            tracing::warn!(webhook = %info.name(), code = e.code(), message = e.message(), "webhook cannot trigger");
            let reason = format!("the webhook cannot trigger: {}: {}", e.code(), e.message());
            let entry = Entry::unevaluated(info, peer, &headers, 409, "webhook", reason, Some(&bytes))
                .redelivery_of(redelivery_of);
            app.deliveries.record(entry);
            return empty(StatusCode::CONFLICT);
        }
    };
    let body = app.deliveries.enabled().then(|| bytes.clone());
    // When it was evaluated, not when its trigger is committed (which may wait for the database).
    let received_at = super::now();
    let response = answer(app, info, &headers, &verdict, bytes, started).await;
    // Not at all without a log; the verdict moves into the entry, which the log's writer
    // serialises only if it writes it.
    if let Some(body) = body {
        let entry = Entry::new(info, peer, &headers, verdict, &body, app.deliveries.body_cap(), received_at);
        app.deliveries.record(entry.redelivery_of(redelivery_of).answered(&response));
    }
    response
}

fn header_str<'h>(headers: &'h HeaderMap, name: &HeaderName) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

async fn answer(
    app: &Arc<App>,
    info: &Resolved,
    headers: &HeaderMap,
    verdict: &Verdict,
    payload: Bytes,
    started: Instant,
) -> Response {
    let event = header_str(headers, &X_GITHUB_EVENT);
    let is_ping = event == Some("ping");
    match verdict.rejection() {
        None => {
            if is_ping {
                app.metrics.delivery("ping", "none", started.elapsed());
                tracing::info!(webhook = %info.name(), outcome = "ping", "authenticated ping");
                return json_response(StatusCode::OK, json!({"ignored": "ping"}));
            }
            // The duplicate window's key, also what the log shows: never the header whole.
            let delivery = header_str(headers, &X_GITHUB_DELIVERY).map(delivery_key);
            let now = super::now();
            let id = super::execution_id();
            let running = app.runner.is_some();
            // What it runs: the head commit the delivery names, for the target action.
            let revision = super::revisions::payload_json(header_str(headers, &header::CONTENT_TYPE), &payload)
                .and_then(|p| super::revisions::source_revision(verdict.target_action(), &p));
            let source_revisions = serde_json::to_string(&revision.iter().collect::<Vec<_>>()).unwrap_or_default();
            let execution = ExecutionRow {
                seq: 0,
                id: id.clone(),
                pipeline: verdict.target_pipeline().to_owned(),
                pipeline_version: app.registry.pipeline_version(verdict.target_pipeline()).unwrap_or(1),
                status: if running { "InProgress" } else { "Succeeded" }.to_owned(),
                status_summary: None,
                webhook_arn: app.registry.webhook_arn(verdict.webhook_name()),
                start_time: now,
                last_update_time: now,
                trigger_type: "Webhook".to_owned(),
                source_revisions,
                stop_reason: None,
            };
            let record = TriggerRecord {
                webhook: verdict.webhook_name().to_owned(),
                delivery: delivery.as_deref().map(str::to_owned),
                dedupe_after: now - DEDUPE_WINDOW_SECS,
                execution,
                instance: running.then(|| app.instance.clone()),
                // Spooled to the database in the same transaction: it waits there, not here.
                job: running.then(|| QueuedJob {
                    event: event.unwrap_or_default().to_owned(),
                    payload: payload.clone(),
                    queue_max: app.config.queue_max,
                }),
            };
            // Bounded like the rest of the delivery: a database that stops answering gets the
            // sender a 503 (and its retry, if the write lands after all, is a duplicate).
            let recorded = match tokio::time::timeout(app.config.read_timeout, app.recorder.record(record)).await {
                Ok(recorded) => recorded,
                Err(_) => Err(super::store::StoreError::new("the database did not answer in time")),
            };
            match recorded {
                Ok(Recorded::Started) => {}
                Ok(Recorded::Duplicate) => {
                    app.metrics.delivery("duplicate", "none", started.elapsed());
                    tracing::info!(webhook = %info.name(), outcome = "duplicate", delivery = delivery.as_deref(), "repeated delivery id");
                    return json_response(StatusCode::OK, json!({"ignored": "duplicate delivery"}));
                }
                Ok(Recorded::QueueFull) => {
                    app.metrics.delivery("queue_full", "none", started.elapsed());
                    tracing::warn!(webhook = %info.name(), outcome = "queue_full", "the on-trigger queue is full");
                    return busy();
                }
                Err(e) => {
                    app.metrics.delivery("error", "none", started.elapsed());
                    tracing::error!(webhook = %info.name(), error = %e, "could not record the execution");
                    return empty(StatusCode::SERVICE_UNAVAILABLE);
                }
            }
            drop(payload);
            if let Some(runner) = &app.runner {
                runner.wake();
            }
            app.metrics.delivery("started", "none", started.elapsed());
            tracing::info!(webhook = %info.name(), pipeline = verdict.target_pipeline(), execution = %id, outcome = "started", previous_secret = verdict.used_previous_secret(), "pipeline started");
            let mut response = json_response(StatusCode::ACCEPTED, json!({"pipelineExecutionId": id}));
            response.extensions_mut().insert(Started(id));
            response
        }
        Some(rejection) => {
            // The engine's one mapping from a verdict to what the sender is told (status, and a
            // reason only for a sender that proved the secret); the service adds metrics and logs.
            let step = rejection.step();
            let elapsed = started.elapsed();
            // The body is written as bytes in one pass (no `Value` built and serialised), and
            // only by the arms that send it: the mismatching delivery is the busiest answer of a
            // receiver.
            let status = StatusCode::from_u16(verdict.http_status()).unwrap_or(StatusCode::FORBIDDEN);
            match step {
                Step::SourceIp | Step::Signature => {
                    app.metrics.delivery("rejected", step.as_str(), elapsed);
                    tracing::info!(webhook = %info.name(), outcome = "rejected", step = step.as_str(), reason = %rejection, "delivery refused");
                    empty(status)
                }
                Step::Payload if status == StatusCode::PAYLOAD_TOO_LARGE => {
                    app.metrics.delivery("too_large", step.as_str(), elapsed);
                    empty(status)
                }
                Step::Payload => {
                    app.metrics.delivery("bad_request", step.as_str(), elapsed);
                    tracing::info!(webhook = %info.name(), outcome = "bad_request", reason = %rejection, "malformed payload");
                    json_bytes(status, verdict.http_answer_json().1)
                }
                // Step::Filter, and any step a later engine adds (Step is non-exhaustive).
                _ if is_ping => {
                    app.metrics.delivery("ping", "none", elapsed);
                    let body = if verdict.proves_secret() { json!({"ignored": "ping"}) } else { json!({}) };
                    json_response(StatusCode::OK, body)
                }
                _ => {
                    app.metrics.delivery("ignored", step.as_str(), elapsed);
                    // The common case of a busy receiver (every push to every branch): debug, so that
                    // the log holds the triggers and the refusals (measured: a line per delivery is
                    // about 10 % of the data plane's CPU).
                    tracing::debug!(webhook = %info.name(), outcome = "ignored", reason = %rejection, "filters did not match");
                    json_bytes(status, verdict.http_answer_json().1)
                }
            }
        }
    }
}

/// The default read timeout of a delivery's body.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_delivery_id_past_the_bound_is_keyed_by_its_digest() {
        let guid = "72d3162e-cc78-11e3-81ab-4c9367dc0958";
        assert_eq!(delivery_key(guid), guid);
        let at_bound = "a".repeat(DELIVERY_ID_KEPT_MAX);
        assert_eq!(delivery_key(&at_bound), at_bound.as_str());
        let long = "b".repeat(20_000);
        let key = delivery_key(&long);
        // `head -c 20000 /dev/zero | tr '\\0' b | sha256sum`
        assert_eq!(key, "sha256:49a82a41772cfafe8b77be495a8d2fea49cd67100810a2911c12b524d6bf8b51");
        assert_eq!(delivery_key(&long), key, "the same id, the same key");
        let other = format!("{}c", "b".repeat(19_999));
        assert_ne!(delivery_key(&other), key, "ids that differ only at the end stay distinct");
        // Just past the bound is hashed too (so no id longer than the bound reaches a table).
        assert!(delivery_key(&"a".repeat(DELIVERY_ID_KEPT_MAX + 1)).starts_with("sha256:"));
    }
}
