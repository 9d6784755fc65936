//! The console's JSON API: webhooks, a webhook's deliveries (newest first, paged by a cursor),
//! one delivery, and redeliver (or its dry run).

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use http::{StatusCode, header};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Console, Outcome, Refusal, error, hidden_url};
use crate::serve::deliveries;

/// The most deliveries one page holds.
pub(crate) const MAX_LIMIT: usize = 500;

fn json_ok(value: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], value.to_string()).into_response()
}

fn refused(r: Refusal) -> Response {
    error(true, r.status, &r.message)
}

/// A webhook as the console shows it: never its secret, never its URL token; `stamps`: every
/// webhook's `lastTriggered` (`App::last_triggered`).
pub(crate) fn webhook_json(console: &Console, name: &str, stamps: &HashMap<String, f64>) -> Option<Value> {
    let state = console.app.registry.export_webhook(name)?;
    let d = &state.definition;
    let filters: Vec<Value> =
        d.filters.iter().map(|f| json!({"jsonPath": f.json_path, "matchEquals": f.match_equals})).collect();
    Some(json!({
        "name": d.name,
        "targetPipeline": d.target_pipeline,
        "targetAction": d.target_action,
        "authentication": d.authentication.as_str(),
        "allowedIpRange": d.authentication_configuration.allowed_ip_range,
        "filters": filters,
        "url": hidden_url(console),
        "lastTriggered": stamps.get(name),
        "errorCode": state.error_code,
        "errorMessage": state.error_message,
    }))
}

/// `GET /api/webhooks`.
pub(crate) async fn webhooks(State(console): State<Arc<Console>>) -> Response {
    let stamps = match console.app.last_triggered().await {
        Ok(stamps) => stamps,
        Err(e) => return refused(e.into()),
    };
    let list: Vec<Value> =
        console.app.registry.webhook_names().iter().filter_map(|name| webhook_json(&console, name, &stamps)).collect();
    json_ok(json!({
        "webhooks": list,
        "deliveriesDropped": console.app.deliveries.dropped(),
        "bodiesNotKept": console.app.deliveries.bodies_not_kept(),
    }))
}

/// The query of a deliveries page.
#[derive(Debug, Deserialize)]
pub(crate) struct PageQuery {
    /// How many (1 to 500, default 50).
    pub(crate) limit: Option<usize>,
    /// The `nextCursor` of the previous page.
    pub(crate) cursor: Option<String>,
}

impl PageQuery {
    pub(crate) fn limit(&self) -> usize {
        self.limit.unwrap_or(50).clamp(1, MAX_LIMIT)
    }
    pub(crate) fn before(&self) -> Result<Option<i64>, Refusal> {
        self.cursor
            .as_deref()
            .filter(|c| !c.is_empty())
            .map(|c| c.parse::<i64>().map_err(|_| Refusal::new(StatusCode::BAD_REQUEST, "the cursor is not valid")))
            .transpose()
    }
}

/// `GET /api/webhooks/{name}/deliveries?limit=N&cursor=C`.
pub(crate) async fn deliveries(
    State(console): State<Arc<Console>>,
    Path(name): Path<String>,
    Query(query): Query<PageQuery>,
) -> Response {
    let before = match query.before() {
        Ok(b) => b,
        Err(r) => return refused(r),
    };
    let limit = query.limit();
    match deliveries::page(&console.app.store, &name, before, limit).await {
        Ok((rows, more)) => {
            if rows.is_empty() && before.is_none() && console.app.registry.export_webhook(&name).is_none() {
                return refused(Refusal::new(StatusCode::NOT_FOUND, "no such webhook"));
            }
            let next = more.then(|| rows.last().map(|r| r.id.to_string())).flatten();
            let list: Vec<Value> = rows.iter().map(deliveries::Stored::summary_json).collect();
            json_ok(json!({"webhook": name, "deliveries": list, "nextCursor": next}))
        }
        Err(e) => refused(e.into()),
    }
}

/// `GET /api/deliveries/{id}`.
pub(crate) async fn delivery(State(console): State<Arc<Console>>, Path(id): Path<i64>) -> Response {
    match super::stored(&console, id).await {
        Ok(stored) => json_ok(stored.detail_json()),
        Err(r) => refused(r),
    }
}

/// The query of redeliver.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RedeliverQuery {
    /// The verdict only.
    #[serde(default)]
    dry_run: Option<String>,
}

/// `POST /api/deliveries/{id}/redeliver[?dryRun=true]`.
pub(crate) async fn redeliver(
    State(console): State<Arc<Console>>,
    Path(id): Path<i64>,
    Query(query): Query<RedeliverQuery>,
) -> Response {
    let dry_run = matches!(query.dry_run.as_deref(), Some("true" | "1" | ""));
    let original = match super::stored(&console, id).await {
        Ok(s) => s,
        Err(r) => return refused(r),
    };
    match super::redeliver(&console, &original, dry_run).await {
        Ok(Outcome::Tested(verdict)) => json_ok(json!({"dryRun": true, "redeliveryOf": id, "verdict": verdict})),
        Ok(Outcome::Delivered { status, answer, delivery }) => {
            let recorded = match delivery {
                Some(new) => deliveries::get(&console.app.store, new).await.ok().flatten().map(|d| d.summary_json()),
                None => None,
            };
            json_ok(json!({
                "dryRun": false,
                "redeliveryOf": id,
                "status": status,
                "answer": answer,
                "delivery": delivery,
                "recorded": recorded,
            }))
        }
        Err(r) => refused(r),
    }
}
