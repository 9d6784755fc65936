//! Authentication: the GitHub HMAC signature and the allowed source range.

pub mod github;
pub(crate) mod ip;
pub(crate) mod proxies;

use std::sync::Arc;

use crate::definition::{WebhookAuthenticationType, WebhookDefinition};
use crate::error::{Error, ErrorCode};
use crate::request::Request;
use crate::verdict::{Rejection, Secret};
use crate::warning::Warning;
use github::{GithubHmac, PreviousSecret};
use ip::AllowedIpRange;

/// Secrets AWS accepts that HMAC treats as something else: it pads a key with zero bytes to its
/// block size, so a secret ending in NUL also accepts MACs made without its trailing NULs, and
/// `"\u0000"` behaves as the empty key. The secret itself is never quoted.
pub(crate) fn warnings(d: &WebhookDefinition) -> Vec<Warning> {
    let Some(secret) = d.authentication_configuration.secret_token.as_deref() else { return Vec::new() };
    let problem = if secret.chars().all(char::is_control) {
        "is made only of control characters; HMAC pads keys with zero bytes, so a secret of NULs is the empty key"
    } else if secret.ends_with('\0') {
        "ends with a NUL character; HMAC pads keys with zero bytes, so signatures made with the secret without its trailing NULs verify too"
    } else {
        return Vec::new();
    };
    vec![Warning::new(
        ErrorCode::InvalidWebhookAuthenticationParametersException,
        "webhook.authenticationConfiguration.SecretToken".to_owned(),
        format!("the SecretToken {problem}"),
    )]
}

/// A webhook's compiled authentication. One per webhook: the keyed HMAC states stay inline, next
/// to the rest of the webhook.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug)]
pub(crate) enum Auth {
    GithubHmac(GithubHmac),
    Ip { range: AllowedIpRange, shown: Arc<str> },
    Unauthenticated,
}

impl Auth {
    /// Checks the authentication parameters as PutWebhook does and prepares the check.
    pub(crate) fn compile(
        d: &WebhookDefinition,
        require_sha256: bool,
        previous: &[PreviousSecret<'_>],
    ) -> Result<Self, Error> {
        let config = &d.authentication_configuration;
        let err = |field: &str, message: String| {
            Error::new(
                ErrorCode::InvalidWebhookAuthenticationParametersException,
                format!("webhook.authenticationConfiguration.{field}"),
                message,
            )
        };
        let kind = d.authentication;
        let refuse = |field: &str| err(field, format!("{kind} authentication takes no {field}"));
        match kind {
            WebhookAuthenticationType::GithubHmac => {
                if config.allowed_ip_range.is_some() {
                    return Err(refuse("AllowedIPRange"));
                }
                let secret = config
                    .secret_token
                    .as_deref()
                    .ok_or_else(|| err("SecretToken", "GITHUB_HMAC authentication needs a SecretToken".into()))?;
                Ok(Auth::GithubHmac(GithubHmac::new(secret.as_bytes(), previous, require_sha256)))
            }
            WebhookAuthenticationType::Ip => {
                if config.secret_token.is_some() {
                    return Err(refuse("SecretToken"));
                }
                let text = config.allowed_ip_range.as_deref().ok_or_else(|| {
                    err("AllowedIPRange", "IP authentication needs an AllowedIPRange, such as 192.0.2.0/24".into())
                })?;
                let range = AllowedIpRange::parse(text).map_err(|m| err("AllowedIPRange", m))?;
                Ok(Auth::Ip { range, shown: range.to_string().into() })
            }
            WebhookAuthenticationType::Unauthenticated => {
                if config.secret_token.is_some() {
                    return Err(refuse("SecretToken"));
                }
                if config.allowed_ip_range.is_some() {
                    return Err(refuse("AllowedIPRange"));
                }
                Ok(Auth::Unauthenticated)
            }
        }
    }

    /// The steps before the body is read, cheapest first: the source address (IP webhooks), the
    /// body size (`max_body_bytes`), the signature over the exact body (GITHUB_HMAC webhooks).
    /// Which secret verified it.
    pub(crate) fn admit(&self, request: &Request<'_>, max_body_bytes: usize) -> Result<Secret, Rejection> {
        if let Auth::Ip { range, shown } = self {
            let source = request.source_addr().ok_or(Rejection::SourceIpMissing)?;
            if !range.contains(source) {
                return Err(Rejection::SourceIpNotAllowed {
                    source_ip: ip::canonical(source),
                    allowed_range: shown.clone(),
                });
            }
        }
        let size = request.body().len();
        if size > max_body_bytes {
            return Err(Rejection::PayloadTooLarge { size, limit: max_body_bytes });
        }
        match self {
            Auth::GithubHmac(hmac) => hmac.verify(request).map_err(Rejection::Signature),
            _ => Ok(Secret::Current),
        }
    }

    /// Equal for two checks exactly when they admit the same requests (size aside): what a
    /// `WebhookSet` groups its members by, so that each distinct check runs once.
    pub(crate) fn grouping_key(&self) -> AuthKey {
        match self {
            Auth::GithubHmac(hmac) => AuthKey::Hmac(hmac.grouping_key()),
            Auth::Ip { range, .. } => AuthKey::Ip(*range),
            Auth::Unauthenticated => AuthKey::Open,
        }
    }

    /// Whether admitting a request verifies a signature (an HMAC per check).
    pub(crate) fn verifies_signatures(&self) -> bool {
        matches!(self, Auth::GithubHmac(_))
    }
}

/// What [`Auth::grouping_key`] gives: a digest for a signature check (never a secret), the
/// range, or none.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum AuthKey {
    Hmac([u8; 32]),
    Ip(AllowedIpRange),
    Open,
}
