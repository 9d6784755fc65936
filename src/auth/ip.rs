//! `AllowedIPRange`: one IPv4 or IPv6 CIDR, parsed once.
//!
//! IPv4-mapped IPv6 (`::ffff:a.b.c.d`) is IPv4, both in the range (when its prefix is at least
//! 96) and in the source address, so a dual-stack listener that reports `::ffff:10.0.0.7` matches
//! `10.0.0.0/8`. Otherwise the families do not mix: `::/0` does not admit IPv4 peers.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use ipnetwork::{IpNetwork, Ipv4Network, Ipv6Network};

use crate::error::escape;

/// A parsed, normalised allowed range.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct AllowedIpRange(IpNetwork);

impl AllowedIpRange {
    /// Parses `10.0.0.0/8`, `2001:db8::/32` or a bare address (a single host of its family).
    /// Host bits are masked off; zone ids, short forms (`10/8`) and spaces are refused.
    pub(crate) fn parse(text: &str) -> Result<Self, String> {
        // Quoted in every message with its control characters escaped: `'1.2.3.4\n'` must not
        // split the log line the error is written to.
        let shown = escape(text);
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| {
            if addr.contains('%') {
                format!("'{shown}' has a zone id; a range is a plain IPv4 or IPv6 CIDR such as 10.0.0.0/8")
            } else {
                format!("'{shown}' is not an IPv4 or IPv6 address or CIDR range, such as 192.0.2.0/24 or 2001:db8::/32")
            }
        })?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            // A leading zero (`/08`, `/008`) is refused as the address parser refuses `010.0.0.0`:
            // a prefix is written one way only.
            Some(p) if p.len() > 1 && p.starts_with('0') && p.bytes().all(|b| b.is_ascii_digit()) => {
                let digits = p.trim_start_matches('0');
                let written = if digits.is_empty() { "0" } else { digits };
                return Err(format!("'{shown}' has prefix length /{p}, with a leading zero; write it as /{written}"));
            }
            Some(p) if !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse::<u8>().ok().filter(|&p| p <= max).ok_or_else(|| {
                    format!("'{shown}' has prefix length /{p}; an {} prefix is at most /{max}", family(addr))
                })?
            }
            Some(p) => {
                return Err(format!(
                    "'{shown}' has prefix length '/{}', which is not a number from 0 to {max}",
                    escape(p)
                ));
            }
        };
        let network = IpNetwork::new(addr, prefix).map_err(|e| format!("'{shown}': {e}"))?;
        Ok(Self(normalise(network)))
    }

    /// Whether `source` (normalised the same way) is in the range.
    pub(crate) fn contains(&self, source: IpAddr) -> bool {
        self.0.contains(canonical(source))
    }
}

impl fmt::Display for AllowedIpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.0.network(), self.0.prefix())
    }
}

fn family(addr: IpAddr) -> &'static str {
    if addr.is_ipv4() { "IPv4" } else { "IPv6" }
}

/// The address as the range sees it: IPv4-mapped IPv6 becomes IPv4.
pub(crate) fn canonical(addr: IpAddr) -> IpAddr {
    match addr {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(addr, IpAddr::V4),
        v4 => v4,
    }
}

/// Masks host bits; an IPv4-mapped IPv6 range of prefix >= 96 becomes the IPv4 range it is.
fn normalise(network: IpNetwork) -> IpNetwork {
    match network {
        IpNetwork::V4(n) => IpNetwork::V4(Ipv4Network::new(n.network(), n.prefix()).expect("prefix already valid")),
        IpNetwork::V6(n) => {
            let base: Ipv6Addr = n.network();
            match base.to_ipv4_mapped() {
                Some(v4) if n.prefix() >= 96 => {
                    IpNetwork::V4(Ipv4Network::new(v4, n.prefix() - 96).expect("prefix - 96 <= 32"))
                }
                _ => IpNetwork::V6(Ipv6Network::new(base, n.prefix()).expect("prefix already valid")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_ranges_and_bare_addresses() {
        assert_eq!(AllowedIpRange::parse("10.0.0.0/8").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(AllowedIpRange::parse("10.1.2.3/8").unwrap().to_string(), "10.0.0.0/8", "host bits masked");
        assert_eq!(AllowedIpRange::parse("192.0.2.7").unwrap().to_string(), "192.0.2.7/32");
        assert_eq!(AllowedIpRange::parse("2001:db8::1").unwrap().to_string(), "2001:db8::1/128");
        assert_eq!(AllowedIpRange::parse("2001:db8::1/32").unwrap().to_string(), "2001:db8::/32");
        assert_eq!(AllowedIpRange::parse("::ffff:10.0.0.0/104").unwrap().to_string(), "10.0.0.0/8");
        assert_eq!(AllowedIpRange::parse("0.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    }

    #[test]
    fn refuses_what_is_not_a_cidr() {
        for bad in [
            "",
            "10/8",
            "10.1/16",
            "10.0.0.0/33",
            "::/129",
            "10.0.0.0/",
            "10.0.0.0/-1",
            "10.0.0.0/8 ",
            " 10.0.0.0/8",
            "fe80::1%eth0",
            "fe80::1%eth0/64",
            "10.0.0.0/8/8",
            "10.0.0.0/0x8",
            "example.com",
            "10.0.0.0/1000",
            "10.0.0.0/08",
            "10.0.0.0/008",
            "10.0.0.0/00",
            "2001:db8::/032",
            "1.2.3.4\n",
            "1.2.3.4/\n8",
        ] {
            assert!(AllowedIpRange::parse(bad).is_err(), "{bad:?}");
        }
        assert!(AllowedIpRange::parse("fe80::1%eth0").unwrap_err().contains("zone id"));
        assert!(AllowedIpRange::parse("10.0.0.0/08").unwrap_err().contains("leading zero; write it as /8"));
        assert!(AllowedIpRange::parse("10.0.0.0/00").unwrap_err().contains("write it as /0"));
        for bad in ["1.2.3.4\n", "1.2.3.4/\n8", "1.2.3.4/8\0", "1.2.3.4\r/8"] {
            let message = AllowedIpRange::parse(bad).unwrap_err();
            assert!(!message.contains(|c: char| c.is_control()), "{message:?}");
        }
        assert_eq!(AllowedIpRange::parse("10.0.0.0/0").unwrap().to_string(), "0.0.0.0/0");
    }

    #[test]
    fn membership_by_family_with_mapped_ipv4() {
        let v4 = AllowedIpRange::parse("10.0.0.0/8").unwrap();
        assert!(v4.contains(ip("10.9.8.7")));
        assert!(v4.contains(ip("::ffff:10.9.8.7")));
        assert!(!v4.contains(ip("11.0.0.1")));
        assert!(!v4.contains(ip("::a09:807")), "IPv4-compatible is not IPv4-mapped");
        let v6 = AllowedIpRange::parse("2001:db8::/32").unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!AllowedIpRange::parse("::/0").unwrap().contains(ip("10.0.0.1")));
        assert!(AllowedIpRange::parse("::/0").unwrap().contains(ip("::1")));
        let host = AllowedIpRange::parse("192.0.2.7").unwrap();
        assert!(host.contains(ip("192.0.2.7")) && !host.contains(ip("192.0.2.8")));
    }
}
