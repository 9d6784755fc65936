//! From the raw body to the JSON text the filters read.
//!
//! GitHub delivers either `application/json` (the body is the JSON) or
//! `application/x-www-form-urlencoded` (the body is `payload=<url-encoded JSON>`). The signature
//! covers the raw bytes in both cases; only the filters see the decoded JSON. Any other or absent
//! `Content-Type` is read as JSON.

use std::borrow::Cow;

use percent_encoding::percent_decode;

use crate::request::Request;
use crate::verdict::{PayloadProblem, Rejection};

/// The JSON text of the delivery, borrowed from the body unless it came in a form.
pub(crate) fn json_text<'a>(request: &Request<'a>) -> Result<Cow<'a, str>, Rejection> {
    let body = request.body();
    match request.is_form() {
        None => Err(malformed(PayloadProblem::ContentTypeRepeated)),
        Some(false) => utf8(body).map(Cow::Borrowed),
        Some(true) => form_payload(body).map(Cow::Owned),
    }
}

fn utf8(bytes: &[u8]) -> Result<&str, Rejection> {
    std::str::from_utf8(bytes).map_err(|e| malformed(PayloadProblem::NotUtf8 { offset: e.valid_up_to() }))
}

/// The decoded `payload` field of a form body: exactly one, strictly UTF-8.
fn form_payload(body: &[u8]) -> Result<String, Rejection> {
    let mut payload = None;
    for pair in body.split(|&b| b == b'&') {
        let (name, value) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (&pair[..eq], &pair[eq + 1..]),
            None => (pair, &b""[..]),
        };
        if decode_component(name) != b"payload" {
            continue;
        }
        if payload.is_some() {
            return Err(malformed(PayloadProblem::FormPayloadRepeated));
        }
        payload = Some(value);
    }
    let value = payload.ok_or(malformed(PayloadProblem::FormWithoutPayload))?;
    let decoded = decode_component(value);
    String::from_utf8(decoded)
        .map_err(|e| malformed(PayloadProblem::FormPayloadNotUtf8 { offset: e.utf8_error().valid_up_to() }))
}

/// Form decoding of one name or value: `+` is a space, then percent-decoding.
fn decode_component(raw: &[u8]) -> Vec<u8> {
    let plus_as_space: Vec<u8> = raw.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
    percent_decode(&plus_as_space).collect()
}

fn malformed(problem: PayloadProblem) -> Rejection {
    Rejection::PayloadMalformed(problem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(body: &str) -> Result<String, Rejection> {
        json_text(&Request::new(body).header("Content-Type", "application/x-www-form-urlencoded")).map(Cow::into_owned)
    }

    #[test]
    fn decodes_the_form_payload() {
        assert_eq!(form("payload=%7B%22a%22%3A%22b+c%2B%22%7D").unwrap(), r#"{"a":"b c+"}"#);
        assert_eq!(form("x=1&payload=%7B%7D&y=2").unwrap(), "{}");
        assert!(form("x=1").unwrap_err().to_string().contains("no payload field"));
        assert!(form("payload=1&payload=2").unwrap_err().to_string().contains("more than one"));
        assert!(form("payload=%FF").unwrap_err().to_string().contains("not UTF-8"));
    }

    #[test]
    fn json_bodies_are_borrowed_and_must_be_utf8() {
        assert!(matches!(json_text(&Request::new("{}")).unwrap(), Cow::Borrowed("{}")));
        assert!(json_text(&Request::new(b"{\"a\":\"\xff\"}")).unwrap_err().to_string().contains("offset 6"));
    }
}
