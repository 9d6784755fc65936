//! Webhook URLs and ARNs: the URL a webhook is reached at, and the token read back from a URL or a
//! path-and-query when a delivery comes in.

use std::borrow::Cow;

use percent_encoding::percent_decode_str;

use crate::error::Error;

/// Where the registry's webhook URLs live: `{base}/trigger?t={token}&v=1`.
#[derive(Clone, Debug)]
pub(super) struct BaseUrl {
    /// The base as given, without trailing slashes: `https://hooks.example.com:8443/cp`.
    base: String,
    /// `scheme://authority`, lowercased: scheme and host are case-insensitive (RFC 3986 §6.2.2.1).
    origin: String,
    /// The path deliveries are posted to: the base's path + `/trigger`.
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
        let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
        let bad_char = |c: char| c.is_control() || c.is_whitespace() || matches!(c, '?' | '#');
        if authority.is_empty() || authority.contains('@') || base.contains(bad_char) {
            return Err(invalid());
        }
        Ok(Self {
            base: base.to_owned(),
            origin: format!("{}://{}", scheme, authority).to_ascii_lowercase(),
            trigger_path: format!("{path}/trigger"),
        })
    }

    /// The URL of a token. Tokens are URL-safe (`[A-Za-z0-9_-]`), so nothing needs encoding.
    pub(super) fn url(&self, token: &str) -> String {
        format!("{}/trigger?t={token}&v=1", self.base)
    }

    /// The token of a delivery URL: an absolute URL under this base, or a path-and-query whose path
    /// is this base's trigger path. The query may hold its parameters in any order, with or without
    /// `v` (which, when present, must be `1`), percent-encoded or not; other parameters are ignored.
    /// `None` when there is no `t`, an empty one, or two (which one would be meant is unclear).
    pub(super) fn token_in<'u>(&self, url: &'u str) -> Option<Cow<'u, str>> {
        let url = url.split_once('#').map_or(url, |(before, _)| before);
        let (target, query) = url.split_once('?')?;
        let path = if target.starts_with('/') {
            target
        } else {
            let (scheme, rest) = target.split_once("://")?;
            let (authority, path) = rest.find('/').map_or((rest, ""), |i| rest.split_at(i));
            let same_origin = self.origin.len() == scheme.len() + 3 + authority.len()
                && self.origin[..scheme.len()].eq_ignore_ascii_case(scheme)
                && self.origin[scheme.len() + 3..].eq_ignore_ascii_case(authority);
            if !same_origin {
                return None;
            }
            path
        };
        if path != self.trigger_path {
            return None;
        }
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
        assert_eq!(token(&aws, "https://us-east-1.webhooks.aws/trigger?t=abc&v=1").as_deref(), Some("abc"));
        assert_eq!(token(&aws, "HTTPS://US-EAST-1.webhooks.aws/trigger?v=1&t=abc").as_deref(), Some("abc"));
        assert_eq!(token(&aws, "/trigger?t=abc").as_deref(), Some("abc"));
        assert_eq!(token(&aws, "/trigger?%74=a%62c&v=%31#frag").as_deref(), Some("abc"));
        for none in [
            "/trigger",
            "/trigger?",
            "/trigger?t=",
            "/trigger?t",
            "/trigger?t=a&t=a",
            "/trigger?t=a&v=2",
            "/trigger?t=%FF",
            "/other?t=a",
            "/trigger/?t=a",
            "trigger?t=a",
            "https://us-east-1.webhooks.aws.evil/trigger?t=a",
            "http://us-east-1.webhooks.aws/trigger?t=a",
            "https://us-east-1.webhooks.aws:443/trigger?t=a",
        ] {
            assert_eq!(token(&aws, none), None, "{none}");
        }
    }

    #[test]
    fn base_urls_with_paths_and_ports() {
        let base = BaseUrl::parse("http://127.0.0.1:3000/hooks/cp/").unwrap();
        assert_eq!(base.url("x"), "http://127.0.0.1:3000/hooks/cp/trigger?t=x&v=1");
        assert_eq!(base.token_in("/hooks/cp/trigger?v=1&t=x").as_deref(), Some("x"));
        assert_eq!(base.token_in("http://127.0.0.1:3000/hooks/cp/trigger?t=x").as_deref(), Some("x"));
        assert_eq!(base.token_in("/trigger?t=x"), None);
        assert_eq!(base.token_in("http://127.0.0.1:3001/hooks/cp/trigger?t=x"), None);
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
