//! `[outgoing_webhooks]`: how events reach the endpoints admins register
//! (README.md, "Outgoing webhooks").

use std::{net::IpAddr, time::Duration};

use serde::{Deserialize, Serialize};

use super::duration;
use crate::domain::Reach;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OutgoingWebhooksConfig {
    /// Addresses an endpoint may have although they are not public (a CRM
    /// on the same network, say); every other loopback, private, link-local
    /// or metadata address is refused (S-04).
    pub allow_addresses: Vec<IpAddr>,
    /// How long one request may take.
    #[serde(rename = "timeout_s", with = "duration::seconds")]
    pub timeout: Duration,
    /// How many requests one instance has in flight at most.
    pub concurrency: u32,
    /// An endpoint every request to which has failed for this long is
    /// turned off, and admins are told on the dashboard.
    #[serde(rename = "disable_after_h", with = "duration::hours")]
    pub disable_after: Duration,
}

impl OutgoingWebhooksConfig {
    /// The addresses endpoints may have: public ones and those allowed.
    pub fn reach(&self) -> Reach {
        Reach {
            any: false,
            also: self.allow_addresses.clone(),
        }
    }
}

impl Default for OutgoingWebhooksConfig {
    fn default() -> Self {
        Self {
            allow_addresses: Vec::new(),
            timeout: Duration::from_secs(10),
            concurrency: 8,
            disable_after: Duration::from_secs(24 * 3600),
        }
    }
}
