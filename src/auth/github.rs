//! GitHub webhook signatures: `X-Hub-Signature-256: sha256=<hex>` (HMAC-SHA256 of the raw body
//! with the secret) and the legacy `X-Hub-Signature: sha1=<hex>`.
//!
//! The keyed HMAC states are built once at compile time and cloned per request, which saves the
//! two key-block compressions. The comparison is `hmac`'s `verify_slice` (constant-time, through
//! `subtle`). A present SHA-256 header is the only one checked: a wrong one never falls back to
//! SHA-1, so an attacker cannot downgrade the check by adding a SHA-1 header.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::request::{HeaderSlot, Request, X_HUB_SIGNATURE, X_HUB_SIGNATURE_256};
use crate::verdict::Rejection;

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

/// The compiled GITHUB_HMAC check.
#[derive(Clone)]
pub(crate) struct GithubHmac {
    sha256: Hmac<Sha256>,
    sha1: Hmac<Sha1>,
    require_sha256: bool,
    /// SHA-256 of the secret: tells webhooks that share a secret apart from those that do not,
    /// so that a `WebhookSet` verifies each distinct secret once. Never shown.
    key_id: [u8; 32],
}

impl fmt::Debug for GithubHmac {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GithubHmac")
            .field("secret", &crate::definition::REDACTED)
            .field("require_sha256", &self.require_sha256)
            .finish()
    }
}

impl GithubHmac {
    pub(crate) fn new(secret: &str, require_sha256: bool) -> Self {
        let key = secret.as_bytes();
        Self {
            sha256: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
            sha1: Hmac::new_from_slice(key).expect("HMAC takes keys of any length"),
            require_sha256,
            key_id: Sha256::digest(key).into(),
        }
    }

    /// Equal for two checks exactly when they accept the same requests.
    pub(crate) fn identity(&self) -> ([u8; 32], bool) {
        (self.key_id, self.require_sha256)
    }

    /// Checks the request's signature over its exact body.
    pub(crate) fn verify(&self, request: &Request<'_>) -> Result<(), Rejection> {
        let body = request.body();
        match (request.sha256, request.sha1) {
            (HeaderSlot::Repeated, _) => Err(Rejection::SignatureRepeated { header: X_HUB_SIGNATURE_256 }),
            (_, HeaderSlot::Repeated) => Err(Rejection::SignatureRepeated { header: X_HUB_SIGNATURE }),
            (HeaderSlot::One(value), _) => {
                let mut tag = [0u8; 32];
                decode(value, "sha256=", &mut tag)
                    .ok_or(Rejection::SignatureMalformed { header: X_HUB_SIGNATURE_256 })?;
                let mut mac = self.sha256.clone();
                mac.update(body);
                mac.verify_slice(&tag).map_err(|_| Rejection::SignatureMismatch { header: X_HUB_SIGNATURE_256 })
            }
            (HeaderSlot::Absent, _) if self.require_sha256 => {
                Err(Rejection::SignatureMissing { sha256_required: true })
            }
            (HeaderSlot::Absent, HeaderSlot::One(value)) => {
                let mut tag = [0u8; 20];
                decode(value, "sha1=", &mut tag).ok_or(Rejection::SignatureMalformed { header: X_HUB_SIGNATURE })?;
                let mut mac = self.sha1.clone();
                mac.update(body);
                mac.verify_slice(&tag).map_err(|_| Rejection::SignatureMismatch { header: X_HUB_SIGNATURE })
            }
            (HeaderSlot::Absent, HeaderSlot::Absent) => Err(Rejection::SignatureMissing { sha256_required: false }),
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
