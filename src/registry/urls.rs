//! Webhook URLs and ARNs: the URL a webhook is reached at, and the token read back from a URL or a
//! path-and-query when a delivery comes in.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::Error;

/// The path a webhook URL adds to its base.
const TRIGGER: &str = "/trigger";

/// Where the registry's webhook URLs live: `{base}/trigger?t={token}&v=1`.
#[derive(Clone, Debug)]
pub(super) struct BaseUrl {
    /// The base as given, without trailing slashes: `https://hooks.example.com:8443/cp`.
    base: String,
    /// The path its URLs post to: `/cp/trigger`.
    trigger_path: String,
}

impl BaseUrl {
    /// AWS's own form: `https://{region}.webhooks.aws`.
    pub(super) fn aws(region: &str) -> Self {
        Self::parse(&format!("https://{region}.webhooks.aws")).expect("a region name makes a valid base URL")
    }

    /// An `http://` or `https://` URL with an authority, an optional path, and neither query nor
    /// fragment (the registry adds its own query).
    pub(super) fn parse(text: &str) -> Result<Self, Error> {
        let invalid = || {
            Error::new(
                crate::ErrorCode::InvalidOptions,
                "baseUrl".to_owned(),
                format!(
                    "'{}' is not a base URL such as https://hooks.example.com or http://127.0.0.1:3000/codepipeline (http or https, a host, an optional path, no query or fragment)",
                    crate::error::escape(text)
                ),
            )
        };
        let base = text.trim_end_matches('/');
        let (scheme, rest) = base.split_once("://").ok_or_else(invalid)?;
        if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
            return Err(invalid());
        }
        let authority = rest.find('/').map_or(rest, |i| &rest[..i]);
        let bad_char = |c: char| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#');
        if authority.is_empty() || authority.contains('@') || base.contains(bad_char) {
            return Err(invalid());
        }
        let path = &rest[authority.len()..];
        Ok(Self { base: base.to_owned(), trigger_path: format!("{path}{TRIGGER}") })
    }

    /// The path of every URL under this base, as an HTTP server sees it: `{base's path}/trigger`.
    pub(super) fn trigger_path(&self) -> &str {
        &self.trigger_path
    }

    /// The URL of a token. Tokens are URL-safe (`[A-Za-z0-9_-]`), so nothing needs encoding.
    pub(super) fn url(&self, token: &str) -> String {
        format!("{}{TRIGGER}?t={token}&v=1", self.base)
    }

    /// The token of a delivery URL: the `t` parameter of its query, whatever comes before the
    /// `?` (this base's URL, another origin, or a path-and-query as an HTTP server sees it): behind
    /// a proxy that strips a prefix (`/cp`) or rewrites the host, the path a delivery arrives at is
    /// not the one the registry handed out, and the token alone names the webhook. The query may
    /// hold its parameters in any order, with or without `v` (which, when present, must be `1`),
    /// percent-encoded or not; other parameters are ignored. `None` when there is no `t`, an empty
    /// one, or two (which one would be meant is unclear).
    pub(super) fn token_in<'u>(&self, url: &'u str) -> Option<Cow<'u, str>> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (_, query) = url.split_once('?')?;
        let mut token = None;
        for pair in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            match decode(name)?.as_ref() {
                "t" if token.is_none() => token = Some(decode(value)?),
                "t" => return None,
                "v" if decode(value)? != "1" => return None,
                _ => {}
            }
        }
        token.filter(|t| !t.is_empty())
    }
}

fn decode(text: &str) -> Option<Cow<'_, str>> {
    percent_decode_str(text).decode_utf8().ok()
}

/// `arn:{partition}:codepipeline:{region}:{account}:webhook:{name}`.
pub(super) fn arn(partition: &str, region: &str, account_id: &str, name: &str) -> String {
    format!("arn:{partition}:codepipeline:{region}:{account_id}:webhook:{name}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_from_urls_and_paths() {
        let aws = BaseUrl::aws("us-east-1");
        assert_eq!(aws.url("abc"), "https://us-east-1.webhooks.aws/trigger?t=abc&v=1");
        let token = |base: &BaseUrl, url: &str| base.token_in(url).map(Cow::into_owned);
        for url in [
            "https://us-east-1.webhooks.aws/trigger?t=abc&v=1",
            "HTTPS://US-EAST-1.webhooks.aws/trigger?v=1&t=abc",
            "/trigger?t=abc",
            "/trigger?%74=a%62c&v=%31#frag",
            "/other?t=abc",
            "/trigger/?t=abc",
            "https://other.example/trigger?t=abc",
            "http://us-east-1.webhooks.aws:8080/x/y?t=abc",
        ] {
            assert_eq!(token(&aws, url).as_deref(), Some("abc"), "{url}");
        }
        for none in [
            "/trigger",
            "/trigger?",
            "/trigger?t=",
            "/trigger?t",
            "/trigger?t=a&t=a",
            "/trigger?t=a&t=b",
            "/trigger?t=a&%74=b",
            "/trigger?t=a&v=2",
            "/trigger?t=%FF",
            "/trigger#?t=a",
        ] {
            assert_eq!(token(&aws, none), None, "{none}");
        }
    }

    #[test]
    fn base_urls_with_paths_and_ports() {
        let base = BaseUrl::parse("http://127.0.0.1:3000/hooks/cp/").unwrap();
        assert_eq!(base.url("x"), "http://127.0.0.1:3000/hooks/cp/trigger?t=x&v=1");
        assert_eq!(base.trigger_path(), "/hooks/cp/trigger");
        assert_eq!(BaseUrl::aws("us-east-1").trigger_path(), "/trigger");
        assert_eq!(BaseUrl::parse("http://127.0.0.1:8080").unwrap().trigger_path(), "/trigger");
        assert_eq!(BaseUrl::parse("https://example.com/cp").unwrap().trigger_path(), "/cp/trigger");
        assert_eq!(BaseUrl::parse("https://example.com/a/b").unwrap().trigger_path(), "/a/b/trigger");
        assert_eq!(base.token_in("/hooks/cp/trigger?v=1&t=x").as_deref(), Some("x"));
        assert_eq!(base.token_in("http://127.0.0.1:3000/hooks/cp/trigger?t=x").as_deref(), Some("x"));
        // Behind a proxy that strips the prefix, or under another origin: the token decides.
        assert_eq!(base.token_in("/trigger?t=x").as_deref(), Some("x"));
        assert_eq!(base.token_in("http://127.0.0.1:3001/hooks/cp/trigger?t=x").as_deref(), Some("x"));
        for bad in [
            "",
            "127.0.0.1:3000",
            "ftp://h",
            "https://",
            "https:///x",
            "https://h/a?b",
            "https://h/#",
            "https://u@h",
            "https://h /x",
        ] {
            assert!(BaseUrl::parse(bad).is_err(), "{bad}");
        }
    }
}
