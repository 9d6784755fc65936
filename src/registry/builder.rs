//! [`RegistryBuilder`]: the options of a [`Registry`], checked once at `build`.

use std::sync::RwLock;
use std::sync::atomic::AtomicU64;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::urls::BaseUrl;
use super::{Clock, DEFAULT_WEBHOOK_QUOTA, Registry, RegistryState, State, TokenSource};
use crate::error::{Error, ErrorCode};
use crate::webhook::WebhookOptions;
use std::time::Duration;

/// Options for a [`Registry`]; from [`Registry::builder`].
#[must_use]
pub struct RegistryBuilder {
    region: Option<String>,
    account_id: Option<String>,
    partition: Option<String>,
    base_url: Option<String>,
    quota: usize,
    clock: Clock,
    token_source: TokenSource,
    state: Option<RegistryState>,
    options: WebhookOptions,
    rotation_grace: Duration,
}

impl std::fmt::Debug for RegistryBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryBuilder")
            .field("region", &self.region)
            .field("account_id", &self.account_id)
            .field("partition", &self.partition)
            .field("base_url", &self.base_url)
            .field("quota", &self.quota)
            .field("webhook_options", &self.options)
            .field("rotation_grace", &self.rotation_grace)
            .field("state", &self.state.as_ref().map(|_| "(imported state)"))
            .finish_non_exhaustive()
    }
}

impl RegistryBuilder {
    /// The options every webhook of this registry is compiled with (require SHA-256, body and
    /// nesting limits, deny warnings, secret keys); default [`WebhookOptions::default`].
    /// Previous secrets given here are accepted by every webhook: for one webhook's rotation, see
    /// [`rotation_grace`](Self::rotation_grace).
    pub fn webhook_options(mut self, options: WebhookOptions) -> Self {
        self.options = options;
        self
    }

    /// Key rotation: after a `PutWebhook` changes a webhook's `SecretToken`, its previous secret
    /// stays valid for this long, by the registry's clock (default zero: the old secret stops at
    /// once, as in AWS). The verdict says when the old one was used
    /// ([`Verdict::used_previous_secret`](crate::Verdict::used_previous_secret)); export and
    /// import keep the previous secret and its deadline. The old secret is compiled with its
    /// deadline ([`WebhookOptions::accept_previous_secret_until`]) and every trigger hands in the
    /// registry's clock reading, so past the deadline it is not tried at all: a delivery signed
    /// with it is a signature reject, whatever its body.
    pub fn rotation_grace(mut self, grace: Duration) -> Self {
        self.rotation_grace = grace;
        self
    }

    /// The AWS region, for URLs and ARNs (required), e.g. `us-east-1`.
    pub fn region(mut self, region: impl Into<String>) -> Self {
        self.region = Some(region.into());
        self
    }

    /// The 12-digit account id, for ARNs (required).
    pub fn account_id(mut self, account_id: impl Into<String>) -> Self {
        self.account_id = Some(account_id.into());
        self
    }

    /// The ARN partition; by default derived from the region (`aws`, `aws-cn`, `aws-us-gov`).
    pub fn partition(mut self, partition: impl Into<String>) -> Self {
        self.partition = Some(partition.into());
        self
    }

    /// Where webhook URLs live: `PutWebhook` returns `{base}/trigger?t={token}&v=1`, and
    /// [`Registry::trigger`] finds the webhook by the URL's `t` parameter, whatever its origin and
    /// path (a proxy in front may strip the base's path). An `http://` or
    /// `https://` URL with a host, an optional port and path and no query; a trailing slash is
    /// ignored. Default: AWS's form, `https://{region}.webhooks.aws`.
    pub fn base_url(mut self, base: impl Into<String>) -> Self {
        self.base_url = Some(base.into());
        self
    }

    /// How many webhooks the registry holds at most (default [`DEFAULT_WEBHOOK_QUOTA`]).
    pub fn webhook_quota(mut self, quota: usize) -> Self {
        self.quota = quota;
        self
    }

    /// The clock that stamps `lastTriggered` (default: `SystemTime::now`).
    pub fn clock(mut self, clock: impl Fn() -> SystemTime + Send + Sync + 'static) -> Self {
        self.clock = Box::new(clock);
        self
    }

    /// Where URL tokens come from (default: 256 bits from the operating system's CSPRNG,
    /// base64url). The URL is the only secret an UNAUTHENTICATED webhook has: a custom source must
    /// be as unguessable. Tokens must be URL-safe (`[A-Za-z0-9_-]`).
    pub fn token_source(mut self, source: impl Fn() -> String + Send + Sync + 'static) -> Self {
        self.token_source = Box::new(source);
        self
    }

    /// Starts from a state exported by [`Registry::export_state`].
    pub fn state(mut self, state: RegistryState) -> Self {
        self.state = Some(state);
        self
    }

    /// Checks the options and builds the registry. A host's own mistake (a region or account id
    /// missing or malformed, a base URL that is not one) is `ErrorCode::InvalidOptions`, not an
    /// AWS exception; a state that does not load is the exception its fault would have raised.
    pub fn build(self) -> Result<Registry, Error> {
        let region = self.region.ok_or_else(|| {
            Error::new(ErrorCode::InvalidOptions, "region".to_owned(), "a region is required: .region(\"us-east-1\")")
        })?;
        if region.is_empty() || !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "region".to_owned(),
                format!("'{region}' is not a region name such as us-east-1"),
            ));
        }
        let account_id = self.account_id.ok_or_else(|| {
            Error::new(
                ErrorCode::InvalidOptions,
                "accountId".to_owned(),
                "an account id is required: .account_id(\"123456789012\")",
            )
        })?;
        if account_id.len() != 12 || !account_id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(Error::new(
                ErrorCode::InvalidOptions,
                "accountId".to_owned(),
                format!("'{account_id}' is not a 12-digit account id"),
            ));
        }
        let partition = self.partition.unwrap_or_else(|| partition_of(&region).to_owned());
        let base_url = match &self.base_url {
            Some(base) => BaseUrl::parse(base)?,
            None => BaseUrl::aws(&region),
        };
        let registry = Registry {
            base_url,
            region,
            account_id,
            partition,
            quota: self.quota,
            clock: self.clock,
            token_source: self.token_source,
            revisions: AtomicU64::new(0),
            state: RwLock::new(State::new(random_key())),
            options: self.options,
            rotation_grace: self.rotation_grace,
        };
        if let Some(state) = self.state {
            registry.import_state(state)?;
        }
        Ok(registry)
    }
}

impl Registry {
    /// Starts a builder: `.region(..)` and `.account_id(..)` are required.
    pub fn builder() -> RegistryBuilder {
        RegistryBuilder {
            region: None,
            account_id: None,
            partition: None,
            base_url: None,
            quota: DEFAULT_WEBHOOK_QUOTA,
            clock: Box::new(SystemTime::now),
            token_source: Box::new(random_token),
            state: None,
            options: WebhookOptions::default(),
            rotation_grace: Duration::ZERO,
        }
    }
}

/// The ARN partition of a region: `aws-cn` for `cn-…`, `aws-us-gov` for `us-gov-…`, else `aws`.
pub fn partition_of(region: &str) -> &'static str {
    if region.starts_with("cn-") {
        "aws-cn"
    } else if region.starts_with("us-gov-") {
        "aws-us-gov"
    } else {
        "aws"
    }
}

/// 256 bits from the operating system's CSPRNG, base64url without padding.
fn random_token() -> String {
    URL_SAFE_NO_PAD.encode(random_key())
}

/// 256 bits from the operating system's CSPRNG.
fn random_key() -> [u8; 32] {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).expect("the operating system's random source is available");
    bytes
}
