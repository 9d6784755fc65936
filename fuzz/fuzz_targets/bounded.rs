//! Any path that compiles, against any body: evaluation stays within the work budget's constant
//! and the memory bound. Fails when the tape is read more than `READS_PER_UNIT` times per work
//! unit of the budget (an uncharged loop), or when the evaluation holds more than 8 times the
//! body (plus 64 KiB) at once.
//!
//! Input: a length byte n, n bytes of JsonPath (UTF-8), then the body.
#![no_main]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use codepipeline_webhooks::limits::work_budget;
use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, tape_touches};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const READS_PER_UNIT: u64 = 8;

static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: forwards every call unchanged to the system allocator; the counters are atomics.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let live = LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed) + layout.size() as isize;
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let grown = new_size as isize - layout.size() as isize;
        let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
        PEAK.fetch_max(live, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fuzz_target!(|data: &[u8]| {
    let [n, rest @ ..] = data else { return };
    let n = usize::from(*n).min(rest.len());
    let (path, body) = rest.split_at(n);
    let Ok(path) = std::str::from_utf8(path) else { return };
    let Ok(d) = serde_json::from_value::<WebhookDefinition>(json!({
        "name": "fuzz", "targetPipeline": "p", "targetAction": "Source",
        "filters": [{"jsonPath": path, "matchEquals": "no such value"}],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
    })) else {
        return;
    };
    let Ok(webhook) = Webhook::new(&d, &ActionConfiguration::new()) else { return };
    let request = Request::new(body);
    let reads = tape_touches();
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let verdict = webhook.evaluate(&request);
    let peak = (PEAK.load(Ordering::Relaxed) - base).max(0) as usize;
    let reads = tape_touches() - reads;
    // The work units of the budget, for the most nodes a body of this size can have (one per two
    // bytes): an upper bound on what the evaluation may have been given.
    let budget = work_budget(body.len(), body.len() / 2 + 2).nodes;
    assert!(reads <= READS_PER_UNIT * budget, "{path}: {reads} tape reads for a budget of {budget} units: {verdict}");
    assert!(peak <= 8 * body.len() + 64 * 1024, "{path}: {peak} bytes for a {}-byte body: {verdict}", body.len());
});
