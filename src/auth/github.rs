//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the raw body
//! with the secret) and the legacy `X-Hub-Signature: sha1=<hex>`.
//!
//! The keyed HMAC states are built once at compile time and cloned per request, which saves the
//! two key-block compressions. The comparison is `hmac`'s `verify_slice` (constant-time, through
//! `subtle`). A present SHA-256 header is the only one checked: a wrong one never falls back to
//! SHA-1, so an attacker cannot downgrade the check by adding a SHA-1 header. Previous secrets
//! (key rotation) go through the same header rules and the same comparison, one after another.

use std::fmt;
use std::time::SystemTime;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::request::{HeaderSlot, Request};
use crate::verdict::{Secret, SignatureError, SignatureHeader};

/// The `X-Hub-Signature-256` value GitHub sends for `body` signed with `secret`:
/// `sha256=` and 64 lowercase hex digits.
///
/// ```
/// // GitHub's documented test vector.
/// let sig = codepipeline_webhooks::github::signature_256(b"It's a Secret to Everybody", b"Hello, World!");
/// assert_eq!(sig, "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17");
/// ```
pub fn signature_256(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The legacy `X-Hub-Signature` value: `sha1=` and 40 lowercase hex digits.
pub fn signature_1(secret: &[u8], body: &[u8]) -> String {
    let mut mac = Hmac::<Sha1>::new_from_slice(secret).expect("HMAC takes keys of any length");
    mac.update(body);
    format!("sha1={}", hex::encode(mac.finalize().into_bytes()))
}

/// Checks a delivery's GitHub signature against `secret`, with exactly the rules
/// [`Webhook::evaluate`](crate::Webhook::evaluate) uses: `X-Hub-Signature-256` if present (a wrong
/// one never falls back to SHA-1), else the legacy `X-Hub-Signature`; a repeated header is refused;
/// the comparison is constant-time. For hosts that want only GitHub's check.
///
/// ```
/// use codepipeline_webhooks::{Request, SignatureError, SignatureHeader, github};
/// let body = br#"{"zen":"Design for failure."}"#;
/// let signature = github::signature_256(b"s3cr3t", body);
/// let request = Request::new(body).header("X-Hub-Signature-256", &signature);
/// assert_eq!(github::verify(b"s3cr3t", &request), Ok(()));
/// assert_eq!(github::verify(b"other", &request), Err(SignatureError::Mismatch(SignatureHeader::Sha256)));
/// assert_eq!(github::verify(b"s3cr3t", &Request::new(body)), Err(SignatureError::Missing { sha256_required: false }));
/// ```
pub fn verify(secret: &[u8], request: &Request<'_>) -> Result<(), SignatureError> {
    GithubHmac::new(secret, &[], false).verify(request).map(|_| ())
}

/// One secret's keyed HMAC states, built once.
#[derive(Clone)]
struct Keys {
    sha256: Hmac<Sha256>,
    sha1: Hmac<Sha1>,
}

impl Keys {
    fn new(key: &[u8]) -> Self {
        Self {
            sha256: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
            sha1: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
        }
    }
}

/// A previous secret (key rotation) and the deadline it is accepted until, if any.
#[derive(Clone, Copy, Debug)]
pub(crate) struct PreviousSecret<'s> {
    pub(crate) secret: &'s [u8],
    pub(crate) until: Option<SystemTime>,
}

/// A previous secret's keyed states: rotation is part of the key, so a key past its deadline is
/// never tried.
#[derive(Clone)]
struct PreviousKeys {
    keys: Keys,
    until: Option<SystemTime>,
}

impl PreviousKeys {
    /// Whether the key may be tried for a delivery with this clock reading: a deadline needs a
    /// reading before it (no reading: not tried).
    fn live(&self, now: Option<SystemTime>) -> bool {
        self.until.is_none_or(|until| now.is_some_and(|now| now < until))
    }
}

/// The compiled GITHUB_HMAC check: the current secret and the previous ones, each with its
/// deadline.
#[derive(Clone)]
pub(crate) struct GithubHmac {
    current: Keys,
    previous: Vec<PreviousKeys>,
    require_sha256: bool,
    /// SHA-256 over every secret and deadline: equal for two checks exactly when they accept the
    /// same requests. Never shown.
    key_id: [u8; 32],
}

impl fmt::Debug for GithubHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubHmac")
            .field("secret", &crate::error::REDACTED)
            .field("previous_secrets", &self.previous.len())
            .field("require_sha256", &self.require_sha256)
            .finish()
    }
}

/// A signature header's decoded MAC.
enum SentMac {
    Sha256([u8; 32]),
    Sha1([u8; 20]),
}

impl GithubHmac {
    pub(crate) fn new(secret: &[u8], previous: &[PreviousSecret<'_>], require_sha256: bool) -> Self {
        let mut id = Sha256::new();
        id.update([u8::from(require_sha256)]);
        let current = PreviousSecret { secret, until: None };
        for key in std::iter::once(&current).chain(previous) {
            id.update((key.secret.len() as u64).to_be_bytes());
            id.update(key.secret);
            match key.until.map(|t| t.duration_since(SystemTime::UNIX_EPOCH)) {
                None => id.update([0]),
                Some(Ok(d)) => {
                    id.update([1]);
                    id.update(d.as_secs().to_be_bytes());
                    id.update(d.subsec_nanos().to_be_bytes());
                }
                Some(Err(before)) => {
                    id.update([2]);
                    id.update(before.duration().as_secs().to_be_bytes());
                    id.update(before.duration().subsec_nanos().to_be_bytes());
                }
            }
        }
        Self {
            current: Keys::new(secret),
            previous: previous.iter().map(|p| PreviousKeys { keys: Keys::new(p.secret), until: p.until }).collect(),
            require_sha256,
            key_id: id.finalize().into(),
        }
    }

    /// A grouping key: equal for two checks exactly when they accept the same requests (the same
    /// secrets, deadlines and header rule), so that a `WebhookSet` verifies each distinct check
    /// once. A digest: it shows nothing of the secrets.
    pub(crate) fn grouping_key(&self) -> [u8; 32] {
        self.key_id
    }

    /// Checks the request's signature over its exact body: the header rules first, then the
    /// current secret, then each previous one still live at the request's clock reading, every
    /// comparison constant-time.
    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<Secret, SignatureError> {
        let (header, tag) = self.sent_mac(request)?;
        let body = request.body();
        let verifies = |keys: &Keys| match &tag {
            SentMac::Sha256(tag) => {
                let mut mac = keys.sha256.clone();
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            }
            SentMac::Sha1(tag) => {
                let mut mac = keys.sha1.clone();
                mac.update(body);
                mac.verify_slice(tag).is_ok()
            }
        };
        if verifies(&self.current) {
            return Ok(Secret::Current);
        }
        let now = request.clock_reading();
        if self.previous.iter().filter(|p| p.live(now)).any(|p| verifies(&p.keys)) {
            return Ok(Secret::Previous);
        }
        Err(SignatureError::Mismatch(header))
    }

    /// Which header is checked and the MAC it carries.
    fn sent_mac(&self, request: &Request<'_>) -> Result<(SignatureHeader, SentMac), SignatureError> {
        match request.signature_headers() {
            (HeaderSlot::Repeated, _) => Err(SignatureError::Repeated(SignatureHeader::Sha256)),
            (_, HeaderSlot::Repeated) => Err(SignatureError::Repeated(SignatureHeader::Sha1)),
            (HeaderSlot::One(value), _) => {
                let mut tag = [0u8; 32];
                decode(value, "sha256=", &mut tag).ok_or(SignatureError::Malformed(SignatureHeader::Sha256))?;
                Ok((SignatureHeader::Sha256, SentMac::Sha256(tag)))
            }
            (HeaderSlot::Absent, _) if self.require_sha256 => Err(SignatureError::Missing { sha256_required: true }),
            (HeaderSlot::Absent, HeaderSlot::One(value)) => {
                let mut tag = [0u8; 20];
                decode(value, "sha1=", &mut tag).ok_or(SignatureError::Malformed(SignatureHeader::Sha1))?;
                Ok((SignatureHeader::Sha1, SentMac::Sha1(tag)))
            }
            (HeaderSlot::Absent, HeaderSlot::Absent) => Err(SignatureError::Missing { sha256_required: false }),
        }
    }
}

/// `prefix` then exactly `2 * out.len()` hex digits of either case, with HTTP's optional
/// whitespace (space, tab) around the value allowed and nothing else.
fn decode(value: &[u8], prefix: &str, out: &mut [u8]) -> Option<()> {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = value.iter().position(|b| !is_ows(b)).unwrap_or(value.len());
    let end = value.iter().rposition(|b| !is_ows(b)).map_or(start, |i| i + 1);
    let value = &value[start..end];
    let digits = value.strip_prefix(prefix.as_bytes())?;
    if digits.len() != 2 * out.len() {
        return None;
    }
    hex::decode_to_slice(digits, out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_only_the_exact_form() {
        let mut out = [0u8; 20];
        let hex40 = "01dc10d0c83e72ed246219cdd91669667fe2ca59";
        assert!(decode(format!("sha1={hex40}").as_bytes(), "sha1=", &mut out).is_some());
        assert!(decode(format!("sha1={}", hex40.to_uppercase()).as_bytes(), "sha1=", &mut out).is_some());
        assert!(decode(format!(" sha1={hex40}\t").as_bytes(), "sha1=", &mut out).is_some());
        for bad in [
            format!("SHA1={hex40}"),
            format!("sha1={}", &hex40[..39]),
            format!("sha1={hex40}0"),
            format!("sha1= {hex40}"),
            format!("sha256={hex40}"),
            format!("sha1={}g", &hex40[..39]),
            format!("sha1={hex40}\r\n"),
            String::new(),
        ] {
            assert!(decode(bad.as_bytes(), "sha1=", &mut out).is_none(), "{bad:?}");
        }
    }
}
