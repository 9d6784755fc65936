//! The attacks of the bounded-cost work, before and after: each adversarial (path, body) pair
//! through `Webhook::evaluate` against the floor (`IgnoredAny` skip of the same body) and, where it
//! finishes in reasonable time, the reference (serde_json_path over a `serde_json::Value`, the way
//! this crate evaluated indefinite paths before). Also compile time for the worst paths that
//! compile, and a 1,000-member `WebhookSet` on the set attack.
//!
//! `cargo bench --bench bounded` (all), or with a filter: `cargo bench --bench bounded -- descendants`.

use std::hint::black_box;
use std::time::Duration;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, WebhookSet};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use serde_json_path::JsonPath;

fn definition(name: &str, path: &str, expected: &str) -> WebhookDefinition {
    serde_json::from_value(json!({
        "name": name, "targetPipeline": "p", "targetAction": "Source",
        "filters": [{"jsonPath": path, "matchEquals": expected}],
        "authentication": "UNAUTHENTICATED", "authenticationConfiguration": {}
    }))
    .unwrap()
}

fn many(item: &str, copies: usize) -> String {
    format!("[{}]", vec![item; copies].join(","))
}

/// (name, path, body, whether the reference finishes in under a second).
fn cases() -> Vec<(&'static str, &'static str, String, bool)> {
    // 100 deep: serde_json's own recursion limit (128) must let the reference parse it.
    let nested = "[".repeat(100) + &"]".repeat(100);
    vec![
        ("descendants_3x_nested_200B", "$..*..*..*", nested.clone(), false),
        ("descendants_2x_nested_200B", "$..*..*", nested.clone(), true),
        ("nested_filters_nested_200B", "$..[?@..[?@..*]]", nested, false),
        ("match_per_node_1MB", "$[?match(@.a, 'y')]", many(r#"{"a":"x"}"#, 110_000), true),
        (
            "dom_tiny_objects_1MB",
            "$.commits[*].modified[*]",
            format!("{{\"commits\":{}}}", many(r#"{"":0}"#, 150_000)),
            true,
        ),
        ("wildcard_1MB", "$[*]", many(r#""a""#, 250_000), true),
    ]
}

fn bench(c: &mut Criterion) {
    let config = ActionConfiguration::new();
    for (name, path, body, reference_finishes) in cases() {
        let mut group = c.benchmark_group(name);
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.sample_size(20);
        group.bench_function("floor/ignored_any_skip", |b| {
            b.iter(|| serde_json::from_str::<serde::de::IgnoredAny>(black_box(&body)).is_ok())
        });
        let webhook = Webhook::new(&definition("w", path, "no such value"), &config).unwrap();
        let request = Request::new(&body);
        group.bench_function("evaluate", |b| b.iter(|| webhook.evaluate(black_box(&request))));
        if reference_finishes {
            let compiled = JsonPath::parse(path).unwrap();
            group.bench_function("reference/serde_json_path_value", |b| {
                b.iter(|| {
                    let value: Value = serde_json::from_str(black_box(&body)).unwrap();
                    compiled.query(&value).len()
                })
            });
        }
        group.finish();
    }

    // The set attack: 1,000 members `$[*]` = `a` or `b` against 1 MB of ["a","a",...].
    let body = many(r#""a""#, 250_000);
    let members: Vec<Webhook> = (0..1000)
        .map(|i| {
            Webhook::new(&definition(&format!("h{i}"), "$[*]", if i % 2 == 0 { "a" } else { "b" }), &config).unwrap()
        })
        .collect();
    let one = members[1].clone();
    let set = WebhookSet::new(members);
    let request = Request::new(&body);
    let mut group = c.benchmark_group("set_1000_wildcard_1MB");
    group.sample_size(20);
    group.bench_function("one_member_evaluate", |b| b.iter(|| one.evaluate(black_box(&request))));
    group.bench_function("set_matches", |b| b.iter(|| set.matches(black_box(&request))));
    group.finish();

    // Compile: the worst paths that pass the limits.
    let mut group = c.benchmark_group("compile");
    for (name, path) in [
        ("filter_nesting_4", "$[?@[?@[?@[?@]]]]"),
        ("filter_nesting_4_wide", "$[?@[?@[?@[?@.a==1&&@.b<2||!@.c]]]&&@[?@[?@[?@.d]]]||@[?@[?@[?match(@.e,'x+')]]]]"),
        ("github_branch", "$.ref"),
    ] {
        let d = definition("w", path, "x");
        group.bench_function(name, |b| b.iter(|| Webhook::new(black_box(&d), &config).unwrap()));
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().warm_up_time(Duration::from_millis(500)).measurement_time(Duration::from_secs(2));
    targets = bench
}
criterion_main!(benches);
