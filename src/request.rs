//! A delivery as the host hands it in: the raw body, the few headers that matter, the peer address.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::SystemTime;

/// The signature header GitHub sends with HMAC-SHA256.
pub const X_HUB_SIGNATURE_256: &str = "X-Hub-Signature-256";
/// The legacy signature header GitHub sends with HMAC-SHA1.
pub const X_HUB_SIGNATURE: &str = "X-Hub-Signature";
/// The header that tells JSON from GitHub's form delivery.
pub const CONTENT_TYPE: &str = "Content-Type";
/// The de-facto header proxies append the client address to.
pub const X_FORWARDED_FOR: &str = "X-Forwarded-For";
/// RFC 7239's header proxies append `for=` the client address to.
pub const FORWARDED: &str = "Forwarded";

/// One incoming delivery. It borrows everything; building it copies nothing.
///
/// Only the headers the evaluation reads are kept (names are case-insensitive): the two GitHub
/// signature headers and `Content-Type`, plus `X-Forwarded-For` and `Forwarded` for
/// [`TrustedProxies`](crate::TrustedProxies) (the last 8 instances of each). Any other header given to
/// [`header`](Self::header) is ignored, so a host may pass all of them. A header given twice is
/// remembered as repeated, and a repeated signature header is a reject.
///
/// From axum or hyper, the `http` feature builds one from the `http` crate's types without copying
/// the body: [`Request::from_headers`]`(&HeaderMap, &body)` and
/// [`Request::from_parts`]`(&Parts, &body)`.
///
/// ```
/// use codepipeline_webhooks::Request;
/// let body = br#"{"ref":"refs/heads/main"}"#;
/// let request = Request::new(body)
///     .header("x-hub-signature-256", "sha256=...")
///     .header("User-Agent", "GitHub-Hookshot/abc")
///     .source_ip("192.0.2.1".parse::<std::net::IpAddr>().unwrap());
/// assert_eq!(request.body(), body);
/// ```
#[derive(Clone, Copy)]
pub struct Request<'a> {
    body: &'a [u8],
    sha256: HeaderSlot<'a>,
    sha1: HeaderSlot<'a>,
    content_type: HeaderSlot<'a>,
    x_forwarded_for: ForwardingHeaders<'a>,
    forwarded: ForwardingHeaders<'a>,
    source_ip: Option<IpAddr>,
    now: Option<SystemTime>,
}

/// The last instances of a forwarding header, in the order sent (the rightmost hops are the ones
/// a trusted proxy wrote, so the earliest are the ones dropped).
#[derive(Clone, Copy, Default)]
pub(crate) struct ForwardingHeaders<'a> {
    values: [&'a [u8]; ForwardingHeaders::KEPT],
    len: usize,
}

impl<'a> ForwardingHeaders<'a> {
    const KEPT: usize = 8;

    fn add(&mut self, value: &'a [u8]) {
        if self.len == Self::KEPT {
            self.values.rotate_left(1);
            self.values[Self::KEPT - 1] = value;
        } else {
            self.values[self.len] = value;
            self.len += 1;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub(crate) fn iter(&self) -> std::iter::Copied<std::slice::Iter<'_, &'a [u8]>> {
        self.values[..self.len].iter().copied()
    }
}

/// What [`Request::source_ip`] takes: an address, a socket address (its IP; the port is not
/// used), a reference to either, octets, or an `Option<IpAddr>` (`None`: no address).
pub trait IntoSourceIp {
    /// The IP address, if there is one.
    fn into_source_ip(self) -> Option<IpAddr>;
}

macro_rules! source_ip_from {
    ($($t:ty => |$v:ident| $e:expr),* $(,)?) => {
        $(impl IntoSourceIp for $t {
            fn into_source_ip(self) -> Option<IpAddr> {
                let $v = self;
                $e
            }
        })*
    };
}

source_ip_from! {
    IpAddr => |a| Some(a),
    &IpAddr => |a| Some(*a),
    Option<IpAddr> => |a| a,
    Ipv4Addr => |a| Some(a.into()),
    Ipv6Addr => |a| Some(a.into()),
    [u8; 4] => |a| Some(a.into()),
    [u8; 16] => |a| Some(a.into()),
    [u16; 8] => |a| Some(a.into()),
    SocketAddr => |a| Some(a.ip()),
    &SocketAddr => |a| Some(a.ip()),
    SocketAddrV4 => |a| Some((*a.ip()).into()),
    SocketAddrV6 => |a| Some((*a.ip()).into()),
}

/// What was seen of one header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) enum HeaderSlot<'a> {
    #[default]
    Absent,
    One(&'a [u8]),
    Repeated,
}

impl<'a> HeaderSlot<'a> {
    fn add(&mut self, value: &'a [u8]) {
        *self = match self {
            HeaderSlot::Absent => HeaderSlot::One(value),
            _ => HeaderSlot::Repeated,
        };
    }
}

impl<'a> Request<'a> {
    /// A delivery with this exact body (the bytes the signature covers), no headers and no source
    /// address.
    pub fn new<B: AsRef<[u8]> + ?Sized>(body: &'a B) -> Self {
        Self {
            body: body.as_ref(),
            sha256: HeaderSlot::Absent,
            sha1: HeaderSlot::Absent,
            content_type: HeaderSlot::Absent,
            x_forwarded_for: ForwardingHeaders::default(),
            forwarded: ForwardingHeaders::default(),
            source_ip: None,
            now: None,
        }
    }

    /// Adds a header. Names are case-insensitive; headers the evaluation does not read are ignored.
    /// Values are taken as sent (HTTP's optional whitespace around them is allowed).
    #[must_use]
    pub fn header<V: AsRef<[u8]> + ?Sized>(mut self, name: &str, value: &'a V) -> Self {
        self.add_header(name, value.as_ref());
        self
    }

    /// Adds a header in place; see [`header`](Self::header).
    pub fn add_header(&mut self, name: &str, value: &'a [u8]) {
        let slot = if name.eq_ignore_ascii_case(X_HUB_SIGNATURE_256) {
            &mut self.sha256
        } else if name.eq_ignore_ascii_case(X_HUB_SIGNATURE) {
            &mut self.sha1
        } else if name.eq_ignore_ascii_case(CONTENT_TYPE) {
            &mut self.content_type
        } else if name.eq_ignore_ascii_case(X_FORWARDED_FOR) {
            return self.x_forwarded_for.add(value);
        } else if name.eq_ignore_ascii_case(FORWARDED) {
            return self.forwarded.add(value);
        } else {
            return;
        };
        slot.add(value);
    }

    /// Sets the source address: the TCP peer as the host sees it (an `IpAddr`, a `SocketAddr`
    /// as a listener reports it, octets, or `None` for no address). Evaluation never reads
    /// `X-Forwarded-For`; a host behind proxies it trusts passes
    /// [`TrustedProxies::client_ip`](crate::TrustedProxies::client_ip) here.
    #[must_use]
    pub fn source_ip(mut self, addr: impl IntoSourceIp) -> Self {
        self.source_ip = addr.into_source_ip();
        self
    }

    /// Hands in the host's clock reading for this delivery. The engine has no clock: a previous
    /// secret accepted until a deadline
    /// ([`WebhookOptions::accept_previous_secret_until`](crate::WebhookOptions::accept_previous_secret_until))
    /// is tried only when the reading is before it. Without a reading, such a secret is not tried
    /// (a previous secret without a deadline always is).
    #[must_use]
    pub fn now(mut self, now: SystemTime) -> Self {
        self.now = Some(now);
        self
    }

    /// The clock reading handed in with [`now`](Self::now), if any.
    pub fn clock_reading(&self) -> Option<SystemTime> {
        self.now
    }

    /// What was sent of `X-Hub-Signature-256` and `X-Hub-Signature`.
    pub(crate) fn signature_headers(&self) -> (HeaderSlot<'a>, HeaderSlot<'a>) {
        (self.sha256, self.sha1)
    }

    /// The last instances of `Forwarded` and of `X-Forwarded-For`.
    pub(crate) fn forwarding_headers(&self) -> (&ForwardingHeaders<'a>, &ForwardingHeaders<'a>) {
        (&self.forwarded, &self.x_forwarded_for)
    }

    /// The raw body.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// The source address, if one was given.
    pub fn source_addr(&self) -> Option<IpAddr> {
        self.source_ip
    }

    /// Whether `Content-Type` names GitHub's form delivery (`application/x-www-form-urlencoded`,
    /// parameters ignored). `None` when the header is repeated.
    pub(crate) fn is_form(&self) -> Option<bool> {
        match self.content_type {
            HeaderSlot::Absent => Some(false),
            HeaderSlot::Repeated => None,
            HeaderSlot::One(value) => {
                let media = value.split(|&b| b == b';').next().unwrap_or_default();
                Some(media.trim_ascii().eq_ignore_ascii_case(b"application/x-www-form-urlencoded"))
            }
        }
    }
}

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl<'a> Request<'a> {
    /// A delivery from the `http` crate's header map and the body bytes, borrowing both (the body
    /// is not copied). Add the peer address with [`source_ip`](Self::source_ip).
    ///
    /// *Available with the `http` feature:* `codepipeline-webhooks = { version = "0.1", features =
    /// ["http"] }`. Without it, the compiler says "no function or associated item named
    /// `from_headers`".
    ///
    /// ```
    /// # #[cfg(feature = "http")] {
    /// let mut headers = http::HeaderMap::new();
    /// headers.insert("x-hub-signature-256", http::HeaderValue::from_static("sha256=00"));
    /// let body = b"{}";
    /// let request = codepipeline_webhooks::Request::from_headers(&headers, body).source_ip([127, 0, 0, 1]);
    /// assert_eq!(request.body(), b"{}");
    /// # }
    /// ```
    pub fn from_headers(headers: &'a http::HeaderMap, body: &'a [u8]) -> Self {
        let mut request = Request::new(body);
        for name in [X_HUB_SIGNATURE_256, X_HUB_SIGNATURE, CONTENT_TYPE, X_FORWARDED_FOR, FORWARDED] {
            // `get_all` sees every occurrence, so a repeated signature header stays a reject.
            for value in headers.get_all(name) {
                request.add_header(name, value.as_bytes());
            }
        }
        request
    }

    /// A delivery from `http::request::Parts` and the body bytes; see
    /// [`from_headers`](Self::from_headers).
    ///
    /// *Available with the `http` feature.*
    pub fn from_parts(parts: &'a http::request::Parts, body: &'a [u8]) -> Self {
        Self::from_headers(&parts.headers, body)
    }
}

impl fmt::Debug for Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seen = |slot: &HeaderSlot<'_>| match slot {
            HeaderSlot::Absent => "absent",
            HeaderSlot::One(_) => "present",
            HeaderSlot::Repeated => "repeated",
        };
        f.debug_struct("Request")
            .field("body_len", &self.body.len())
            .field("x_hub_signature_256", &seen(&self.sha256))
            .field("x_hub_signature", &seen(&self.sha1))
            .field("content_type", &seen(&self.content_type))
            .field("x_forwarded_for", &self.x_forwarded_for.len)
            .field("forwarded", &self.forwarded.len)
            .field("source_ip", &self.source_ip)
            .field("now", &self.now)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_headers_that_matter_case_insensitively() {
        let r =
            Request::new("{}").header("X-HUB-SIGNATURE-256", "a").header("x-hub-signature", "b").header("Accept", "c");
        assert_eq!(r.sha256, HeaderSlot::One(b"a"));
        assert_eq!(r.sha1, HeaderSlot::One(b"b"));
        assert_eq!(r.content_type, HeaderSlot::Absent);
        let r = r.header("X-Hub-Signature-256", "a");
        assert_eq!(r.sha256, HeaderSlot::Repeated);
    }

    #[cfg(feature = "http")]
    #[test]
    fn from_http_headers_keeps_repeats_and_borrows_the_body() {
        let mut headers = http::HeaderMap::new();
        headers.append("X-Hub-Signature-256", http::HeaderValue::from_static("a"));
        headers.append("x-hub-signature-256", http::HeaderValue::from_static("b"));
        headers.append("content-type", http::HeaderValue::from_static("application/json"));
        headers.append("x-hub-signature", http::HeaderValue::from_bytes(b"\xffsha1").unwrap());
        let body = vec![1u8, 2, 3];
        let r = Request::from_headers(&headers, &body);
        assert_eq!(r.sha256, HeaderSlot::Repeated);
        assert_eq!(r.sha1, HeaderSlot::One(b"\xffsha1"));
        assert_eq!(r.is_form(), Some(false));
        assert!(std::ptr::eq(r.body(), body.as_slice()));
        let (parts, ()) = http::Request::builder()
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(())
            .unwrap()
            .into_parts();
        assert_eq!(Request::from_parts(&parts, b"").is_form(), Some(true));
    }

    #[test]
    fn source_ip_takes_addresses_and_socket_addresses() {
        let peer: SocketAddr = "[::ffff:10.0.0.1]:443".parse().unwrap();
        assert_eq!(Request::new("").source_ip(peer).source_addr(), Some("::ffff:10.0.0.1".parse().unwrap()));
        assert_eq!(Request::new("").source_ip([10, 0, 0, 1]).source_addr(), Some(IpAddr::from([10, 0, 0, 1])));
        let v4: SocketAddrV4 = "192.0.2.1:80".parse().unwrap();
        assert_eq!(Request::new("").source_ip(v4).source_addr(), Some(IpAddr::from([192, 0, 2, 1])));
        assert_eq!(
            Request::new("").source_ip(Ipv6Addr::LOCALHOST).source_addr(),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        let by_reference: &SocketAddr = &peer;
        assert_eq!(Request::new("").source_ip(by_reference).source_addr(), Some(peer.ip()));
        assert_eq!(Request::new("").source_ip(peer).source_ip(None::<IpAddr>).source_addr(), None);
        assert_eq!(Request::new("").source_ip(Some(peer.ip())).source_addr(), Some(peer.ip()));
    }

    #[test]
    fn keeps_the_last_forwarding_headers() {
        let mut r = Request::new("").header("forwarded", "for=1.1.1.1");
        for i in 0..10 {
            r.add_header("X-Forwarded-For", if i % 2 == 0 { b"a" } else { b"b" });
        }
        let values: Vec<&[u8]> = r.x_forwarded_for.iter().collect();
        assert_eq!(values.len(), 8);
        assert_eq!(values.last(), Some(&&b"b"[..]), "the last one sent is kept");
        assert_eq!(r.forwarded.iter().collect::<Vec<_>>(), [b"for=1.1.1.1"]);
    }

    #[test]
    fn content_type_form_detection() {
        assert_eq!(Request::new("").is_form(), Some(false));
        assert_eq!(Request::new("").header("content-type", "application/json").is_form(), Some(false));
        let form = Request::new("").header("Content-Type", "Application/X-WWW-Form-Urlencoded; charset=utf-8");
        assert_eq!(form.is_form(), Some(true));
        let twice = Request::new("").header("Content-Type", "a").header("content-type", "b");
        assert_eq!(twice.is_form(), None);
    }
}
