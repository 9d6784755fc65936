//! Counters and a latency histogram, rendered in the Prometheus text format.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// Upper bounds of the delivery latency histogram, in seconds.
const BUCKETS: [f64; 12] = [0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0];

/// The outcomes a delivery is counted under (see [`Metrics::delivery`]).
const OUTCOMES: [&str; 11] = [
    "started",
    "ignored",
    "duplicate",
    "ping",
    "rejected",
    "unknown_token",
    "too_large",
    "bad_request",
    "busy",
    "queue_full",
    "error",
];
/// The steps a delivery is counted under: `none`, and the engine's.
const STEPS: [&str; 5] = ["none", "source_ip", "signature", "payload", "filter"];

/// The service's metrics.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Deliveries by (outcome, step) of OUTCOMES × STEPS: one atomic add a delivery, where a
    /// map behind a mutex was a lock, a lookup and an unlock on lines every core writes.
    known: Known,
    /// Any other pair (a step a later engine adds).
    deliveries: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
    api_calls: Mutex<BTreeMap<(String, u16), u64>>,
    executions_finished: Mutex<BTreeMap<&'static str, u64>>,
    /// Deliveries by the first bound at or above their latency (not cumulative: one atomic add
    /// per delivery, not one per bucket; `render` sums them up).
    buckets: [AtomicU64; BUCKETS.len()],
    latency_count: AtomicU64,
    latency_sum_nanos: AtomicU64,
}

/// A counter for each (outcome, step) of OUTCOMES × STEPS.
#[derive(Debug)]
struct Known([AtomicU64; OUTCOMES.len() * STEPS.len()]);

impl Default for Known {
    fn default() -> Known {
        Known(std::array::from_fn(|_| AtomicU64::new(0)))
    }
}

impl Metrics {
    /// Counts one delivery by outcome (`started`, `ignored`, `duplicate`, `ping`, `rejected`,
    /// `unknown_token`, `too_large`, `bad_request`, `busy` (a bound reached: 503 with `Retry-After`),
    /// `queue_full`, `error`) and step (`none` when no step refused
    /// it), and observes its latency.
    pub fn delivery(&self, outcome: &'static str, step: &'static str, elapsed: Duration) {
        match (OUTCOMES.iter().position(|o| *o == outcome), STEPS.iter().position(|s| *s == step)) {
            (Some(o), Some(s)) => {
                self.known.0[o * STEPS.len() + s].fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                *self.deliveries.lock().unwrap_or_else(PoisonError::into_inner).entry((outcome, step)).or_default() += 1
            }
        }
        let secs = elapsed.as_secs_f64();
        if let Some(bucket) = BUCKETS.iter().position(|bound| secs <= *bound) {
            self.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        }
        self.latency_count.fetch_add(1, Ordering::Relaxed);
        self.latency_sum_nanos.fetch_add(u64::try_from(elapsed.as_nanos()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Counts one control-plane call by operation and HTTP status.
    pub fn api_call(&self, operation: &str, status: u16) {
        *self
            .api_calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((operation.to_owned(), status))
            .or_default() += 1;
    }

    /// Counts one finished on-trigger execution by status.
    pub fn execution_finished(&self, status: &'static str) {
        *self.executions_finished.lock().unwrap_or_else(PoisonError::into_inner).entry(status).or_default() += 1;
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "# HELP codepipeline_webhooks_deliveries_total Deliveries to /trigger by outcome and refusing step.\n",
        );
        out.push_str("# TYPE codepipeline_webhooks_deliveries_total counter\n");
        let mut deliveries = self.deliveries.lock().unwrap_or_else(PoisonError::into_inner).clone();
        for (i, n) in self.known.0.iter().enumerate() {
            let n = n.load(Ordering::Relaxed);
            if n > 0 {
                *deliveries.entry((OUTCOMES[i / STEPS.len()], STEPS[i % STEPS.len()])).or_default() += n;
            }
        }
        for ((outcome, step), n) in &deliveries {
            let _ =
                writeln!(out, "codepipeline_webhooks_deliveries_total{{outcome=\"{outcome}\",step=\"{step}\"}} {n}");
        }
        out.push_str("# HELP codepipeline_webhooks_delivery_seconds Time from request to answer on /trigger.\n");
        out.push_str("# TYPE codepipeline_webhooks_delivery_seconds histogram\n");
        let mut below = 0;
        for (bound, bucket) in BUCKETS.iter().zip(&self.buckets) {
            below += bucket.load(Ordering::Relaxed);
            let _ = writeln!(out, "codepipeline_webhooks_delivery_seconds_bucket{{le=\"{bound}\"}} {below}");
        }
        // Not below the buckets' sum: a delivery may be in its bucket and not yet in the count.
        let count = self.latency_count.load(Ordering::Relaxed).max(below);
        let _ = writeln!(out, "codepipeline_webhooks_delivery_seconds_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.latency_sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "codepipeline_webhooks_delivery_seconds_sum {sum}");
        let _ = writeln!(out, "codepipeline_webhooks_delivery_seconds_count {count}");
        out.push_str(
            "# HELP codepipeline_webhooks_api_calls_total Control-plane calls by operation and HTTP status.\n",
        );
        out.push_str("# TYPE codepipeline_webhooks_api_calls_total counter\n");
        for ((operation, status), n) in self.api_calls.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(
                out,
                "codepipeline_webhooks_api_calls_total{{operation=\"{operation}\",status=\"{status}\"}} {n}"
            );
        }
        out.push_str("# HELP codepipeline_webhooks_executions_finished_total On-trigger runs by final status.\n");
        out.push_str("# TYPE codepipeline_webhooks_executions_finished_total counter\n");
        for (status, n) in self.executions_finished.lock().unwrap_or_else(PoisonError::into_inner).iter() {
            let _ = writeln!(out, "codepipeline_webhooks_executions_finished_total{{status=\"{status}\"}} {n}");
        }
        out.push_str(
            "# HELP codepipeline_webhooks_log_lines_dropped_total Log lines dropped because stderr did not keep up.\n",
        );
        out.push_str("# TYPE codepipeline_webhooks_log_lines_dropped_total counter\n");
        let _ = writeln!(out, "codepipeline_webhooks_log_lines_dropped_total {}", super::service::log_lines_dropped());
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_histogram_is_cumulative() {
        let m = Metrics::default();
        for micros in [50, 80, 300, 2_000, 2_000_000] {
            m.delivery("ignored", "filter", Duration::from_micros(micros));
        }
        let text = m.render();
        for line in [
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"0.0001\"} 2",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"0.00025\"} 2",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"0.0005\"} 3",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"0.001\"} 3",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"0.0025\"} 4",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"1\"} 4",
            "codepipeline_webhooks_delivery_seconds_bucket{le=\"+Inf\"} 5",
            "codepipeline_webhooks_delivery_seconds_count 5",
            "codepipeline_webhooks_deliveries_total{outcome=\"ignored\",step=\"filter\"} 5",
        ] {
            assert!(text.contains(line), "{line} not in\n{text}");
        }
    }

    #[test]
    fn every_pair_is_counted_under_its_own_labels() {
        let m = Metrics::default();
        m.delivery("started", "none", Duration::ZERO);
        m.delivery("started", "none", Duration::ZERO);
        m.delivery("rejected", "signature", Duration::ZERO);
        m.delivery("error", "filter", Duration::ZERO);
        // A pair outside the table (a step a later engine adds) is counted all the same.
        m.delivery("rejected", "a_later_step", Duration::ZERO);
        let text = m.render();
        let counted: Vec<&str> =
            text.lines().filter(|l| l.starts_with("codepipeline_webhooks_deliveries_total{")).collect();
        assert_eq!(
            counted,
            [
                "codepipeline_webhooks_deliveries_total{outcome=\"error\",step=\"filter\"} 1",
                "codepipeline_webhooks_deliveries_total{outcome=\"rejected\",step=\"a_later_step\"} 1",
                "codepipeline_webhooks_deliveries_total{outcome=\"rejected\",step=\"signature\"} 1",
                "codepipeline_webhooks_deliveries_total{outcome=\"started\",step=\"none\"} 2",
            ]
        );
        assert!(text.contains("codepipeline_webhooks_delivery_seconds_count 5"), "{text}");
    }
}
