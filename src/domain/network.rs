//! A client's network: its address with the host bits cleared. Limits count
//! per network, so a client rotating through the addresses of its own IPv6
//! /64 (or a larger block it holds) is one client; evidence of consent keeps
//! a coarser network instead of the address.

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
