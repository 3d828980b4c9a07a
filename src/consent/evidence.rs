//! What evidence a consent event keeps about how it was given (G-04, G-07).

use std::net::IpAddr;

use crate::config::IpMode;

/// How a consent was given, kept on the events that prove it (G-04, G-07).
#[derive(Debug, Clone, Default)]
pub struct Evidence {
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    /// The privacy notice version the reader could read at the time (G-04).
    pub notice_id: Option<String>,
}

impl Evidence {
    /// Keeps the IP as `ip_mode` allows and at most 256 characters of user agent.
    pub fn new(ip: IpAddr, user_agent: Option<&str>, ip_mode: IpMode, notice_id: &str) -> Self {
        Self {
            ip: reduce_ip(ip, ip_mode),
            user_agent: user_agent.map(|ua| ua.chars().take(256).collect()),
            notice_id: Some(notice_id.to_owned()),
        }
    }
}

/// `truncated` keeps the network, not the host: IPv4 /24, IPv6 /48.
fn reduce_ip(ip: IpAddr, mode: IpMode) -> Option<String> {
    match mode {
        IpMode::None => None,
        IpMode::Full => Some(ip.to_string()),
        IpMode::Truncated => Some(crate::domain::network(ip, 24, 48).to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_is_kept_as_configured() {
        let v4: IpAddr = "203.0.113.77".parse().expect("ip");
        let v6: IpAddr = "2001:db8:1:2:3:4:5:6".parse().expect("ip");
        assert_eq!(reduce_ip(v4, IpMode::Full).as_deref(), Some("203.0.113.77"));
        assert_eq!(
            reduce_ip(v4, IpMode::Truncated).as_deref(),
            Some("203.0.113.0")
        );
        assert_eq!(
            reduce_ip(v6, IpMode::Truncated).as_deref(),
            Some("2001:db8:1::")
        );
        assert_eq!(reduce_ip(v4, IpMode::None), None);
    }
}
