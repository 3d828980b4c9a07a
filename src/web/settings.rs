//! What handlers read of the config: the site's address, whether it is
//! served over https, the time limit, who the client is and the cookie
//! banner's categories. Features keep their own settings.

use std::{net::IpAddr, time::Duration};

use crate::config::Config;

/// How the client is found: the proxies whose `X-Forwarded-For` is
/// believed (S-07), and the network sizes per-client limits count by.
#[derive(Debug, Clone)]
pub struct ClientNetworks {
    pub trusted_proxies: Vec<IpAddr>,
    /// `server.ipv4_prefix_len`.
    pub ipv4_prefix_len: u8,
    /// `server.ipv6_prefix_len`.
    pub ipv6_prefix_len: u8,
}

/// The few settings handlers and the router read.
#[derive(Debug, Clone)]
pub struct WebSettings {
    /// `server.base_url`: links shown in the console start with it.
    pub base_url: String,
    /// Served over https: cookies get `Secure` and `__Host-`, answers HSTS.
    pub is_https: bool,
    /// `server.request_timeout_s`: a request still running then gets 408.
    pub request_timeout: Duration,
    /// `/metrics` is served on the site itself (`server.metrics_bind` unset).
    pub metrics_on_site: bool,
    pub clients: ClientNetworks,
    /// The optional cookie categories the banner offers (C-02).
    pub cookie_categories: Vec<String>,
    /// How long a cookie choice is remembered (`cookies.max_age_days`).
    pub cookie_max_age: Duration,
}

impl WebSettings {
    pub fn from_config(config: &Config) -> Self {
        let server = &config.server;
        Self {
            base_url: server.base_url.clone(),
            is_https: server.is_https(),
            request_timeout: server.request_timeout,
            metrics_on_site: server.metrics_bind.is_none(),
            clients: ClientNetworks {
                // Canonical, as client_ip makes the addresses it compares:
                // `::ffff:127.0.0.1` listed is 127.0.0.1.
                trusted_proxies: server
                    .trusted_proxies
                    .iter()
                    .map(IpAddr::to_canonical)
                    .collect(),
                ipv4_prefix_len: server.ipv4_prefix_len,
                ipv6_prefix_len: server.ipv6_prefix_len,
            },
            cookie_categories: config.cookies.categories.clone(),
            cookie_max_age: config.cookies.max_age,
        }
    }
}
