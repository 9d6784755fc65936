//! Properties: definitions survive a serde round trip; CIDR membership agrees with a plain
//! u128-mask model; HMAC verification accepts the exact signature and rejects every one-bit change;
//! placeholders with known keys leave none behind.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use codepipeline_webhooks::{
    ActionConfiguration, PutWebhookInput, Rejection, Request, SignatureError, SignatureHeader, Tag, Webhook,
    WebhookAuthConfiguration, WebhookAuthenticationType, WebhookDefinition, WebhookFilterRule, github,
};
use common::*;
use proptest::prelude::*;
use serde_json::json;

fn arb_text() -> impl Strategy<Value = String> {
    "[A-Za-z0-9.@_\\-{}$\\[\\]'\" é😀\\\\]{0,20}"
}

fn arb_definition() -> impl Strategy<Value = WebhookDefinition> {
    (
        arb_text(),
        arb_text(),
        arb_text(),
        prop::collection::vec((arb_text(), prop::option::of(arb_text())), 0..7),
        prop_oneof![
            Just(WebhookAuthenticationType::GithubHmac),
            Just(WebhookAuthenticationType::Ip),
            Just(WebhookAuthenticationType::Unauthenticated)
        ],
        prop::option::of(arb_text()),
        prop::option::of(arb_text()),
    )
        .prop_map(|(name, target_pipeline, target_action, filters, authentication, range, secret)| {
            WebhookDefinition {
                name,
                target_pipeline,
                target_action,
                filters: filters
                    .into_iter()
                    .map(|(json_path, match_equals)| WebhookFilterRule { json_path, match_equals })
                    .collect(),
                authentication,
                authentication_configuration: WebhookAuthConfiguration {
                    allowed_ip_range: range,
                    secret_token: secret,
                },
            }
        })
}

proptest! {
    #[test]
    fn definitions_survive_a_serde_round_trip(
        webhook in arb_definition(),
        tags in prop::collection::vec((arb_text(), arb_text()), 0..4),
    ) {
        let input = PutWebhookInput { webhook, tags: tags.into_iter().map(|(key, value)| Tag { key, value }).collect() };
        let text = serde_json::to_string(&input).unwrap();
        prop_assert_eq!(&PutWebhookInput::from_json(&text).unwrap(), &input);
        let pretty = serde_json::to_string_pretty(&input.webhook).unwrap();
        prop_assert_eq!(WebhookDefinition::from_json(&pretty).unwrap(), input.webhook.clone());
        // Validation is a function of the definition alone: the same answer after the round trip.
        prop_assert_eq!(PutWebhookInput::from_json(&text).unwrap().validate(), input.validate());
    }
}

/// The model: an address and a range as (family, 128-bit value, prefix), IPv4-mapped IPv6 as IPv4.
fn model(ip: IpAddr) -> (u8, u128) {
    match ip {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4))),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => (4, u128::from(u32::from(v4))),
            None => (6, u128::from(v6)),
        },
    }
}

fn model_contains(range_addr: IpAddr, prefix: u8, source: IpAddr) -> bool {
    let (family, bits, prefix) = match range_addr {
        IpAddr::V4(v4) => (4, u128::from(u32::from(v4)), u32::from(prefix)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) if prefix >= 96 => (4, u128::from(u32::from(v4)), u32::from(prefix) - 96),
            _ => (6, u128::from(v6), u32::from(prefix)),
        },
    };
    let width = if family == 4 { 32 } else { 128 };
    // The top `prefix` bits of a `width`-bit address.
    let mask = if prefix == 0 { 0 } else { (u128::MAX << (width - prefix)) & (u128::MAX >> (128 - width)) };
    let (source_family, source_bits) = model(source);
    source_family == family && (source_bits & mask) == (bits & mask)
}

fn arb_ip() -> impl Strategy<Value = IpAddr> {
    prop_oneof![
        any::<u32>().prop_map(|v| IpAddr::V4(Ipv4Addr::from(v))),
        any::<u128>().prop_map(|v| IpAddr::V6(Ipv6Addr::from(v))),
        any::<u32>().prop_map(|v| IpAddr::V6(Ipv4Addr::from(v).to_ipv6_mapped())),
        // Near a small set of networks, so that hits are common.
        (0u32..4, any::<u8>()).prop_map(|(n, low)| IpAddr::V4(Ipv4Addr::new(10, n as u8, 0, low))),
        (0u32..4, any::<u16>())
            .prop_map(|(n, low)| IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, n as u16, 0, 0, 0, 0, low))),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]
    #[test]
    fn cidr_membership_agrees_with_a_mask_model(range in arb_ip(), prefix in 0u8..=128, source in arb_ip(), bare in prop::bool::weighted(0.1)) {
        let max = if range.is_ipv4() { 32 } else { 128 };
        let prefix = prefix % (max + 1);
        let text = if bare { range.to_string() } else { format!("{range}/{prefix}") };
        let prefix = if bare { max } else { prefix };
        let webhook = {
            let d = definition_with(json!([]), |v| {
                v["authentication"] = json!("IP");
                v["authenticationConfiguration"] = json!({"AllowedIPRange": text});
            });
            Webhook::new(&d, &config()).unwrap()
        };
        let verdict = webhook.evaluate(&Request::new("{}").source_ip(source));
        prop_assert_eq!(verdict.is_trigger(), model_contains(range, prefix, source), "{} from {}: {}", text, source, verdict);
    }

    #[test]
    fn hmac_accepts_the_exact_signature_and_rejects_every_one_bit_change(
        secret in "[ -~]{1,100}",
        body in prop::collection::vec(any::<u8>(), 0..200),
    ) {
        let d = definition_with(json!([]), |v| {
            v["authentication"] = json!("GITHUB_HMAC");
            v["authenticationConfiguration"] = json!({"SecretToken": secret});
        });
        let webhook = Webhook::new(&d, &config()).unwrap();
        let signature = github::signature_256(secret.as_bytes(), &body);
        let ok = webhook.evaluate(&Request::new(&body).header("X-Hub-Signature-256", &signature));
        // The body may not be JSON: what matters is that the signature step passed.
        let signature_passed = ok.rejection().is_none_or(|r| r.step() != codepipeline_webhooks::Step::Signature);
        prop_assert!(signature_passed, "{}", ok);
        let mac = hex::decode(&signature[7..]).unwrap();
        for bit in 0..mac.len() * 8 {
            let mut flipped = mac.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let forged = format!("sha256={}", hex::encode(&flipped));
            let v = webhook.evaluate(&Request::new(&body).header("X-Hub-Signature-256", &forged));
            prop_assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256))));
        }
        if !body.is_empty() {
            let mut tampered = body.clone();
            tampered[0] ^= 1;
            let v = webhook.evaluate(&Request::new(&tampered).header("X-Hub-Signature-256", &signature));
            prop_assert_eq!(v.rejection(), Some(&Rejection::Signature(SignatureError::Mismatch(SignatureHeader::Sha256))));
        }
    }

    #[test]
    fn known_placeholders_leave_none_behind(
        config in prop::collection::btree_map("[A-Za-z][A-Za-z0-9]{0,8}", "[a-z0-9/._-]{0,12}", 1..5),
        parts in prop::collection::vec((any::<prop::sample::Index>(), "[a-z/ ._-]{0,6}"), 1..6),
    ) {
        let keys: Vec<&String> = config.keys().collect();
        let mut template = String::new();
        let mut expected = String::new();
        for (key, literal) in &parts {
            let key = keys[key.index(keys.len())];
            template.push_str(literal);
            template.push_str(&format!("{{{key}}}"));
            expected.push_str(literal);
            expected.push_str(&config[key]);
        }
        prop_assume!(template.chars().count() <= 150);
        let action: ActionConfiguration = config.clone().into();
        let d = definition_with(json!([{"jsonPath": "$.a", "matchEquals": template}]), |_| {});
        let webhook = Webhook::new(&d, &action).unwrap();
        let resolved = webhook.expected_values().next().unwrap().unwrap().to_owned();
        prop_assert_eq!(&resolved, &expected);
        for key in keys {
            let placeholder = format!("{{{key}}}");
            prop_assert!(!resolved.contains(&placeholder), "{} left in {}", placeholder, resolved);
        }
    }
}
