//! A client's network: its address with the host bits cleared. Limits count
//! per network, so a client rotating through the addresses of its own IPv6
//! /64 (or a larger block it holds) is one client; evidence of consent keeps
//! a coarser network instead of the address. Also whether an address is
//! on the public internet at all.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `ip` cut to its first `v4_bits` (IPv4) or `v6_bits` (IPv6) bits. An
/// IPv4 address written as IPv6 (`::ffff:192.0.2.1`, as dual-stack sockets
/// report it) is cut as IPv4. Bit counts past the address length keep it whole.
pub fn network(ip: IpAddr, v4_bits: u8, v6_bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(cut_v4(v4, v4_bits)),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(cut_v4(v4, v4_bits)),
            None => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(v6_bits.min(128)))
                    .unwrap_or(0);
                IpAddr::V6(Ipv6Addr::from(u128::from(v6) & mask))
            }
        },
    }
}

/// Not loopback, private, link-local, shared, documentation, multicast or
/// otherwise reserved: an address on the public internet (S-04: feeds are
/// fetched from such addresses only, unless allowed).
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared, RFC 6598
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                // Ranges that carry an IPv4 address inside: NAT64, 6to4,
                // IPv4-compatible. Refused rather than unwrapped.
                || (first == 0x0064 && segments[1] == 0xff9b)
                || first == 0x2002
                || segments[..6].iter().all(|&s| s == 0))
        }
    }
}

/// Which addresses an outgoing HTTP request (a feed, a webhook) may reach
/// (S-04): public ones, plus what the operator allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reach {
    /// Every address, for a feed marked `allow_private`.
    pub any: bool,
    /// Addresses allowed although not public (`outgoing_webhooks.allow_addresses`).
    pub also: Vec<IpAddr>,
}

impl Reach {
    /// Public addresses only, or every address.
    pub fn public_or_any(any: bool) -> Self {
        Self {
            any,
            also: Vec::new(),
        }
    }

    pub fn allows(&self, ip: IpAddr) -> bool {
        // `::ffff:127.0.0.1` is 127.0.0.1 for the allow-list too.
        let plain = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        self.any || is_public(ip) || self.also.contains(&plain)
    }
}

fn cut_v4(ip: Ipv4Addr, bits: u8) -> Ipv4Addr {
    let mask = u32::MAX
        .checked_shl(32 - u32::from(bits.min(32)))
        .unwrap_or(0);
    Ipv4Addr::from(u32::from(ip) & mask)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("an address")
    }

    #[test]
    fn addresses_of_one_prefix_are_one_network() {
        let a = network(ip("2001:db8:1:2:aaaa::1"), 32, 64);
        let b = network(ip("2001:db8:1:2:ffff:ffff:ffff:ffff"), 32, 64);
        assert_eq!(a, b);
        assert_eq!(a, ip("2001:db8:1:2::"));
        assert_ne!(a, network(ip("2001:db8:1:3::1"), 32, 64));
        assert_eq!(
            network(ip("2001:db8:1:2:3:4:5:6"), 32, 48),
            ip("2001:db8:1::")
        );
        assert_eq!(network(ip("2001:db8::7"), 32, 128), ip("2001:db8::7"));
        assert_eq!(network(ip("2001:db8::7"), 32, 0), ip("::"));
    }

    #[test]
    fn public_addresses_are_public() {
        for text in ["93.184.216.34", "2a00:1450:4001:82b::200e"] {
            assert!(is_public(ip(text)), "{text}");
        }
    }

    #[test]
    fn ipv4_is_cut_as_ipv4_however_it_is_written() {
        assert_eq!(network(ip("203.0.113.77"), 32, 64), ip("203.0.113.77"));
        assert_eq!(network(ip("203.0.113.77"), 24, 64), ip("203.0.113.0"));
        assert_eq!(
            network(ip("::ffff:203.0.113.77"), 24, 64),
            ip("203.0.113.0")
        );
        assert_eq!(network(ip("203.0.113.77"), 0, 64), ip("0.0.0.0"));
    }
}
