//! The delivery log: what each delivery to a known webhook got and why (the verdict's typed
//! JSON), with the headers that matter and the body up to a cap, kept for the console and for
//! redelivery. Deliveries to unknown tokens are only counted in the metrics: a stranger cannot
//! fill the disk.
//!
//! The data plane never waits for the log: `DeliveryLog::record` hands an entry to one writer
//! task over a bounded queue (a full queue drops the entry and counts it), and the writer inserts
//! whatever has queued up in one transaction, then trims each webhook it wrote to its last
//! `--deliveries-keep` entries and deletes entries older than `--deliveries-days` (every 250 ms
//! while entries come, 250 ms after the last one, and before a flush answers). Under a flood
//! (more than 1,000 entries a second) it writes once a second, and only the newest
//! `--deliveries-keep` entries of each webhook: the older ones, which that write's trim would
//! delete at once, are never written, so a write inserts at most `keep` rows per webhook however
//! fast the flood comes (and writes come once a second, unless PENDING_MAX entries or
//! PENDING_BODY_BYTES_MAX of bodies wait first).

use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::response::Response;
use http::{HeaderMap, HeaderName};
use serde_json::{Value, json};
use sqlx::Row as _;
use sqlx::any::AnyRow;
use tokio::time::Instant;

use super::store::{Backend, Store, StoreError, placeholders};
use codepipeline_webhooks::registry::Resolved;
use codepipeline_webhooks::{Step, Verdict};
use pending::Pending;

mod pending;

/// The request headers kept with a delivery (lower case). Nothing that carries a credential:
/// no `Authorization`, no cookies. The signature headers are kept for redelivery (a signature
/// is a MAC of the body, not the secret) but the console shows only that they were present.
/// Header names parsed once: a lookup by `&str` parses and hashes its name on every call, and
/// every delivery's log entry makes eleven of them.
pub static KEPT_HEADERS: [HeaderName; 9] = [
    HeaderName::from_static("content-type"),
    HeaderName::from_static("user-agent"),
    HeaderName::from_static("x-github-event"),
    HeaderName::from_static("x-github-delivery"),
    HeaderName::from_static("x-github-hook-id"),
    HeaderName::from_static("x-github-hook-installation-target-id"),
    HeaderName::from_static("x-github-hook-installation-target-type"),
    HeaderName::from_static("x-hub-signature"),
    HeaderName::from_static("x-hub-signature-256"),
];

/// `X-GitHub-Event`, parsed once.
pub(crate) static X_GITHUB_EVENT: HeaderName = HeaderName::from_static("x-github-event");
/// `X-GitHub-Delivery`, parsed once.
pub(crate) static X_GITHUB_DELIVERY: HeaderName = HeaderName::from_static("x-github-delivery");

/// Headers whose values the console never shows (it shows that they were present).
pub const SIGNATURE_HEADERS: [&str; 2] = ["x-hub-signature", "x-hub-signature-256"];

/// The most characters of one kept header value (longer values are cut).
const MAX_HEADER_VALUE: usize = 1024;
/// The most body bytes kept for a delivery refused at the address or the signature: its sender
/// proved nothing, so it may not fill the log with `--deliveries-body-cap` bytes a row.
pub const REFUSED_BODY_CAP: usize = 64 * 1024;
/// The most header lines kept per delivery.
const MAX_HEADER_LINES: usize = 32;
/// The most entries waiting for the writer; past it entries are dropped (and counted). Each holds
/// its body up to the cap (1 MiB by default), so this bounds the log's memory: 512 entries, at
/// most 512 MiB with the default cap while the writer stalls (8,192 allowed 8 GiB).
const QUEUE: usize = 512;
/// The most entries inserted in one transaction.
const MAX_BATCH: usize = 512;
/// How often, at least, each webhook's log is trimmed to its last N while entries keep coming.
const TRIM_EVERY: Duration = Duration::from_millis(250);
/// Past this many entries a second the log is under a flood: it is written once every
/// FLOOD_WRITE_EVERY, and each write inserts at most `--deliveries-keep` rows per webhook (the
/// newest; the older ones the trim would delete at once are never written). Below it, each
/// entry is written as soon as the writer is free.
const FLOOD_PER_SEC: usize = 1000;
/// How often the log is written under a flood (so the newest entry shows at most this late).
const FLOOD_WRITE_EVERY: Duration = Duration::from_secs(1);
/// How often the queue is drained under a flood: QUEUE entries in this time is the most the
/// log takes without dropping (25,600 a second).
const DRAIN_EVERY: Duration = Duration::from_millis(20);
/// The most entries that wait for a write (coalesced, at most `--deliveries-keep` per
/// webhook); reached, the write is now. Bodies among them are bounded by
/// `--deliveries-body-rate`.
const PENDING_MAX: usize = 4096;
/// The most body bytes the waiting entries hold (with `--deliveries-body-rate 0`, no rate
/// bounds them); reached, the write is now. With the queue, the log holds at most QUEUE bodies
/// at the cap plus this.
const PENDING_BODY_BYTES_MAX: usize = 64 * 1024 * 1024;

/// The delivery log's options (of `serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct DeliveryArgs {
    /// How many deliveries are kept per webhook (the newest); 0 keeps no log at all.
    #[arg(long, default_value_t = 1000, value_name = "N")]
    pub deliveries_keep: u32,
    /// How many days a delivery is kept at most.
    #[arg(long, default_value_t = 14.0, value_name = "DAYS")]
    pub deliveries_days: f64,
    /// The most body bytes kept with a delivery (for redelivery and the console); a longer body
    /// is kept cut, and cannot be redelivered.
    #[arg(long, default_value_t = 1024 * 1024, value_name = "BYTES")]
    pub deliveries_body_cap: usize,
    /// The most body bytes per second the log keeps, in MiB (a bucket that holds one second's
    /// worth, or one body at the cap): past it, under a flood, deliveries are still logged but
    /// without their bodies (and cannot be redelivered). 0: no limit.
    #[arg(long, default_value_t = 8.0, value_name = "MIB")]
    pub deliveries_body_rate: f64,
}

/// A token bucket of body bytes: what the log may keep now.
#[derive(Debug)]
struct BodyRate {
    /// Bytes per second; `None`: no limit.
    per_sec: Option<f64>,
    /// The most the bucket holds.
    capacity: f64,
    /// When it was last filled, and what it held then.
    state: std::sync::Mutex<(tokio::time::Instant, f64)>,
}

impl BodyRate {
    fn new(mib_per_sec: f64, body_cap: usize) -> BodyRate {
        let per_sec = (mib_per_sec > 0.0).then_some(mib_per_sec * 1024.0 * 1024.0);
        let capacity = per_sec.unwrap_or(0.0).max(body_cap as f64);
        BodyRate { per_sec, capacity, state: std::sync::Mutex::new((tokio::time::Instant::now(), capacity)) }
    }

    /// Takes `bytes` from the bucket if it holds them (at `now`).
    fn take(&self, bytes: usize, now: tokio::time::Instant) -> bool {
        let Some(per_sec) = self.per_sec else { return true };
        let mut state = self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (last, held) = *state;
        let held = (held + now.saturating_duration_since(last).as_secs_f64() * per_sec).min(self.capacity);
        let (kept, left) = if held >= bytes as f64 { (true, held - bytes as f64) } else { (false, held) };
        *state = (now.max(last), left);
        kept
    }
}

/// The execution a delivery started: set on the data plane's 202 answer, read by the log.
#[derive(Clone, Debug)]
pub(crate) struct Started(pub(crate) String);

/// The verdict an entry carries: the engine's, serialised by the writer when the entry is
/// written (under a flood most entries are superseded before that, and never are: the
/// serialisation was a tenth of a mismatching delivery's CPU), or the service's own, for a
/// delivery the engine never decided.
#[derive(Clone, Debug)]
enum Logged {
    Engine(Verdict),
    Service(String),
}

impl Logged {
    /// The verdict's typed JSON, as stored.
    fn text(&self) -> String {
        match self {
            Logged::Engine(verdict) => serde_json::to_string(verdict).unwrap_or_else(|_| "null".to_owned()),
            Logged::Service(text) => text.clone(),
        }
    }
}

/// One delivery, as the log records it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    webhook: String,
    received_at: f64,
    event: Option<String>,
    delivery: Option<String>,
    /// The sender's address, written as text by the writer.
    source: IpAddr,
    status: u16,
    verdict: Logged,
    decision: &'static str,
    execution_id: Option<String>,
    headers: Kept,
    body: Bytes,
    body_size: usize,
    /// Whether the body was read (a delivery refused before it was has none to keep, whatever
    /// its size).
    body_read: bool,
    redelivery_of: Option<i64>,
}

/// The kept header lines of an entry in one buffer (a string a line was an allocation a line,
/// nine for a GitHub delivery, on every delivery): the values one after another in `text`, and
/// for each line its name and where its value ends.
#[derive(Clone, Debug, Default)]
struct Kept {
    text: String,
    lines: Vec<(&'static str, usize)>,
}

impl Kept {
    /// The lines, in the order of KEPT_HEADERS.
    fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        let mut start = 0;
        self.lines.iter().map(move |&(name, end)| {
            let value = &self.text[start..end];
            start = end;
            (name, value)
        })
    }
}

fn kept_headers(headers: &HeaderMap) -> Kept {
    // Room for a GitHub delivery's nine lines at once (their values come to about 250 bytes).
    let mut kept = Kept { text: String::with_capacity(512), lines: Vec::with_capacity(KEPT_HEADERS.len()) };
    for name in &KEPT_HEADERS {
        for value in headers.get_all(name) {
            if kept.lines.len() == MAX_HEADER_LINES {
                return kept;
            }
            if *name == X_GITHUB_DELIVERY {
                push_delivery_text(&mut kept.text, value);
            } else {
                push_kept_text(&mut kept.text, value);
            }
            kept.lines.push((name.as_str(), kept.text.len()));
        }
    }
    kept
}

/// Appends a header value as text: invalid UTF-8 replaced, cut at MAX_HEADER_VALUE
/// characters. A valid value of at most that many bytes (every real one) is copied whole, not
/// character by character.
fn push_kept_text(out: &mut String, value: &http::HeaderValue) {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) if text.len() <= MAX_HEADER_VALUE => out.push_str(text),
        _ => out.extend(String::from_utf8_lossy(value.as_bytes()).chars().take(MAX_HEADER_VALUE)),
    }
}

/// A header value as [`push_kept_text`] appends it.
fn kept_text(value: &http::HeaderValue) -> String {
    let mut text = String::new();
    push_kept_text(&mut text, value);
    text
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    headers.get(name).map(kept_text)
}

/// Appends an `X-GitHub-Delivery` as the log keeps it: the duplicate window's key
/// ([`delivery_key`](super::data::delivery_key)), so that a redelivery of the entry is the same
/// id; a value that is not text (which the window does not key on) as any header.
fn push_delivery_text(out: &mut String, value: &http::HeaderValue) {
    match value.to_str() {
        Ok(id) => out.push_str(&super::data::delivery_key(id)),
        Err(_) => push_kept_text(out, value),
    }
}

/// The entry's `X-GitHub-Delivery` (the first): as `kept` holds it, or, when the header lines'
/// cap cut it from them, from `headers`. One key a delivery, not one for the list and one here.
fn kept_delivery(headers: &HeaderMap, kept: &Kept) -> Option<String> {
    let name = X_GITHUB_DELIVERY.as_str();
    kept.iter().find(|(n, _)| *n == name).map(|(_, v)| v.to_owned()).or_else(|| {
        let mut text = String::new();
        push_delivery_text(&mut text, headers.get(&X_GITHUB_DELIVERY)?);
        Some(text)
    })
}

impl Entry {
    /// A delivery the engine decided at `received_at` (seconds since the epoch); the status is
    /// set by [`answered`](Self::answered).
    pub(crate) fn new(
        info: &Resolved,
        peer: SocketAddr,
        headers: &HeaderMap,
        verdict: Verdict,
        body: &Bytes,
        cap: usize,
        received_at: f64,
    ) -> Entry {
        let refused = matches!(verdict.step(), Some(Step::SourceIp | Step::Signature));
        let cap = if refused { cap.min(REFUSED_BODY_CAP) } else { cap };
        let kept = kept_headers(headers);
        Entry {
            webhook: info.name().to_owned(),
            received_at,
            event: header_text(headers, &X_GITHUB_EVENT),
            source: peer.ip(),
            status: 0,
            decision: if verdict.is_trigger() { "trigger" } else { "reject" },
            verdict: Logged::Engine(verdict),
            execution_id: None,
            delivery: kept_delivery(headers, &kept),
            headers: kept,
            body: body.slice(..body.len().min(cap)),
            body_size: body.len(),
            body_read: true,
            redelivery_of: None,
        }
    }

    /// A delivery refused before it was read whole: its body is over `limit`.
    pub(crate) fn too_large(info: &Resolved, peer: SocketAddr, headers: &HeaderMap, limit: usize) -> Entry {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(limit.saturating_add(1));
        let reason = format!("payload too large: more than {limit} bytes");
        Entry::unevaluated(info, peer, headers, 413, "payload", reason, None).with_size(declared)
    }

    /// A delivery the engine never decided: refused at `status` by the service itself (the
    /// webhook in error, a body too large, broken or too slow, no room to evaluate it), with
    /// `step` and `reason` in the verdict's shape so that the console and the API show it like
    /// any reject. `body`: the body, when it was read (kept up to [`REFUSED_BODY_CAP`]: its
    /// sender proved nothing); otherwise its size is what `Content-Length` says, and the entry
    /// cannot be redelivered.
    pub(crate) fn unevaluated(
        info: &Resolved,
        peer: SocketAddr,
        headers: &HeaderMap,
        status: u16,
        step: &str,
        reason: String,
        body: Option<&Bytes>,
    ) -> Entry {
        let declared = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0);
        let kept = kept_headers(headers);
        Entry {
            webhook: info.name().to_owned(),
            received_at: super::now(),
            event: header_text(headers, &X_GITHUB_EVENT),
            source: peer.ip(),
            status,
            verdict: Logged::Service(
                json!({ "decision": "reject", "webhook": info.name(), "step": step, "reason": reason }).to_string(),
            ),
            decision: "reject",
            execution_id: None,
            delivery: kept_delivery(headers, &kept),
            headers: kept,
            body: body.map(|b| b.slice(..b.len().min(REFUSED_BODY_CAP))).unwrap_or_default(),
            body_size: body.map_or(declared, Bytes::len),
            body_read: body.is_some(),
            redelivery_of: None,
        }
    }

    fn with_size(mut self, body_size: usize) -> Entry {
        self.body_size = body_size;
        self
    }

    /// The entry as a redelivery of the log's entry `of` (the console's redeliver).
    pub(crate) fn redelivery_of(mut self, of: Option<i64>) -> Entry {
        self.redelivery_of = of;
        self
    }

    /// The entry with what the sender was answered: the status, and the execution it started.
    pub(crate) fn answered(mut self, response: &Response) -> Entry {
        self.status = response.status().as_u16();
        self.execution_id = response.extensions().get::<Started>().map(|s| s.0.clone());
        self
    }
}

/// A kept body cut at the cap (`size`: the whole body's), copied into a buffer of its own: a
/// slice would keep the whole body's buffer (up to the webhook's limit, 25 MiB) alive while the
/// entry waits, where the log's bounds (the queue, PENDING_BODY_BYTES_MAX, the body rate)
/// count only the kept bytes. A body kept whole is the buffer itself, not copied.
fn own_if_cut(body: Bytes, size: usize) -> Bytes {
    if body.is_empty() || body.len() == size { body } else { Bytes::copy_from_slice(&body) }
}

/// What the writer is handed: an entry, or a request to say when everything before it is written.
/// An entry is not boxed: a flush is rare, and a box was an allocation, and a free on the
/// writer's thread, for every delivery.
#[derive(Debug)]
#[allow(clippy::large_enum_variant)]
enum Job {
    Entry(Entry),
    Flush(tokio::sync::oneshot::Sender<()>),
}

/// The log's writer: a bounded queue in front of one task.
#[derive(Debug)]
pub(crate) struct DeliveryLog {
    /// `None` with `--deliveries-keep 0`: nothing is logged.
    queue: Option<tokio::sync::mpsc::Sender<Job>>,
    body_cap: usize,
    body_rate: BodyRate,
    dropped: AtomicU64,
    bodies_not_kept: AtomicU64,
}

impl DeliveryLog {
    /// Starts the writer task (on the current runtime).
    pub(crate) fn start(store: Arc<Store>, args: &DeliveryArgs) -> DeliveryLog {
        let queue = (args.deliveries_keep > 0).then(|| {
            let (queue, jobs) = tokio::sync::mpsc::channel(QUEUE);
            let keep_secs = args.deliveries_days.max(0.0) * 86_400.0;
            tokio::spawn(writer(store, jobs, i64::from(args.deliveries_keep), keep_secs));
            queue
        });
        DeliveryLog {
            queue,
            body_cap: args.deliveries_body_cap,
            body_rate: BodyRate::new(args.deliveries_body_rate, args.deliveries_body_cap),
            dropped: AtomicU64::new(0),
            bodies_not_kept: AtomicU64::new(0),
        }
    }

    /// Whether entries are logged (not with `--deliveries-keep 0`): when not, none is built.
    pub(crate) fn enabled(&self) -> bool {
        self.queue.is_some()
    }

    /// The most body bytes kept with an entry.
    pub(crate) fn body_cap(&self) -> usize {
        self.body_cap
    }

    /// How many entries were dropped because the writer fell behind.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// How many entries were logged without their body because of `--deliveries-body-rate`.
    pub(crate) fn bodies_not_kept(&self) -> u64 {
        self.bodies_not_kept.load(Ordering::Relaxed)
    }

    /// Queues an entry; never waits (a full queue drops it, counted). Its body is kept if the
    /// byte rate allows (otherwise the entry goes without it, counted).
    pub(crate) fn record(&self, mut entry: Entry) {
        let Some(queue) = &self.queue else { return };
        if !entry.body.is_empty() && !self.body_rate.take(entry.body.len(), tokio::time::Instant::now()) {
            entry.body = Bytes::new();
            if self.bodies_not_kept.fetch_add(1, Ordering::Relaxed) == 0 {
                tracing::warn!(
                    "deliveries arrive faster than --deliveries-body-rate: some are logged without their bodies \
                     (counted in the console's /api/webhooks)"
                );
            }
        }
        entry.body = own_if_cut(std::mem::take(&mut entry.body), entry.body_size);
        if queue.try_send(Job::Entry(entry)).is_err() && self.dropped.fetch_add(1, Ordering::Relaxed) == 0 {
            tracing::warn!("the delivery log falls behind: entries dropped (counted in the console's /api/webhooks)");
        }
    }

    /// Waits until every entry queued before this call is written (or failed to be).
    pub(crate) async fn flush(&self) {
        let Some(queue) = &self.queue else { return };
        let (tx, rx) = tokio::sync::oneshot::channel();
        if queue.send(Job::Flush(tx)).await.is_ok() {
            let _ = rx.await;
        }
    }
}

async fn writer(store: Arc<Store>, mut jobs: tokio::sync::mpsc::Receiver<Job>, keep: i64, keep_secs: f64) {
    let mut pending = Pending::new(usize::try_from(keep).unwrap_or(usize::MAX), |e: &Entry| e.webhook.as_str());
    let mut flushes = Vec::new();
    let mut rate = Rate::default();
    let mut trimmed = Instant::now();
    let mut written = Instant::now();
    // The webhooks written to since the last trim.
    let mut untrimmed: BTreeSet<String> = BTreeSet::new();
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut was_flooded = false;
    loop {
        let now = Instant::now();
        let flooded = rate.flooded(now);
        if flooded && !was_flooded {
            tracing::info!(
                "deliveries arrive at more than {FLOOD_PER_SEC} a second: the delivery log is written once a second, \
                 the newest --deliveries-keep of each webhook"
            );
        }
        was_flooded = flooded;
        // The next write: now when entries wait (those that came during the last one), or under
        // a flood once every FLOOD_WRITE_EVERY; the next trim TRIM_EVERY after the last.
        let write_at = (!pending.is_empty()).then(|| if flooded { written + FLOOD_WRITE_EVERY } else { now });
        let trim_at = (!untrimmed.is_empty()).then_some(trimmed + TRIM_EVERY);
        let due = [write_at, trim_at].into_iter().flatten().min();
        let room = PENDING_MAX.saturating_sub(pending.len()).clamp(1, MAX_BATCH);
        let closed = if flooded || due.is_some_and(|at| at <= now) {
            // Under a flood the queue is drained every DRAIN_EVERY, not at each entry (a wake-up
            // per entry was a cost of its own), until the write is due.
            if flooded {
                let until = due.map_or(now + DRAIN_EVERY, |at| at.min(now + DRAIN_EVERY));
                tokio::time::sleep_until(until).await;
            }
            drain(&mut jobs, &mut batch, room)
        } else {
            let received = match due {
                None => jobs.recv_many(&mut batch, room).await,
                Some(at) => tokio::time::timeout_at(at, jobs.recv_many(&mut batch, room)).await.unwrap_or(usize::MAX),
            };
            received == 0
        };
        let now = Instant::now();
        for job in batch.drain(..) {
            match job {
                Job::Entry(e) => {
                    rate.note(now);
                    let bytes = e.body.len();
                    pending.push(e, bytes);
                }
                Job::Flush(done) => flushes.push(done),
            }
        }
        let write = !pending.is_empty()
            && (closed
                || !flushes.is_empty()
                || pending.len() >= PENDING_MAX
                || pending.bytes() >= PENDING_BODY_BYTES_MAX
                || !rate.flooded(now)
                || now >= written + FLOOD_WRITE_EVERY);
        let entries = if write { pending.take() } else { Vec::new() };
        if write {
            written = now;
        }
        for e in &entries {
            if !untrimmed.contains(&e.webhook) {
                untrimmed.insert(e.webhook.clone());
            }
        }
        // Trimmed every TRIM_EVERY while entries come (a webhook holds at most that long's
        // deliveries beyond `keep`), TRIM_EVERY after the last one, and before a flush answers.
        // Not after every batch: under load the writer keeps up in small batches, and each
        // trim walks `keep` index entries per webhook.
        let trim = !untrimmed.is_empty() && (closed || !flushes.is_empty() || trimmed.elapsed() >= TRIM_EVERY);
        let trimming: Vec<&str> = if trim { untrimmed.iter().map(String::as_str).collect() } else { Vec::new() };
        if !entries.is_empty() || trim {
            let trim = trim.then_some(Trim { keep, oldest: super::now() - keep_secs, webhooks: &trimming });
            if let Err(e) = insert(&store, &entries, trim).await {
                tracing::warn!(error = %e, entries = entries.len(), "writing the delivery log failed");
            }
        }
        if trim {
            trimmed = Instant::now();
            untrimmed.clear();
        }
        if pending.is_empty() {
            for done in flushes.drain(..) {
                let _ = done.send(());
            }
        }
        if closed {
            break;
        }
    }
}

/// Takes what waits in the queue, up to `room` jobs, without waiting; true when the queue is
/// closed and empty.
fn drain(jobs: &mut tokio::sync::mpsc::Receiver<Job>, batch: &mut Vec<Job>, room: usize) -> bool {
    while batch.len() < room {
        match jobs.try_recv() {
            Ok(job) => batch.push(job),
            Err(tokio::sync::mpsc::error::TryRecvError::Empty) => return false,
            Err(tokio::sync::mpsc::error::TryRecvError::Disconnected) => return batch.is_empty(),
        }
    }
    false
}

/// Entries per second, counted in one-second windows: a flood is FLOOD_PER_SEC in this window
/// or the last.
#[derive(Debug)]
struct Rate {
    window: Instant,
    count: usize,
    last: usize,
}

impl Default for Rate {
    fn default() -> Rate {
        Rate { window: Instant::now(), count: 0, last: 0 }
    }
}

impl Rate {
    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window);
        if elapsed >= Duration::from_secs(1) {
            self.last = if elapsed < Duration::from_secs(2) { self.count } else { 0 };
            self.count = 0;
            self.window = now;
        }
    }

    fn note(&mut self, now: Instant) {
        self.roll(now);
        self.count += 1;
    }

    fn flooded(&mut self, now: Instant) -> bool {
        self.roll(now);
        self.count >= FLOOD_PER_SEC || self.last >= FLOOD_PER_SEC
    }
}

/// What a trim keeps: the last `keep` entries of each of `webhooks`, none older than `oldest`.
struct Trim<'a> {
    keep: i64,
    oldest: f64,
    webhooks: &'a [&'a str],
}

/// The most rows one INSERT statement carries (14 parameters each, far below SQLite's and
/// Postgres's limits): one statement, not one per entry, is one round trip to the database
/// (for SQLite, to sqlx's worker thread).
const ROWS_PER_INSERT: usize = 32;

/// The INSERT of `rows` entries (the store's placeholders: positional on SQLite). The full
/// chunk's statement is built once.
fn insert_sql(backend: Backend, rows: usize) -> std::borrow::Cow<'static, str> {
    static FULL: [std::sync::OnceLock<String>; 2] = [std::sync::OnceLock::new(), std::sync::OnceLock::new()];
    let build = || {
        format!(
            "INSERT INTO delivery_log (webhook, received_at, event, delivery, source, status, decision, verdict,
                 execution_id, headers, body, body_size, body_truncated, redelivery_of) VALUES {}",
            placeholders(backend, rows, 14)
        )
    };
    if rows == ROWS_PER_INSERT {
        let slot = &FULL[usize::from(backend == Backend::Postgres)];
        return std::borrow::Cow::Borrowed(slot.get_or_init(build).as_str());
    }
    std::borrow::Cow::Owned(build())
}

/// Inserts a batch in one transaction and, given `trim`, trims its webhooks.
async fn insert(store: &Store, entries: &[Entry], trim: Option<Trim<'_>>) -> Result<(), StoreError> {
    let mut turn = store.write_turn().await;
    let mut tx = turn.begin().await?;
    let backend = store.backend();
    for chunk in entries.chunks(ROWS_PER_INSERT) {
        let sql = insert_sql(backend, chunk.len());
        let mut query = sqlx::query(&sql);
        for e in chunk {
            let headers: Vec<[&str; 2]> = e.headers.iter().map(|(n, v)| [n, v]).collect();
            query = query
                .bind(&e.webhook)
                .bind(e.received_at)
                .bind(e.event.as_deref())
                .bind(e.delivery.as_deref())
                .bind(e.source.to_canonical().to_string())
                .bind(i64::from(e.status))
                .bind(e.decision)
                .bind(e.verdict.text())
                .bind(e.execution_id.as_deref())
                .bind(serde_json::to_string(&headers).unwrap_or_else(|_| "[]".into()))
                .bind(e.body.to_vec())
                .bind(i64::try_from(e.body_size).unwrap_or(i64::MAX))
                .bind(i64::from(!e.body_read || e.body.len() < e.body_size))
                .bind(e.redelivery_of);
        }
        query.execute(&mut *tx).await?;
    }
    if let Some(trim) = trim {
        sqlx::query("DELETE FROM delivery_log WHERE received_at < $1").bind(trim.oldest).execute(&mut *tx).await?;
        for webhook in trim.webhooks {
            sqlx::query(
                "DELETE FROM delivery_log WHERE webhook = $1 AND id <= (
                     SELECT id FROM delivery_log WHERE webhook = $1 ORDER BY id DESC LIMIT 1 OFFSET $2)",
            )
            .bind(*webhook)
            .bind(trim.keep)
            .execute(&mut *tx)
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

/// A delivery as stored.
#[derive(Clone, Debug)]
pub(crate) struct Stored {
    pub(crate) id: i64,
    pub(crate) webhook: String,
    pub(crate) received_at: f64,
    pub(crate) event: Option<String>,
    pub(crate) delivery: Option<String>,
    pub(crate) source: String,
    pub(crate) status: u16,
    pub(crate) verdict: Value,
    pub(crate) execution_id: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
    pub(crate) body_size: u64,
    pub(crate) body_truncated: bool,
    pub(crate) redelivery_of: Option<i64>,
}

const COLUMNS: &str = "id, webhook, received_at, event, delivery, source, status, verdict, execution_id, headers, \
                       body, body_size, body_truncated, redelivery_of";

fn stored(r: &AnyRow) -> Result<Stored, StoreError> {
    let headers: String = r.try_get(9)?;
    let headers: Vec<(String, String)> = serde_json::from_str::<Vec<[String; 2]>>(&headers)
        .unwrap_or_default()
        .into_iter()
        .map(|[n, v]| (n, v))
        .collect();
    let verdict: String = r.try_get(7)?;
    Ok(Stored {
        id: r.try_get(0)?,
        webhook: r.try_get(1)?,
        received_at: r.try_get(2)?,
        event: r.try_get(3)?,
        delivery: r.try_get(4)?,
        source: r.try_get(5)?,
        status: u16::try_from(r.try_get::<i64, _>(6)?).unwrap_or(0),
        verdict: serde_json::from_str(&verdict).unwrap_or(Value::Null),
        execution_id: r.try_get(8)?,
        headers,
        body: r.try_get::<Option<Vec<u8>>, _>(10)?.unwrap_or_default(),
        body_size: u64::try_from(r.try_get::<i64, _>(11)?).unwrap_or(0),
        body_truncated: r.try_get::<i64, _>(12)? != 0,
        redelivery_of: r.try_get(13)?,
    })
}

/// A page of a webhook's deliveries, newest first, with ids below `before`, at most `limit`;
/// and whether older ones follow (one more row is read to know, so that a page that ends the
/// log offers no next page).
pub(crate) async fn page(
    store: &Store,
    webhook: &str,
    before: Option<i64>,
    limit: usize,
) -> Result<(Vec<Stored>, bool), StoreError> {
    let rows = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM delivery_log WHERE webhook = $1 AND id < $2 ORDER BY id DESC LIMIT $3"
    ))
    .bind(webhook)
    .bind(before.unwrap_or(i64::MAX))
    .bind(i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX))
    .fetch_all(store.pool())
    .await?;
    let more = rows.len() > limit;
    let rows = rows.iter().take(limit).map(stored).collect::<Result<_, _>>()?;
    Ok((rows, more))
}

/// The newest redelivery of `original`.
pub(crate) async fn latest_redelivery(store: &Store, original: i64) -> Result<Option<i64>, StoreError> {
    let row = sqlx::query("SELECT MAX(id) FROM delivery_log WHERE redelivery_of = $1")
        .bind(original)
        .fetch_one(store.pool())
        .await?;
    Ok(row.try_get(0)?)
}

/// One delivery.
pub(crate) async fn get(store: &Store, id: i64) -> Result<Option<Stored>, StoreError> {
    let row = sqlx::query(&format!("SELECT {COLUMNS} FROM delivery_log WHERE id = $1"))
        .bind(id)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(stored).transpose()
}

impl Stored {
    /// What happened, in one word: `started`, `ping`, `duplicate`, `ignored`, `refused` (address
    /// or signature), `too_large`, `bad_request` or `error`.
    pub(crate) fn outcome(&self) -> &'static str {
        let trigger = self.verdict.get("decision").and_then(Value::as_str) == Some("trigger");
        match self.status {
            202 => "started",
            200 if self.event.as_deref() == Some("ping") => "ping",
            200 if trigger => "duplicate",
            200 => "ignored",
            403 => "refused",
            413 => "too_large",
            400 => "bad_request",
            _ => "error",
        }
    }

    /// The headers as the console shows them: signature values replaced by `(present)`.
    pub(crate) fn shown_headers(&self) -> Vec<(&str, &str)> {
        self.headers
            .iter()
            .map(|(n, v)| (n.as_str(), if SIGNATURE_HEADERS.contains(&n.as_str()) { "(present)" } else { v.as_str() }))
            .collect()
    }

    /// The headers to evaluate again, as they arrived.
    pub(crate) fn header_map(&self) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (n, v) in &self.headers {
            if let (Ok(n), Ok(v)) = (http::HeaderName::try_from(n.as_str()), http::HeaderValue::try_from(v.as_str())) {
                map.append(n, v);
            }
        }
        map
    }

    /// The summary the list shows: the API's fields (no body, no headers).
    pub(crate) fn summary_json(&self) -> Value {
        let mut out = json!({
            "id": self.id,
            "webhook": self.webhook,
            "receivedAt": self.received_at,
            "event": self.event,
            "deliveryId": self.delivery,
            "sourceAddress": self.source,
            "status": self.status,
            "outcome": self.outcome(),
            "decision": self.verdict.get("decision").cloned().unwrap_or(Value::Null),
            "executionId": self.execution_id,
            "redeliveryOf": self.redelivery_of,
        });
        match self.service_reason() {
            // Decided by the service after the engine: the engine's filter miss of a ping, or
            // its trigger of a repeat, is not why the sender got 200.
            Some(why) => out["reason"] = why.into(),
            // For a reject: the step, the reason in words and the typed filter fields.
            None => {
                for (from, to) in [
                    ("step", "step"),
                    ("reason", "reason"),
                    ("filter_index", "filterIndex"),
                    ("json_path", "jsonPath"),
                    ("expected", "expected"),
                    ("found", "found"),
                ] {
                    if let Some(v) = self.verdict.get(from) {
                        out[to] = v.clone();
                    }
                }
            }
        }
        out
    }

    /// Why a delivery the engine let through, or whose miss does not matter, started nothing:
    /// a ping (answered 200 whatever the filters say) or a repeated delivery id.
    pub(crate) fn service_reason(&self) -> Option<String> {
        match self.outcome() {
            "ping" => Some("a ping, GitHub's test of the hook: answered 200, no pipeline starts".to_owned()),
            "duplicate" => Some(format!(
                "a repeat of X-GitHub-Delivery {}: a delivery with this id started the pipeline within the last hour",
                self.delivery.as_deref().unwrap_or("-")
            )),
            _ => None,
        }
    }

    /// The whole entry: the summary, the verdict as the engine gave it, the headers (signature
    /// values hidden) and the body (as text when it is UTF-8, else base64).
    pub(crate) fn detail_json(&self) -> Value {
        use base64::Engine as _;
        let mut out = self.summary_json();
        out["verdict"] = self.verdict.clone();
        out["headers"] = self.shown_headers().into_iter().map(|(n, v)| json!({"name": n, "value": v})).collect();
        match std::str::from_utf8(&self.body) {
            Ok(text) => out["body"] = Value::String(text.to_owned()),
            Err(_) => out["bodyBase64"] = base64::engine::general_purpose::STANDARD.encode(&self.body).into(),
        }
        out["bodySize"] = self.body_size.into();
        out["bodyTruncated"] = self.body_truncated.into();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_number_their_parameters_per_backend() {
        let sqlite = insert_sql(Backend::Sqlite, 2);
        assert_eq!((sqlite.matches('?').count(), sqlite.contains('$')), (28, false));
        let postgres = insert_sql(Backend::Postgres, 2);
        assert!(postgres.ends_with("$27, $28)") && postgres.contains("($15, $16,"), "{postgres}");
        // The full chunk is built once and is the same each time.
        let full = insert_sql(Backend::Postgres, ROWS_PER_INSERT);
        assert!(full.ends_with(&format!("${})", ROWS_PER_INSERT * 14)));
        assert!(matches!(insert_sql(Backend::Sqlite, ROWS_PER_INSERT), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn a_cut_body_does_not_keep_the_whole_bodys_buffer() {
        let whole = Bytes::from(vec![7u8; 4 * 1024 * 1024]);
        let range = whole.as_ptr_range();
        let cut = own_if_cut(whole.slice(..1024), whole.len());
        assert_eq!(cut, whole.slice(..1024));
        assert!(!range.contains(&cut.as_ptr()), "a copy of its own, not a view into the 4 MiB");
        let kept = own_if_cut(whole.clone(), whole.len());
        assert_eq!(kept.as_ptr(), whole.as_ptr(), "a body kept whole is not copied");
    }

    #[test]
    fn kept_headers_copy_real_values_whole_and_cut_the_rest() {
        let mut headers = HeaderMap::new();
        headers.insert("x-github-event", http::HeaderValue::from_static("push"));
        headers.insert("authorization", http::HeaderValue::from_static("token secret"));
        let long = "é".repeat(MAX_HEADER_VALUE); // 2 bytes a character: over the byte fast path
        headers.insert("user-agent", http::HeaderValue::from_str(&long).unwrap());
        headers.insert("x-github-delivery", http::HeaderValue::from_bytes(b"id-\xff-end").unwrap());
        let kept = kept_headers(&headers);
        let get = |n: &str| kept.iter().find(|(k, _)| *k == n).map(|(_, v)| v.to_owned());
        assert_eq!(get("x-github-event").as_deref(), Some("push"));
        assert_eq!(get("authorization"), None, "a credential is never kept");
        assert_eq!(get("user-agent").map(|v| v.chars().count()), Some(MAX_HEADER_VALUE), "cut at characters");
        assert_eq!(get("x-github-delivery"), Some("id-\u{fffd}-end".to_owned()), "invalid UTF-8 replaced");
        let exact = "a".repeat(MAX_HEADER_VALUE + 1);
        assert_eq!(kept_text(&http::HeaderValue::from_str(&exact).unwrap()).len(), MAX_HEADER_VALUE);
    }

    #[test]
    fn kept_headers_are_the_lines_in_order_each_value_its_own_up_to_the_cap() {
        let mut headers = HeaderMap::new();
        for i in 0..40 {
            headers.append("x-github-event", http::HeaderValue::from_str(&format!("event-{i}")).unwrap());
        }
        headers.append("content-type", http::HeaderValue::from_static("application/json"));
        headers.append("x-github-hook-id", http::HeaderValue::from_static(""));
        let kept: Vec<(&str, String)> = kept_headers(&headers).iter().map(|(n, v)| (n, v.to_owned())).collect();
        // KEPT_HEADERS' order, a header's values in the order they came, MAX_HEADER_LINES lines.
        let mut expected = vec![("content-type", "application/json".to_owned())];
        expected.extend((0..MAX_HEADER_LINES - 1).map(|i| ("x-github-event", format!("event-{i}"))));
        assert_eq!(kept, expected);
        // An empty value is a line of its own.
        headers.clear();
        headers.append("x-github-hook-id", http::HeaderValue::from_static(""));
        headers.append("x-hub-signature-256", http::HeaderValue::from_static("sha256=ab"));
        let kept = kept_headers(&headers);
        assert_eq!(kept.iter().collect::<Vec<_>>(), [("x-github-hook-id", ""), ("x-hub-signature-256", "sha256=ab")]);
    }

    fn entry(webhook: &str, n: usize) -> Entry {
        Entry {
            webhook: webhook.to_owned(),
            received_at: super::super::now(),
            event: Some("push".to_owned()),
            delivery: Some(format!("d{n}")),
            source: std::net::Ipv4Addr::LOCALHOST.into(),
            status: 200,
            verdict: Logged::Service(r#"{"decision":"reject"}"#.to_owned()),
            decision: "reject",
            execution_id: None,
            headers: Kept { text: "push".to_owned(), lines: vec![("x-github-event", 4)] },
            body: Bytes::from_static(b"{}"),
            body_size: 2,
            body_read: true,
            redelivery_of: None,
        }
    }

    /// A flood far over FLOOD_PER_SEC to one webhook, beside a trickle to another: the log ends
    /// with the newest `keep` of each, and most of the flood was never written (SQLite's
    /// AUTOINCREMENT ids count the rows inserted).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flood_writes_the_newest_keep_per_webhook_not_every_entry() {
        let dir = std::env::temp_dir().join(format!("cpw-log-flood-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let store = Arc::new(Store::open(&super::super::store::Location::DataDir(dir.clone())).await.unwrap());
        let args = DeliveryArgs {
            deliveries_keep: 10,
            deliveries_days: 14.0,
            deliveries_body_cap: 1024,
            deliveries_body_rate: 0.0,
        };
        let log = DeliveryLog::start(store.clone(), &args);
        // 10,000 entries in 100 bursts of 100 (about 10,000 a second: well within what the queue
        // takes between two drains), and one to a quiet webhook every 20 bursts.
        let mut sent = 0;
        for burst in 0..100 {
            for _ in 0..100 {
                log.record(entry("flooded", sent));
                sent += 1;
            }
            if burst % 20 == 0 {
                log.record(entry("quiet", burst));
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        log.flush().await;
        let rows = sqlx::query("SELECT webhook, delivery, id FROM delivery_log ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap();
        let rows: Vec<(String, String, i64)> = rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect();
        let flooded: Vec<&str> = rows.iter().filter(|r| r.0 == "flooded").map(|r| r.1.as_str()).collect();
        let expected: Vec<String> = (sent - 10..sent).map(|n| format!("d{n}")).collect();
        assert_eq!(flooded, expected, "the newest ten of the flood, in order");
        let quiet: Vec<&str> = rows.iter().filter(|r| r.0 == "quiet").map(|r| r.1.as_str()).collect();
        assert_eq!(quiet, ["d0", "d20", "d40", "d60", "d80"], "the trickle, whole");
        let received = sent + 5 - usize::try_from(log.dropped()).unwrap();
        let inserted = usize::try_from(rows.last().unwrap().2).unwrap();
        assert!(received >= 5_000, "the writer took only {received} of {sent}: the test measured nothing");
        assert!(inserted * 4 <= received, "{inserted} rows written for {received} entries: not coalesced");
        drop(log);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_body_rate_keeps_a_second_s_worth_then_refills() {
        let rate = BodyRate::new(1.0, 1024); // 1 MiB/s, a bucket of 1 MiB
        let t0 = tokio::time::Instant::now();
        let mib = 1024 * 1024;
        assert!(rate.take(mib / 2, t0));
        assert!(rate.take(mib / 2, t0));
        assert!(!rate.take(1, t0), "the bucket is empty");
        assert!(!rate.take(mib / 2, t0 + Duration::from_millis(250)), "a quarter second refills a quarter");
        assert!(rate.take(mib / 2, t0 + Duration::from_millis(500)));
        // It never holds more than its capacity, however long it waits.
        assert!(rate.take(mib, t0 + Duration::from_secs(3600)));
        assert!(!rate.take(1024, t0 + Duration::from_secs(3600)));
        // A body at the cap fits even when the rate is lower; 0 is no limit.
        let slow = BodyRate::new(0.001, 64 * 1024);
        assert!(slow.take(64 * 1024, t0));
        let none = BodyRate::new(0.0, 1);
        assert!((0..1000).all(|_| none.take(mib, t0)));
    }
}
