//! A dudect-style check that signature comparison is constant-time: signatures wrong in their
//! first byte and in their last byte take the same time to reject. Welch's t-test over interleaved
//! samples, with dudect's cropping; |t| > 4.5 would mean a measurable difference.
//!
//! Ignored by default (it takes about a minute and wants a quiet machine):
//! `cargo test --release --test timing -- --ignored --nocapture`

use std::hint::black_box;
use std::time::Instant;

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition, github};
use serde_json::json;

const SAMPLES: usize = 400_000;

/// Welch's t statistic of two samples.
fn welch_t(a: &[f64], b: &[f64]) -> f64 {
    let stats = |x: &[f64]| {
        let n = x.len() as f64;
        let mean = x.iter().sum::<f64>() / n;
        let var = x.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0);
        (mean, var, n)
    };
    let (ma, va, na) = stats(a);
    let (mb, vb, nb) = stats(b);
    (ma - mb) / (va / na + vb / nb).sqrt()
}

/// Times `run(class)` over randomly interleaved classes, and returns the largest |t| over
/// dudect's crops (all samples, and those under several percentiles).
fn max_t(mut run: impl FnMut(bool)) -> f64 {
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut samples: Vec<(bool, f64)> = Vec::with_capacity(SAMPLES);
    for _ in 0..SAMPLES {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let class = state & 1 == 1;
        let started = Instant::now();
        run(class);
        samples.push((class, started.elapsed().as_nanos() as f64));
    }
    let mut sorted: Vec<f64> = samples.iter().map(|s| s.1).collect();
    sorted.sort_by(f64::total_cmp);
    let mut worst: f64 = 0.0;
    for percentile in [1.0, 0.99, 0.9, 0.75, 0.5] {
        let cut = sorted[((sorted.len() - 1) as f64 * percentile) as usize];
        let a: Vec<f64> = samples.iter().filter(|s| s.0 && s.1 <= cut).map(|s| s.1).collect();
        let b: Vec<f64> = samples.iter().filter(|s| !s.0 && s.1 <= cut).map(|s| s.1).collect();
        worst = worst.max(welch_t(&a, &b).abs());
    }
    worst
}

#[test]
#[ignore = "statistical timing test; run with --release --ignored on a quiet machine"]
fn signature_rejection_time_does_not_depend_on_where_it_differs() {
    let secret = "timing-secret";
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "t", "targetPipeline": "p", "targetAction": "a", "filters": [],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": secret}
    }))
    .unwrap();
    let webhook = Webhook::new(&d, &ActionConfiguration::new()).unwrap();
    let body = br#"{"ref":"refs/heads/main"}"#;
    let good = github::signature_256(secret.as_bytes(), body);
    // Change one hex digit to another of the same kind (digit for digit, letter for letter), so
    // that the two classes differ only in where they differ from the MAC, not in how their hex
    // decodes: the header is the attacker's own input; the MAC is the secret.
    let flip = |at: usize| {
        let mut s = good.clone().into_bytes();
        s[at] = match s[at] {
            b'0'..=b'8' | b'a'..=b'e' => s[at] + 1,
            _ => s[at] - 1,
        };
        String::from_utf8(s).unwrap()
    };
    let (first, last) = (flip(7), flip(good.len() - 1));
    let first_req = Request::new(body).header("X-Hub-Signature-256", &first);
    let last_req = Request::new(body).header("X-Hub-Signature-256", &last);
    let t = max_t(|class| {
        let _ = black_box(webhook.evaluate(black_box(if class { &first_req } else { &last_req })));
    });

    // The harness can see a leak: the same measurement of a comparison that stops at the first
    // differing byte, over inputs that differ first or last.
    let a = [7u8; 4096];
    let mut b_first = a;
    b_first[0] = 8;
    let mut b_last = a;
    b_last[4095] = 8;
    let control = max_t(|class| {
        black_box(black_box(&a[..]) == black_box(if class { &b_first[..] } else { &b_last[..] }));
    });
    println!("signature check: max |t| = {t:.2}; early-exit control: max |t| = {control:.2}");
    assert!(control > 4.5, "the harness cannot see a known leak ({control:.2}); the result means nothing");
    assert!(t < 4.5, "rejection time depends on where the signature differs: |t| = {t:.2}");
}
