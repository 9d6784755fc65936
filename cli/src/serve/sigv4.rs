//! AWS Signature Version 4 verification of control-plane requests.
//!
//! The expected signature is computed by the maintained `aws-sigv4` crate over the headers the
//! client says it signed, and compared with the one sent in constant time (`subtle`).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::HeaderMap;
use subtle::ConstantTimeEq;

/// The signing name of CodePipeline.
pub const SERVICE: &str = "codepipeline";
/// The largest clock skew accepted.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);

/// One access key the server accepts. `Debug` does not show the secret.
#[derive(Clone)]
pub struct AccessKey {
    /// The access key id.
    pub id: String,
    /// The secret access key.
    pub secret: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey").field("id", &self.id).field("secret", &codepipeline_webhooks::REDACTED).finish()
    }
}

/// Why a request is not authenticated: the AWS exception and its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuthError {
    /// `MissingAuthenticationTokenException`, `UnrecognizedClientException`,
    /// `InvalidSignatureException` or `IncompleteSignatureException`.
    pub code: &'static str,
    /// What is wrong (never a secret or an expected signature).
    pub message: String,
}

fn err(code: &'static str, message: impl Into<String>) -> AuthError {
    AuthError { code, message: message.into() }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 ...` header.
#[derive(Debug, PartialEq, Eq)]
struct Authorization<'a> {
    access_key: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Result<Authorization<'_>, AuthError> {
    let incomplete = |m: &str| err("IncompleteSignatureException", m.to_owned());
    let rest = value
        .strip_prefix("AWS4-HMAC-SHA256")
        .ok_or_else(|| incomplete("Authorization header requires the AWS4-HMAC-SHA256 algorithm"))?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim();
        if let Some(v) = part.strip_prefix("Credential=") {
            credential = Some(v);
        } else if let Some(v) = part.strip_prefix("SignedHeaders=") {
            signed = Some(v);
        } else if let Some(v) = part.strip_prefix("Signature=") {
            signature = Some(v);
        }
    }
    let credential = credential.ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter"))?;
    let signed = signed.ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter"))?;
    let signature = signature.ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter"))?;
    let mut scope = credential.split('/');
    let (Some(access_key), Some(date), Some(region), Some(service), Some("aws4_request"), None) =
        (scope.next(), scope.next(), scope.next(), scope.next(), scope.next(), scope.next())
    else {
        return Err(incomplete("Credential must have the form <key>/<date>/<region>/<service>/aws4_request"));
    };
    let signed_headers: Vec<&str> = signed.split(';').filter(|h| !h.is_empty()).collect();
    Ok(Authorization { access_key, date, region, service, signed_headers, signature })
}

/// `20261127T225300Z` → the time it names.
pub fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let b = value.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<i64> {
        let s = value.get(r)?;
        if !s.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        s.parse().ok()
    };
    let (y, m, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (hh, mm, ss) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || hh > 23 || mm > 59 || ss > 60 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    u64::try_from(secs).ok().map(|s| UNIX_EPOCH + Duration::from_secs(s))
}

/// What can be checked before the body is read: an `Authorization` header is present and well
/// formed, names a known access key, the right region and service, and `X-Amz-Date` is within
/// the skew; and the headers that must be signed are. The control plane calls it before it reads a
/// byte of the body, so that a request without valid credentials costs no buffering.
pub fn precheck(keys: &[AccessKey], region: &str, headers: &HeaderMap, now: SystemTime) -> Result<(), AuthError> {
    credentials(keys, region, headers, now).map(|_| ())
}

/// The checks of [`precheck`]: the key, the parsed header and the signing time.
fn credentials<'k, 'h>(
    keys: &'k [AccessKey],
    region: &str,
    headers: &'h HeaderMap,
    now: SystemTime,
) -> Result<(&'k AccessKey, Authorization<'h>, SystemTime), AuthError> {
    let Some(authorization) = headers.get(http::header::AUTHORIZATION) else {
        return Err(err("MissingAuthenticationTokenException", "Missing Authentication Token"));
    };
    let authorization = authorization
        .to_str()
        .map_err(|_| err("IncompleteSignatureException", "the Authorization header is not ASCII"))?;
    let auth = parse_authorization(authorization)?;
    let Some(key) = keys.iter().find(|k| bool::from(k.id.as_bytes().ct_eq(auth.access_key.as_bytes()))) else {
        return Err(err("UnrecognizedClientException", "The security token included in the request is invalid."));
    };
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| err("IncompleteSignatureException", "the request has no valid X-Amz-Date header"))?;
    let time = parse_amz_date(amz_date)
        .ok_or_else(|| err("IncompleteSignatureException", "X-Amz-Date must have the form YYYYMMDD'T'HHMMSS'Z'"))?;
    let skew = now.duration_since(time).unwrap_or_else(|e| e.duration());
    if skew > MAX_SKEW {
        return Err(err(
            "InvalidSignatureException",
            format!(
                "Signature expired: {amz_date} is now earlier or later than the server's time by more than 5 minutes."
            ),
        ));
    }
    if !amz_date.starts_with(auth.date) || auth.date.len() != 8 {
        return Err(err("InvalidSignatureException", "the credential scope date does not match X-Amz-Date"));
    }
    if auth.region != region {
        return Err(err(
            "InvalidSignatureException",
            format!(
                "Credential should be scoped to a valid region, not '{}'; this server is in '{region}'.",
                auth.region
            ),
        ));
    }
    if auth.service != SERVICE {
        return Err(err(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{SERVICE}'."),
        ));
    }
    // The operation must be covered too: otherwise a captured request could be replayed, within
    // the skew window, as another operation.
    let target_sent = headers.contains_key("x-amz-target");
    for required in ["host", "x-amz-date", "x-amz-target"] {
        if (required != "x-amz-target" || target_sent) && !auth.signed_headers.contains(&required) {
            return Err(err("InvalidSignatureException", format!("the '{required}' header must be signed")));
        }
    }
    Ok((key, auth, time))
}

/// Verifies a request's SigV4 signature against the accepted keys, the region and `now`.
///
/// `path_and_query` is the request target as received; `headers` all the request's headers.
pub fn verify(
    keys: &[AccessKey],
    region: &str,
    method: &str,
    path_and_query: &str,
    headers: &HeaderMap,
    body: &[u8],
    now: SystemTime,
) -> Result<(), AuthError> {
    let (key, auth, time) = credentials(keys, region, headers, now)?;

    // The headers the client signed, except x-amz-date, which the signer adds from `time`.
    let mut signed: Vec<(&str, &str)> = Vec::with_capacity(auth.signed_headers.len());
    for name in &auth.signed_headers {
        if *name == "x-amz-date" {
            continue;
        }
        let mut any = false;
        for value in headers.get_all(*name) {
            let value = value
                .to_str()
                .map_err(|_| err("InvalidSignatureException", format!("the signed header '{name}' is not ASCII")))?;
            signed.push((name, value));
            any = true;
        }
        if !any {
            return Err(err("InvalidSignatureException", format!("the signed header '{name}' is missing")));
        }
    }

    let identity: Identity = Credentials::from_keys(key.id.clone(), key.secret.clone(), None).into();
    let mut settings = SigningSettings::default();
    settings.excluded_headers = Some(Vec::new());
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(SERVICE)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| err("InvalidSignatureException", e.to_string()))?
        .into();
    let request = SignableRequest::new(method, path_and_query, signed.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| err("InvalidSignatureException", "the request cannot be canonicalised"))?;
    let expected =
        sign(request, &params).map_err(|_| err("InvalidSignatureException", "the request cannot be signed"))?;
    if bool::from(expected.signature().as_bytes().ct_eq(auth.signature.as_bytes())) {
        Ok(())
    } else {
        Err(err(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amz_dates() {
        assert_eq!(parse_amz_date("19700101T000000Z"), Some(UNIX_EPOCH));
        assert_eq!(parse_amz_date("20000301T000001Z"), Some(UNIX_EPOCH + Duration::from_secs(951_868_801)));
        assert_eq!(parse_amz_date("20261127T225300"), None);
        assert_eq!(parse_amz_date("2026112xT225300Z"), None);
    }

    #[test]
    fn authorization_header() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKID/20261127/us-east-1/codepipeline/aws4_request, SignedHeaders=host;x-amz-date, Signature=abcd",
        )
        .unwrap();
        assert_eq!(a.access_key, "AKID");
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert_eq!(parse_authorization("Basic x").unwrap_err().code, "IncompleteSignatureException");
    }

    #[test]
    fn round_trip_with_the_signer() {
        let key = AccessKey { id: "AKIDEXAMPLE".into(), secret: "secret".into() };
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let identity: Identity = Credentials::from_keys("AKIDEXAMPLE", "secret", None).into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name(SERVICE)
            .time(now)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let body = br#"{"webhookName":"x"}"#;
        let headers = [("host", "127.0.0.1:8080"), ("x-amz-target", "CodePipeline_20150709.ListWebhooks")];
        let out =
            sign(SignableRequest::new("POST", "/", headers.into_iter(), SignableBody::Bytes(body)).unwrap(), &params)
                .unwrap();
        let (instructions, _) = out.into_parts();
        let mut map = HeaderMap::new();
        for (n, v) in headers {
            map.insert(n, v.parse().unwrap());
        }
        for (n, v) in instructions.headers() {
            map.insert(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        let keys = [key];
        assert_eq!(verify(&keys, "us-east-1", "POST", "/", &map, body, now), Ok(()));
        assert_eq!(
            verify(&keys, "us-east-1", "POST", "/", &map, b"{}", now).unwrap_err().code,
            "InvalidSignatureException"
        );
        let late = now + Duration::from_secs(301);
        assert!(
            verify(&keys, "us-east-1", "POST", "/", &map, body, late)
                .unwrap_err()
                .message
                .starts_with("Signature expired")
        );
        // An unsigned X-Amz-Target added afterwards.
        let mut unsigned = HeaderMap::new();
        let headers_without_target = [("host", "127.0.0.1:8080")];
        let out = sign(
            SignableRequest::new("POST", "/", headers_without_target.into_iter(), SignableBody::Bytes(body)).unwrap(),
            &params,
        )
        .unwrap();
        for (n, v) in headers_without_target.into_iter().chain(out.output().headers()) {
            unsigned.insert(http::HeaderName::from_bytes(n.as_bytes()).unwrap(), v.parse().unwrap());
        }
        assert_eq!(verify(&keys, "us-east-1", "POST", "/", &unsigned, body, now), Ok(()));
        unsigned.insert("x-amz-target", "CodePipeline_20150709.DeleteWebhook".parse().unwrap());
        let e = verify(&keys, "us-east-1", "POST", "/", &unsigned, body, now).unwrap_err();
        assert_eq!(
            (e.code, e.message.as_str()),
            ("InvalidSignatureException", "the 'x-amz-target' header must be signed")
        );
        let other = [AccessKey { id: "OTHER".into(), secret: "secret".into() }];
        assert_eq!(
            verify(&other, "us-east-1", "POST", "/", &map, body, now).unwrap_err().code,
            "UnrecognizedClientException"
        );
        assert_eq!(
            verify(&keys, "us-east-1", "POST", "/", &HeaderMap::new(), body, now).unwrap_err().code,
            "MissingAuthenticationTokenException"
        );
    }
}
