//! The console's HTML pages (maud: every interpolated value is escaped). No script; one
//! stylesheet served by the console.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};
use maud::{DOCTYPE, Markup, html};
use serde_json::Value;

use super::api::{PageQuery, webhook_json};
use super::{COOKIE, Console, Outcome, Refusal, rfc3339, same, small_body};
use crate::serve::deliveries::{self, Stored};

/// The most characters of a body a page shows.
const SHOWN_BODY: usize = 64 * 1024;

fn page(title: &str, main: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · codepipeline-webhooks console" }
                link rel="stylesheet" href="/static/console.css";
            }
            body {
                header { nav aria-label="Console" { a href="/" { "Webhooks" } } }
                main { (main) }
            }
        }
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

fn problem(r: &Refusal) -> Response {
    let mut response = page("Error", html! { h1 { "Error" } p role="alert" { (r.message) } });
    *response.status_mut() = r.status;
    response
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

/// `GET /`: the webhooks.
pub(crate) async fn webhooks(State(console): State<Arc<Console>>) -> Response {
    let stamps = match console.app.last_triggered().await {
        Ok(stamps) => stamps,
        Err(e) => return problem(&e.into()),
    };
    let hooks: Vec<Value> =
        console.app.registry.webhook_names().iter().filter_map(|n| webhook_json(&console, n, &stamps)).collect();
    page(
        "Webhooks",
        html! {
            h1 { "Webhooks" }
            @if hooks.is_empty() {
                p { "No webhooks yet: create one with PutWebhook." }
            } @else {
                table {
                    caption { "Every webhook, with the filters a delivery must pass" }
                    thead { tr {
                        th scope="col" { "Name" } th scope="col" { "Pipeline" } th scope="col" { "Authentication" }
                        th scope="col" { "Filters" } th scope="col" { "URL" } th scope="col" { "Last triggered" }
                    } }
                    tbody {
                        @for h in &hooks {
                            @let name = h["name"].as_str().unwrap_or_default();
                            tr {
                                th scope="row" data-label="Name" { a href={ "/webhooks/" (path_segment(name)) } { (name) } }
                                td data-label="Pipeline" { (text(&h["targetPipeline"])) " (" (text(&h["targetAction"])) ")" }
                                td data-label="Authentication" { (text(&h["authentication"])) }
                                td data-label="Filters" {
                                    ul { @for f in h["filters"].as_array().into_iter().flatten() {
                                        li { code { (text(&f["jsonPath"])) }
                                            @if let Some(m) = f["matchEquals"].as_str() { " = " code { (m) } } }
                                    } }
                                }
                                td data-label="URL" { code { (text(&h["url"])) } }
                                td data-label="Last triggered" {
                                    @match h["lastTriggered"].as_f64() { Some(t) => time datetime=(rfc3339(t)) { (rfc3339(t)) }, None => "never" }
                                }
                            }
                        }
                    }
                }
            }
        },
    )
}

/// A name as one URL path segment.
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Why, for a delivery of the log: the service's reason when it decided (a ping, a repeat),
/// otherwise the engine's.
fn delivery_why(d: &Stored) -> Markup {
    match d.service_reason() {
        Some(why) => html! { span.reason { (why) } },
        None => reason_words(&d.verdict),
    }
}

fn reason_words(verdict: &Value) -> Markup {
    html! {
        @if let Some(reason) = verdict.get("reason").and_then(Value::as_str) {
            span.reason { (reason) }
            @if let Some(path) = verdict.get("json_path").and_then(Value::as_str) {
                dl.filter {
                    dt { "Path" } dd { code { (path) } }
                    dt { "Expected" } dd { code { (verdict.get("expected").map_or("(any value)".to_owned(), text)) } }
                    dt { "Found" } dd { code { (verdict.get("found").map_or("nothing".to_owned(), text)) } }
                }
            }
        } @else if verdict.get("decision").and_then(Value::as_str) == Some("trigger") {
            "the filters match"
        }
    }
}

/// `GET /webhooks/{name}`: its recent deliveries.
pub(crate) async fn deliveries(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let before = match query.before() {
        Ok(b) => b,
        Err(r) => return problem(&r),
    };
    let limit = query.limit();
    let (rows, more) = match deliveries::page(&console.app.store, &name, before, limit).await {
        Ok(page) => page,
        Err(e) => return problem(&e.into()),
    };
    if rows.is_empty() && before.is_none() && console.app.registry.export_webhook(&name).is_none() {
        return problem(&Refusal::new(StatusCode::NOT_FOUND, "no such webhook"));
    }
    let next = more.then(|| rows.last().map(|r| r.id)).flatten();
    page(
        &format!("Deliveries of {name}"),
        html! {
            h1 { "Recent deliveries of " (name) }
            @if rows.is_empty() {
                p { "No deliveries recorded." }
            } @else {
                table.deliveries {
                    caption { "Newest first; green rows started the pipeline" }
                    thead { tr {
                        th scope="col" { "Received" } th scope="col" { "Event" } th scope="col" { "Delivery" }
                        th scope="col" { "Status" } th scope="col" { "Outcome" } th scope="col" { "Why" }
                    } }
                    tbody {
                        @for d in &rows {
                            tr class=(d.outcome()) {
                                td data-label="Received" { a href={ "/deliveries/" (d.id) } { time datetime=(rfc3339(d.received_at)) { (rfc3339(d.received_at)) } } }
                                td data-label="Event" { (d.event.as_deref().unwrap_or("-")) }
                                td data-label="Delivery" { code { (d.delivery.as_deref().unwrap_or("-")) } }
                                td data-label="Status" { (d.status) }
                                td data-label="Outcome" {
                                    (d.outcome())
                                    @if let Some(e) = &d.execution_id { br; "execution " code { (e) } }
                                    @if let Some(o) = d.redelivery_of { br; "redelivery of " a href={ "/deliveries/" (o) } { "#" (o) } }
                                }
                                td data-label="Why" { (delivery_why(d)) }
                            }
                        }
                    }
                }
                @if let Some(n) = next {
                    p { a href={ "/webhooks/" (path_segment(&name)) "?cursor=" (n) } { "Older deliveries" } }
                }
            }
        },
    )
}

fn pretty_body(d: &Stored) -> String {
    let shown = if let Ok(v) = serde_json::from_slice::<Value>(&d.body) {
        serde_json::to_string_pretty(&v).unwrap_or_default()
    } else {
        String::from_utf8_lossy(&d.body).into_owned()
    };
    if shown.chars().count() > SHOWN_BODY {
        let mut cut: String = shown.chars().take(SHOWN_BODY).collect();
        cut.push_str("\n… (cut)");
        cut
    } else {
        shown
    }
}

fn delivery_page(console: &Console, d: &Stored, result: Option<Markup>) -> Response {
    let csrf = &console.csrf;
    page(
        &format!("Delivery {}", d.id),
        html! {
            h1 { "Delivery " (d.id) " to " a href={ "/webhooks/" (path_segment(&d.webhook)) } { (d.webhook) } }
            @if let Some(result) = result { section.result aria-live="polite" { (result) } }
            dl.summary {
                dt { "Received" } dd { (rfc3339(d.received_at)) }
                dt { "Source address" } dd { (d.source) }
                dt { "Event" } dd { (d.event.as_deref().unwrap_or("-")) }
                dt { "Delivery id" } dd { code { (d.delivery.as_deref().unwrap_or("-")) } }
                dt { "Status answered" } dd { (d.status) }
                dt { "Outcome" } dd class=(d.outcome()) { (d.outcome()) }
                @if let Some(e) = &d.execution_id { dt { "Execution" } dd { code { (e) } } }
                @if let Some(o) = d.redelivery_of { dt { "Redelivery of" } dd { a href={ "/deliveries/" (o) } { "#" (o) } } }
                dt { "Why" } dd { (delivery_why(d)) }
            }
            form method="post" action={ "/deliveries/" (d.id) "/test" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Test against the current definition" }
            }
            form method="post" action={ "/deliveries/" (d.id) "/redeliver" } {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" { "Redeliver" }
            }
            h2 { "Headers" }
            table {
                caption { "Headers kept (signature values are not shown)" }
                thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
                tbody { @for (n, v) in d.shown_headers() { tr { th scope="row" { (n) } td { code { (v) } } } } }
            }
            h2 { "Body" }
            p { (d.body_size) " bytes" @if d.body_truncated { @if d.body.is_empty() { ", not kept" } @else { ", kept up to the cap" } } }
            pre.body { code { (pretty_body(d)) } }
        },
    )
}

/// `GET /deliveries/{id}`.
pub(crate) async fn delivery(State(console): State<Arc<Console>>, Path(id): Path<i64>) -> Response {
    match super::stored(&console, id).await {
        Ok(d) => delivery_page(&console, &d, None),
        Err(r) => problem(&r),
    }
}

/// The CSRF token of a posted form.
async fn form_ok(console: &Console, body: Body) -> bool {
    let Some(bytes) = small_body(body).await else { return false };
    let fields: Vec<(String, String)> = form_fields(&bytes);
    fields.iter().any(|(k, v)| k == "csrf" && same(v, &console.csrf))
}

/// `application/x-www-form-urlencoded` fields.
fn form_fields(bytes: &[u8]) -> Vec<(String, String)> {
    fn decode(s: &[u8]) -> String {
        let mut out = Vec::with_capacity(s.len());
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'+' => out.push(b' '),
                b'%' if i + 2 < s.len() => {
                    match std::str::from_utf8(&s[i + 1..i + 3]).ok().and_then(|h| u8::from_str_radix(h, 16).ok()) {
                        Some(b) => {
                            out.push(b);
                            i += 2;
                        }
                        None => out.push(b'%'),
                    }
                }
                b => out.push(b),
            }
            i += 1;
        }
        String::from_utf8_lossy(&out).into_owned()
    }
    bytes
        .split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (decode(&pair[..eq]), decode(&pair[eq + 1..])),
            None => (decode(pair), String::new()),
        })
        .collect()
}

/// `POST /deliveries/{id}/test`: the page again, with the verdict of the current definition.
pub(crate) async fn test(State(console): State<Arc<Console>>, Path(id): Path<i64>, body: Body) -> Response {
    if !form_ok(&console, body).await {
        return problem(&Refusal::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page",
        ));
    }
    let d = match super::stored(&console, id).await {
        Ok(d) => d,
        Err(r) => return problem(&r),
    };
    let result = match super::redeliver(&console, &d, true).await {
        Ok(Outcome::Tested(verdict)) => {
            let trigger = verdict.get("decision").and_then(Value::as_str) == Some("trigger");
            html! {
                h2 { "Against the current definition" }
                p class=(if trigger { "started" } else { "ignored" }) {
                    @if trigger { "It would start the pipeline." } @else { "It would not start the pipeline: " }
                }
                (reason_words(&verdict))
            }
        }
        Ok(Outcome::Delivered { .. }) => html! {},
        Err(r) => html! { h2 { "Against the current definition" } p role="alert" { (r.message) } },
    };
    delivery_page(&console, &d, Some(result))
}

/// `POST /deliveries/{id}/redeliver`: delivered again; to the new entry's page.
pub(crate) async fn redeliver(State(console): State<Arc<Console>>, Path(id): Path<i64>, body: Body) -> Response {
    if !form_ok(&console, body).await {
        return problem(&Refusal::new(
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page",
        ));
    }
    let d = match super::stored(&console, id).await {
        Ok(d) => d,
        Err(r) => return problem(&r),
    };
    match super::redeliver(&console, &d, false).await {
        Ok(Outcome::Delivered { delivery: Some(new), .. }) => {
            (StatusCode::SEE_OTHER, [(header::LOCATION, format!("/deliveries/{new}"))]).into_response()
        }
        Ok(_) => problem(&Refusal::new(StatusCode::SERVICE_UNAVAILABLE, "the redelivery was not recorded")),
        Err(r) => problem(&r),
    }
}

/// `GET /login`.
pub(crate) async fn login_form(State(console): State<Arc<Console>>) -> Response {
    page(
        "Log in",
        html! {
            h1 { "Log in" }
            form method="post" action="/login" {
                input type="hidden" name="csrf" value=(console.csrf);
                label for="token" { "Console token" }
                input id="token" type="password" name="token" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// `POST /login`: sets the cookie when the token is right.
pub(crate) async fn login(State(console): State<Arc<Console>>, body: Body) -> Response {
    let Some(token) = &console.token else {
        return (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
    };
    let fields = match small_body(body).await {
        Some(b) => form_fields(&b),
        None => Vec::new(),
    };
    // The form's CSRF token too: no other site can log a browser in to this console (with a
    // token it learnt), whatever the browser sends as `Origin`.
    let from_the_form = fields.iter().any(|(k, v)| k == "csrf" && same(v, &console.csrf));
    if from_the_form && fields.iter().any(|(k, v)| k == "token" && same(v, token)) {
        let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, "/")]).into_response();
        if let Ok(cookie) = HeaderValue::from_str(&format!("{COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/")) {
            response.headers_mut().insert(header::SET_COOKIE, cookie);
        }
        return response;
    }
    let mut response =
        page("Log in", html! { h1 { "Log in" } p role="alert" { "Wrong token." } a href="/login" { "Try again" } });
    *response.status_mut() = StatusCode::UNAUTHORIZED;
    response
}
