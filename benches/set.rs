//! `WebhookSet`: one delivery (the corpus push) against 1 to 10,000 members, against one member's
//! `evaluate`; with one shared secret and with 1,000 distinct secrets. Also reports the memory per
//! member and the time to build a set of 10,000.
//!
//! `cargo bench --bench set`

use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::time::{Duration, Instant};

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, WebhookSet, github};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use serde_json::json;

/// Bytes currently allocated, to report memory per member.
struct Counting;
static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: forwards every call unchanged to the system allocator, counting bytes on the side.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const PUSH_REPO: &str = "Codertocat/Hello-World";

/// A member filtering its own repository and branch, as a CI platform behind a GitHub App has.
fn member(secret: &str, repo: &str, branch: &str) -> Webhook {
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "member", "targetPipeline": "pipeline", "targetAction": "Source",
        "filters": [
            {"jsonPath": "$.repository.full_name", "matchEquals": repo},
            {"jsonPath": "$.ref", "matchEquals": "refs/heads/{Branch}"}
        ],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}
    }))
    .unwrap();
    let config: ActionConfiguration = [("Branch", branch)].into_iter().collect();
    Webhook::new(&d, &config).unwrap()
}

/// `n` members, one of them (the middle one) matching the push; `secrets` distinct secrets.
fn members(n: usize, secrets: usize) -> Vec<Webhook> {
    (0..n)
        .map(|i| {
            let secret = format!("secret-{}", i % secrets);
            if i == n / 2 {
                member(&secret, PUSH_REPO, "master")
            } else {
                member(&secret, &format!("org/repo-{i}"), "main")
            }
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let body =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/github/push/with-new-branch.payload.json"))
            .unwrap();

    // Memory and build time, printed once.
    for n in [1_000, 10_000] {
        let before = LIVE.load(Ordering::Relaxed);
        let started = Instant::now();
        let set = WebhookSet::new(members(n, 1));
        let took = started.elapsed();
        let bytes = LIVE.load(Ordering::Relaxed) - before;
        println!(
            "set of {n} members: {bytes} bytes ({} bytes per member), compiled and built in {:.1} ms",
            bytes / n as isize,
            took.as_secs_f64() * 1e3
        );
        drop(set);
    }

    let mut group = c.benchmark_group("set");
    let one = member("secret-0", PUSH_REPO, "master");
    let sig = github::signature_256(b"secret-0", &body);
    let request = Request::new(&body).header("X-Hub-Signature-256", &sig);
    assert!(one.evaluate(&request).is_trigger());
    group.bench_function("one_member_evaluate", |b| b.iter(|| one.evaluate(black_box(&request))));
    for n in [1, 100, 1_000, 10_000] {
        let set = WebhookSet::new(members(n, 1));
        assert_eq!(set.matches(&request).iter().collect::<Vec<_>>(), vec![n / 2]);
        group.bench_with_input(BenchmarkId::new("shared_secret", n), &set, |b, set| {
            b.iter(|| set.matches(black_box(&request)))
        });
    }
    let set = WebhookSet::new(members(1_000, 1_000));
    let sig = github::signature_256(b"secret-500", &body);
    let request = Request::new(&body).header("X-Hub-Signature-256", &sig);
    let m = set.matches(&request);
    assert_eq!((m.iter().collect::<Vec<_>>(), m.signatures_checked()), (vec![500], 1_000));
    group.bench_function("distinct_secrets/1000", |b| b.iter(|| set.matches(black_box(&request))));
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
