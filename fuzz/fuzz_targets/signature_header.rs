//! Arbitrary `X-Hub-Signature-256` and `X-Hub-Signature` values: parsing never panics, and only the
//! exact MAC of the body passes (hex in either case, HTTP's optional whitespace around it).
//!
//! Input: a selector byte (bit 0: send the SHA-256 header; bit 1: send the SHA-1 header), then
//! the header value(s): the SHA-256 value up to the first newline, the SHA-1 value after it.
#![no_main]

use codepipeline_webhooks::{ActionConfiguration, Request, Webhook, WebhookDefinition};
use libfuzzer_sys::fuzz_target;
use serde_json::json;

const SECRET: &str = "header-fuzz-secret";
const BODY: &[u8] = br#"{"ref":"refs/heads/main"}"#;

fn mac(kind: &str) -> Vec<u8> {
    let sig = match kind {
        "sha256" => codepipeline_webhooks::github::signature_256(SECRET.as_bytes(), BODY),
        _ => codepipeline_webhooks::github::signature_1(SECRET.as_bytes(), BODY),
    };
    let hex = sig.split_once('=').unwrap().1;
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

/// The reference: does `value` carry exactly the MAC, in the accepted form?
fn exact(value: &[u8], prefix: &str, mac: &[u8]) -> bool {
    let trimmed = {
        let start = value.iter().position(|b| *b != b' ' && *b != b'\t').unwrap_or(value.len());
        let end = value.iter().rposition(|b| *b != b' ' && *b != b'\t').map_or(start, |i| i + 1);
        &value[start..end]
    };
    let Some(hex) = trimmed.strip_prefix(prefix.as_bytes()) else { return false };
    hex.len() == 2 * mac.len()
        && hex.chunks(2).zip(mac).all(|(pair, byte)| {
            std::str::from_utf8(pair)
                .ok()
                .filter(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                == Some(*byte)
        })
}

fuzz_target!(|data: &[u8]| {
    let [selector, rest @ ..] = data else { return };
    let (v256, v1) = match rest.iter().position(|&b| b == b'\n') {
        Some(at) => (&rest[..at], &rest[at + 1..]),
        None => (rest, &b""[..]),
    };
    let d: WebhookDefinition = serde_json::from_value(json!({
        "name": "h", "targetPipeline": "p", "targetAction": "a", "filters": [],
        "authentication": "GITHUB_HMAC", "authenticationConfiguration": {"SecretToken": SECRET}
    }))
    .unwrap();
    let webhook = Webhook::new(&d, &ActionConfiguration::new()).unwrap();
    let mut request = Request::new(BODY);
    if selector & 1 != 0 {
        request = request.header("X-Hub-Signature-256", v256);
    }
    if selector & 2 != 0 {
        request = request.header("X-Hub-Signature", v1);
    }
    let expected = if selector & 1 != 0 {
        exact(v256, "sha256=", &mac("sha256"))
    } else if selector & 2 != 0 {
        exact(v1, "sha1=", &mac("sha1"))
    } else {
        false
    };
    let verdict = webhook.evaluate(&request);
    assert_eq!(verdict.is_trigger(), expected, "{verdict}");
});
