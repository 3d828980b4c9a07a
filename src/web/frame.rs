//! What every page is given (`Frame`: the CSRF token for its forms, who is
//! signed in, whether to show the cookie banner) and who the client is: the
//! connection's address, or one from trusted proxies. Read from each request
//! in `extract`.

use std::net::{IpAddr, SocketAddr};

use axum::{extract::ConnectInfo, http::request::Parts};

use super::{cookie_choice::CookieChoice, settings::ClientNetworks};
use crate::accounts::Reader;

/// The page chrome's inputs; every HTML handler takes one.
pub struct Frame {
    pub csrf: String,
    pub reader: Option<Reader>,
    /// `None` until the browser has made a choice for the current banner.
    pub cookie_choice: Option<CookieChoice>,
    /// The path of this page, for forms that come back to it.
    pub path: String,
    /// The client's address: the connection's, or from a trusted proxy (S-07).
    pub client_ip: IpAddr,
    /// What per-client limits count against: [`client_network`].
    pub client_net: IpAddr,
}

/// Where a form on this page may send the browser back to. Pages whose path
/// holds an emailed token send it home instead, so the token never travels
/// further (D-17).
pub fn return_path(path: &str) -> String {
    const TOKEN_PAGES: [&str; 5] = [
        "/confirm/",
        "/account/password/",
        "/login/link/",
        "/unsubscribe/",
        "/preferences/",
    ];
    if TOKEN_PAGES.iter().any(|prefix| path.starts_with(prefix)) {
        "/".into()
    } else {
        path.into()
    }
}

/// The network the client's limits count against: its address cut to
/// `server.ipv4_prefix_len` or `server.ipv6_prefix_len` bits.
pub fn client_network(parts: &Parts, clients: &ClientNetworks) -> IpAddr {
    crate::domain::network(
        client_ip(parts, &clients.trusted_proxies),
        clients.ipv4_prefix_len,
        clients.ipv6_prefix_len,
    )
}

/// The connecting address, unless that is a trusted proxy: then the
/// right-most address in `X-Forwarded-For` that is not one (S-07). Headers
/// from anyone else are ignored, so clients cannot choose their own address.
/// An entry that is no address stops the walk at the trusted hop that wrote
/// it: skipping it would lead into addresses the client wrote itself.
pub fn client_ip(parts: &Parts, trusted: &[IpAddr]) -> IpAddr {
    let peer = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        // Canonical: a server bound to `[::]` sees IPv4 clients as
        // `::ffff:a.b.c.d`, which would match no IPv4 proxy listed and,
        // cut to a /64, put every IPv4 client in one network.
        .map_or(IpAddr::from([0, 0, 0, 0]), |ConnectInfo(addr)| {
            addr.ip().to_canonical()
        });
    if !trusted.contains(&peer) {
        return peer;
    }
    // Bytes that are not text spoil only the entry they are in (the one the
    // client wrote), not the whole value a proxy appended its own to.
    let values: Vec<String> = parts
        .headers
        .get_all("x-forwarded-for")
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
        .collect();
    let mut nearest = peer;
    for entry in values.iter().flat_map(|v| v.split(',')).rev() {
        match forwarded_address(entry) {
            Some(ip) if trusted.contains(&ip) => nearest = ip,
            Some(ip) => return ip,
            None => return nearest,
        }
    }
    nearest
}

/// One `X-Forwarded-For` entry as proxies write them: `192.0.2.1`,
/// `192.0.2.1:4711`, `2001:db8::1`, `[2001:db8::1]` or `[2001:db8::1]:4711`,
/// quoted or not.
fn forwarded_address(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim().trim_matches('"');
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(|ip: IpAddr| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip_for(forwarded: &[&str]) -> IpAddr {
        let mut request = axum::http::Request::builder();
        for value in forwarded {
            request = request.header("x-forwarded-for", *value);
        }
        let (mut parts, ()) = request.body(()).expect("a request").into_parts();
        let proxy = SocketAddr::from(([10, 0, 0, 1], 443));
        parts.extensions.insert(ConnectInfo(proxy));
        let trusted = [
            "10.0.0.1".parse().expect("ip"),
            "10.0.0.2".parse().expect("ip"),
        ];
        client_ip(&parts, &trusted)
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().expect("ip")
    }

    #[test]
    fn proxies_written_addresses_with_ports_and_brackets_are_read() {
        assert_eq!(ip_for(&["198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(ip_for(&["198.51.100.7:4711"]), ip("198.51.100.7"));
        assert_eq!(ip_for(&["2001:db8::7"]), ip("2001:db8::7"));
        assert_eq!(ip_for(&["[2001:db8::7]"]), ip("2001:db8::7"));
        assert_eq!(
            ip_for(&["\"[2001:db8::7]:443\", 10.0.0.2"]),
            ip("2001:db8::7")
        );
        assert_eq!(ip_for(&["203.0.113.9, 198.51.100.7"]), ip("198.51.100.7"));
        assert_eq!(
            ip_for(&["203.0.113.9", "198.51.100.7, 10.0.0.2"]),
            ip("198.51.100.7")
        );
        assert_eq!(ip_for(&[]), ip("10.0.0.1"));
    }

    #[test]
    fn an_entry_that_is_no_address_stops_the_walk_at_the_proxy_that_wrote_it() {
        // The client wrote 203.0.113.9; skipping "unknown" would believe it.
        assert_eq!(ip_for(&["203.0.113.9, unknown"]), ip("10.0.0.1"));
        assert_eq!(ip_for(&["203.0.113.9, unknown, 10.0.0.2"]), ip("10.0.0.2"));
        assert_eq!(ip_for(&["203.0.113.9", "nonsense:port"]), ip("10.0.0.1"));
    }

    #[test]
    fn ipv4_clients_of_a_dual_stack_listener_are_ipv4_addresses() {
        let (mut parts, ()) = axum::http::Request::builder()
            .header("x-forwarded-for", "::ffff:198.51.100.7")
            .body(())
            .expect("a request")
            .into_parts();
        let mapped_proxy = SocketAddr::new(ip("::ffff:10.0.0.1"), 443);
        parts.extensions.insert(ConnectInfo(mapped_proxy));
        assert_eq!(client_ip(&parts, &[ip("10.0.0.1")]), ip("198.51.100.7"));
        assert_eq!(client_ip(&parts, &[]), ip("10.0.0.1"));
    }

    #[test]
    fn bytes_that_are_not_text_spoil_only_their_own_entry() {
        let mut request = axum::http::Request::builder();
        let value =
            axum::http::HeaderValue::from_bytes(b"\xff\xfe, 198.51.100.7").expect("a value");
        request = request.header("x-forwarded-for", value);
        let (mut parts, ()) = request.body(()).expect("a request").into_parts();
        parts
            .extensions
            .insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 1], 443))));
        let trusted = [ip("10.0.0.1")];
        assert_eq!(client_ip(&parts, &trusted), ip("198.51.100.7"));
    }
}
