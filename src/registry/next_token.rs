//! `ListWebhooks`' `NextToken`: opaque, and accepted only when this registry (or one that shares
//! its exported state) issued it.
//!
//! A token is base64url(`name` ‖ HMAC-SHA256(key, `"ListWebhooks\0"` ‖ `name`)), where `name` is the
//! last webhook of the page. A caller can read the name but cannot make a token for another one:
//! a forged token (say, the base64 of a name) is `InvalidNextTokenException`, not a page that
//! starts wherever the caller likes.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::error::{Error, ErrorCode};

/// The model's bound on `NextToken` (`ListWebhooksInput.NextToken`, length 1 to 2,048).
pub(super) const MAX_NEXT_TOKEN_LEN: usize = 2048;

const TAG_LEN: usize = 32;

fn mac(key: &[u8; 32], operation: &str, name: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length");
    // Domain separation: a token one list operation issued never verifies for another.
    mac.update(operation.as_bytes());
    mac.update(b"\0");
    mac.update(name);
    mac
}

/// The token that resumes a listing after `name`.
pub(super) fn issue(key: &[u8; 32], name: &str) -> String {
    issue_for(key, "ListWebhooks", name)
}

/// The name a `ListWebhooks` token resumes after.
pub(super) fn verify(key: &[u8; 32], token: &str) -> Result<String, Error> {
    verify_for(key, "ListWebhooks", token)
}

/// The token that resumes `operation`'s listing after `name`.
pub(super) fn issue_for(key: &[u8; 32], operation: &str, name: &str) -> String {
    let tag = mac(key, operation, name.as_bytes()).finalize().into_bytes();
    let mut bytes = Vec::with_capacity(name.len() + TAG_LEN);
    bytes.extend_from_slice(name.as_bytes());
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// The name a token resumes after: `ValidationException` when its length breaks the model,
/// `InvalidNextTokenException` when this key did not issue it. The tag is compared in constant
/// time.
pub(super) fn verify_for(key: &[u8; 32], operation: &str, token: &str) -> Result<String, Error> {
    let len = token.chars().count();
    if !(1..=MAX_NEXT_TOKEN_LEN).contains(&len) {
        let bound = if len == 0 {
            "greater than or equal to 1".to_owned()
        } else {
            format!("less than or equal to {MAX_NEXT_TOKEN_LEN}")
        };
        return Err(Error::validation(
            "NextToken".to_owned(),
            format!(
                "1 validation error detected: Value '{}' at 'NextToken' failed to satisfy constraint: Member must have length {bound}",
                crate::error::escape(token)
            ),
        ));
    }
    let invalid = || {
        Error::new(
            ErrorCode::InvalidNextTokenException,
            Some("NextToken".to_owned()),
            format!("The next token was not issued by {operation}"),
        )
    };
    let bytes = URL_SAFE_NO_PAD.decode(token).map_err(|_| invalid())?;
    let split = bytes.len().checked_sub(TAG_LEN).ok_or_else(invalid)?;
    let (name, tag) = bytes.split_at(split);
    mac(key, operation, name).verify_slice(tag).map_err(|_| invalid())?;
    String::from_utf8(name.to_vec()).map_err(|_| invalid())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn issued_tokens_verify_and_forged_ones_do_not() {
        let key = [7u8; 32];
        let token = issue(&key, "webhook-b");
        assert_eq!(verify(&key, &token).unwrap(), "webhook-b");
        assert!(token.len() <= MAX_NEXT_TOKEN_LEN);
        assert_eq!(verify(&[8u8; 32], &token).unwrap_err().code(), "InvalidNextTokenException");
        let forged = URL_SAFE_NO_PAD.encode("webhook-b");
        assert_eq!(verify(&key, &forged).unwrap_err().code(), "InvalidNextTokenException");
        let mut flipped = URL_SAFE_NO_PAD.decode(&token).unwrap();
        *flipped.last_mut().unwrap() ^= 1;
        assert_eq!(verify(&key, &URL_SAFE_NO_PAD.encode(flipped)).unwrap_err().code(), "InvalidNextTokenException");
        assert_eq!(verify(&key, "%%%").unwrap_err().code(), "InvalidNextTokenException");
        assert_eq!(verify(&key, "").unwrap_err().code(), "ValidationException");
        assert_eq!(verify(&key, &"A".repeat(2049)).unwrap_err().code(), "ValidationException");
    }
}
