//! `[site]`, `[server]`, `[database]` and `[log]`: where the service
//! listens, what it connects to, how it logs.

use std::{net::SocketAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::{Secret, duration};

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SiteConfig {
    /// The publication's name, shown in page titles and the masthead.
    pub name: String,
}

impl Default for SiteConfig {
    fn default() -> Self {
        Self {
            name: "Broadsheet".into(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub bind: SocketAddr,
    /// Public address; every link in an email is built from it (D-15).
    pub base_url: String,
    /// A request still running this long is answered 408.
    #[serde(rename = "request_timeout_s", with = "duration::seconds")]
    pub request_timeout: Duration,
    /// Reverse proxies whose `X-Forwarded-For` is believed (S-07); empty:
    /// the client is whoever opened the connection.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where `/metrics` is served: unset, on the site itself; set (e.g. a
    /// private address), only there.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metrics_bind: Option<SocketAddr>,
    /// Emailed links and API tokens matching nothing, per client IP per
    /// hour; past it, that IP's link and API requests get 429 (E-04). 0: off.
    pub token_misses_per_ip_per_hour: u32,
    /// Every per-client limit counts per network: the client's IPv4 address
    /// cut to this many bits (32: the address itself)…
    pub ipv4_prefix_len: u8,
    /// …or its IPv6 address cut to this many (64: one customer's block, the
    /// usual assignment; an address of its own costs a client nothing).
    pub ipv6_prefix_len: u8,
    /// Requests of one client network being answered at once; past it, 429
    /// at once. 0 turns the limit off.
    pub max_in_flight_per_client: u32,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            bind: SocketAddr::from(([127, 0, 0, 1], 8080)),
            base_url: "http://127.0.0.1:8080".into(),
            request_timeout: Duration::from_secs(30),
            trusted_proxies: Vec::new(),
            metrics_bind: None,
            token_misses_per_ip_per_hour: 30,
            ipv4_prefix_len: 32,
            ipv6_prefix_len: 64,
            max_in_flight_per_client: 128,
        }
    }
}

impl ServerConfig {
    /// Cookies get `Secure` and the `__Host-` prefix only when served over https.
    pub fn is_https(&self) -> bool {
        self.base_url.starts_with("https://")
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DatabaseConfig {
    pub url: Secret,
    pub max_connections: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        Self {
            url: Secret::new("sqlite://var/broadsheet.db"),
            max_connections: 8,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `broadsheet=debug,sqlx=warn`.
    pub level: String,
    pub format: LogFormat,
}

impl Default for LogConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}
