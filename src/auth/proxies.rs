//! The client address behind proxies the host trusts: `X-Forwarded-For` and RFC 7239
//! `Forwarded`, walked from the right.
//!
//! Each proxy appends the address it received the request from, so the rightmost entries were
//! written by the proxies nearest the host and the leftmost by whoever sent the request, who can
//! write anything there. Walking from the right, past the hops inside the trusted ranges, the
//! first hop outside them is the client. If the TCP peer itself is not trusted, its headers are
//! not read at all: the peer is the client. A hop that does not parse (an obfuscated
//! `for=_hidden`, `unknown`, garbage) stops the walk at the last trusted hop, never letting a
//! spoofable value further left through.

use std::net::IpAddr;

use super::ip::AllowedIpRange;
use crate::error::{Error, ErrorCode};
use crate::request::{ForwardingHeaders, IntoSourceIp, Request};

/// The proxies (load balancers, ingress controllers) whose forwarding headers are believed.
///
/// ```
/// use codepipeline_webhooks::{Request, TrustedProxies};
/// let proxies = TrustedProxies::new(["10.0.0.0/8", "fd00::/8"])?;
/// let request = Request::new("{}").header("X-Forwarded-For", "203.0.113.9, 198.51.100.7, 10.1.2.3");
/// // The TCP peer is the load balancer 10.0.0.5; 10.1.2.3 is trusted too; 198.51.100.7 is not:
/// // it is the client (203.0.113.9 is what the client claimed, and is not believed).
/// let client = proxies.client_ip([10, 0, 0, 5], &request);
/// assert_eq!(client, Some("198.51.100.7".parse().unwrap()));
/// let request = request.source_ip(client);
/// // A peer outside the trusted ranges is the client, whatever it sends.
/// assert_eq!(proxies.client_ip([192, 0, 2, 1], &request), Some([192, 0, 2, 1].into()));
/// # Ok::<(), codepipeline_webhooks::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    ranges: Vec<AllowedIpRange>,
}

impl TrustedProxies {
    /// The trusted ranges, each parsed as `AllowedIPRange` is (a CIDR or a bare address).
    /// A range that does not parse is an `InvalidOptions` error naming it.
    pub fn new<I>(cidrs: I) -> Result<Self, Error>
    where
        I: IntoIterator,
        I::Item: AsRef<str>,
    {
        let ranges = cidrs
            .into_iter()
            .enumerate()
            .map(|(i, cidr)| {
                AllowedIpRange::parse(cidr.as_ref())
                    .map_err(|m| Error::new(ErrorCode::InvalidOptions, format!("trusted_proxies[{i}]"), m))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { ranges })
    }

    /// Whether `ip` is inside a trusted range.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The client's address: `peer` (the TCP peer) unless it is trusted, then the first hop
    /// outside the trusted ranges walking `Forwarded` (when sent; otherwise `X-Forwarded-For`)
    /// from the right; every instance of the header counts, in order, and each may list several
    /// hops. `None` only when `peer` is `None`.
    pub fn client_ip(&self, peer: impl IntoSourceIp, request: &Request<'_>) -> Option<IpAddr> {
        let peer = peer.into_source_ip()?;
        if !self.contains(peer) {
            return Some(peer);
        }
        let (forwarded, x_forwarded_for) = request.forwarding_headers();
        let (headers, parse): (&ForwardingHeaders<'_>, fn(&str) -> Option<IpAddr>) =
            if forwarded.is_empty() { (x_forwarded_for, x_forwarded_for_hop) } else { (forwarded, forwarded_hop) };
        let mut last_trusted = peer;
        for value in headers.iter().rev() {
            let Ok(value) = std::str::from_utf8(value) else { return Some(last_trusted) };
            for hop in value.rsplit(',') {
                match parse(hop.trim_matches([' ', '\t'])) {
                    Some(ip) if self.contains(ip) => last_trusted = ip,
                    Some(ip) => return Some(ip),
                    None => return Some(last_trusted),
                }
            }
        }
        // Every hop was trusted (or the headers were cut): the last one we can vouch for.
        Some(last_trusted)
    }
}

/// An `X-Forwarded-For` hop: an address, optionally with a port (`192.0.2.1:443`,
/// `[2001:db8::1]:443`).
fn x_forwarded_for_hop(hop: &str) -> Option<IpAddr> {
    node(hop)
}

/// A `Forwarded` element's `for=` node (RFC 7239 §4, §6): `for=192.0.2.43`,
/// `for="[2001:db8:cafe::17]:4711"`, parameters in any order and case. `unknown` and obfuscated
/// identifiers name no address.
fn forwarded_hop(element: &str) -> Option<IpAddr> {
    element.split(';').find_map(|pair| {
        let (name, value) = pair.trim_matches([' ', '\t']).split_once('=')?;
        if !name.eq_ignore_ascii_case("for") {
            return None;
        }
        let value = value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value);
        node(value)
    })
}

/// `ip`, `ipv4:port`, `[ipv6]` or `[ipv6]:port`.
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse() {
        return Some(ip);
    }
    if let Some(rest) = text.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        return match after {
            "" => v6.parse().ok(),
            port if port.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok()) => v6.parse().ok(),
            _ => None,
        };
    }
    let (v4, port) = text.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    v4.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies() -> TrustedProxies {
        TrustedProxies::new(["10.0.0.0/8", "2001:db8::/32"]).unwrap()
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn walks_x_forwarded_for_from_the_right_across_instances() {
        let r = Request::new("")
            .header("X-Forwarded-For", "6.6.6.6, 203.0.113.1")
            .header("x-forwarded-for", "10.9.9.9:443, 10.8.8.8");
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("203.0.113.1"));
        let all_trusted = Request::new("").header("X-Forwarded-For", "10.1.1.1, 10.2.2.2");
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &all_trusted), ip("10.1.1.1"));
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &Request::new("")), ip("10.0.0.1"));
    }

    #[test]
    fn an_untrusted_peer_is_the_client() {
        let r = Request::new("").header("X-Forwarded-For", "10.1.1.1");
        assert_eq!(proxies().client_ip(ip("198.51.100.1"), &r), ip("198.51.100.1"));
        assert_eq!(proxies().client_ip(None::<IpAddr>, &r), None);
    }

    #[test]
    fn a_malformed_chain_stops_at_the_last_trusted_hop() {
        for garbage in ["6.6.6.6, nonsense, 10.2.2.2", "6.6.6.6, , 10.2.2.2", "6.6.6.6,10.0.0.300,10.2.2.2"] {
            let r = Request::new("").header("X-Forwarded-For", garbage);
            assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("10.2.2.2"), "{garbage}");
        }
        let r = Request::new("").header("X-Forwarded-For", b"6.6.6.6, \xff");
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("10.0.0.1"));
    }

    #[test]
    fn reads_rfc_7239_forwarded_first() {
        let r = Request::new("")
            .header("X-Forwarded-For", "6.6.6.6")
            .header("Forwarded", r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711""#);
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("192.0.2.60"));
        let r = Request::new("").header("Forwarded", "for=unknown, for=10.3.3.3");
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("10.3.3.3"));
        let r = Request::new("").header("Forwarded", "for=_hidden;proto=https");
        assert_eq!(proxies().client_ip(ip("10.0.0.1"), &r), ip("10.0.0.1"));
    }

    #[test]
    fn mapped_addresses_and_ports() {
        assert_eq!(node("[::ffff:10.0.0.1]:80"), ip("::ffff:10.0.0.1"));
        assert_eq!(node("192.0.2.1:8080"), ip("192.0.2.1"));
        assert_eq!(node("[2001:db8::1]"), ip("2001:db8::1"));
        assert_eq!(node("2001:db8::1"), ip("2001:db8::1"));
        assert_eq!(node("192.0.2.1:99999"), None);
        assert_eq!(node("[2001:db8::1]x"), None);
        let r = Request::new("").header("X-Forwarded-For", "198.51.100.1");
        assert_eq!(proxies().client_ip(ip("::ffff:10.0.0.1"), &r), ip("198.51.100.1"), "a mapped peer is IPv4");
    }

    #[test]
    fn ranges_parse_as_allowed_ip_range_does() {
        let err = TrustedProxies::new(["10.0.0.0/8", "10.0.0.0/08"]).unwrap_err();
        assert_eq!((err.code(), err.field()), ("InvalidOptions", Some("trusted_proxies[1]")));
        assert!(
            TrustedProxies::new(Vec::<String>::new()).unwrap().client_ip(ip("10.0.0.1"), &Request::new("")).is_some()
        );
    }
}
