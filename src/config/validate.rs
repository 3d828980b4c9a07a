//! Checks on values that parse on their own but must fit a range or agree
//! with another key. Mailboxes, schedules and feeds are checked where they
//! are parsed (`mail.rs`, `digest.rs`), once.

use anyhow::bail;

use super::{Config, CookiesConfig, DatabaseConfig, ServerConfig};

impl Config {
    /// Every check, section by section; the first that fails stops loading.
    pub(super) fn validate(&self) -> anyhow::Result<()> {
        check_base_url(&self.server)?;
        check_database_url(&self.database)?;
        self.check_minimums()?;
        self.check_lease()?;
        self.smtp.check_relays()?;
        self.delivery.check_throttles()?;
        // An event is given up after delivery.give_up_after_h: before its
        // endpoint is turned off, its failing days would go unsaid.
        if self.delivery.give_up_after < self.outgoing_webhooks.disable_after {
            bail!(
                "invalid configuration: outgoing_webhooks.disable_after_h must not exceed delivery.give_up_after_h"
            );
        }
        let imap = &self.bounces.imap;
        if !imap.host.is_empty() && imap.folder == imap.done_folder {
            bail!(
                "invalid configuration: bounces.imap.done_folder must differ from bounces.imap.folder"
            );
        }
        check_cookie_categories(&self.cookies)?;
        check_prefix_lengths(&self.server)?;
        if self.signup.newsletter_consent_text.trim().is_empty() {
            bail!("invalid configuration: signup.newsletter_consent_text must not be empty");
        }
        Ok(())
    }

    /// Counts and durations that mean nothing, or stop everything, at 0.
    fn check_minimums(&self) -> anyhow::Result<()> {
        for (key, value) in [
            ("smtp.concurrency", self.smtp.concurrency),
            ("delivery.batch_size", self.delivery.batch_size),
            ("database.max_connections", self.database.max_connections),
            (
                "accounts.hashing_concurrency",
                self.accounts.hashing_concurrency,
            ),
            ("bounces.soft_limit", self.bounces.soft_limit),
            (
                "outgoing_webhooks.concurrency",
                self.outgoing_webhooks.concurrency,
            ),
        ] {
            if value == 0 {
                bail!("invalid configuration: {key} must be at least 1");
            }
        }
        for (key, duration) in [
            ("delivery.lease_s", self.delivery.lease),
            ("smtp.timeout_s", self.smtp.timeout),
            (
                "outgoing_webhooks.timeout_s",
                self.outgoing_webhooks.timeout,
            ),
            (
                "outgoing_webhooks.disable_after_h",
                self.outgoing_webhooks.disable_after,
            ),
            ("accounts.session_idle_h", self.accounts.session_idle),
            ("editors.session_idle_h", self.editors.session_idle),
            ("editors.session_absolute_h", self.editors.session_absolute),
            (
                "editors.password_link_ttl_h",
                self.editors.password_link_ttl,
            ),
            (
                "accounts.session_absolute_h",
                self.accounts.session_absolute,
            ),
            ("bounces.soft_window_days", self.bounces.soft_window),
            (
                "bounces.imap.poll_interval_s",
                self.bounces.imap.poll_interval,
            ),
        ] {
            if duration.is_zero() {
                bail!("invalid configuration: {key} must be at least 1");
            }
        }
        Ok(())
    }

    fn check_lease(&self) -> anyhow::Result<()> {
        // A send may start until smtp.timeout_s before its lease ends, and
        // leases are renewed every third of one (src/delivery/lease.rs): a
        // shorter lease would leave no time to send between renewals.
        let (lease, timeout) = (self.delivery.lease, self.smtp.timeout);
        if lease < timeout.saturating_mul(2) {
            bail!(
                "invalid configuration: delivery.lease_s ({}) must be at least twice smtp.timeout_s ({})",
                lease.as_secs(),
                timeout.as_secs()
            );
        }
        Ok(())
    }
}

fn check_base_url(server: &ServerConfig) -> anyhow::Result<()> {
    let base = &server.base_url;
    if !(base.starts_with("http://") || base.starts_with("https://")) || base.ends_with('/') {
        bail!(
            "invalid configuration: server.base_url must start with http:// or https:// \
             and have no trailing slash (got {base:?})"
        );
    }
    Ok(())
}

fn check_database_url(database: &DatabaseConfig) -> anyhow::Result<()> {
    let url = database.url.expose();
    if !(url.starts_with("sqlite:")
        || url.starts_with("postgres://")
        || url.starts_with("postgresql://"))
    {
        bail!("invalid configuration: database.url must start with sqlite:// or postgres://");
    }
    Ok(())
}

fn check_cookie_categories(cookies: &CookiesConfig) -> anyhow::Result<()> {
    for category in &cookies.categories {
        let valid = !category.is_empty()
            && category
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid {
            bail!(
                "invalid configuration: cookies.categories entries are lower-case letters, digits and _ (got {category:?})"
            );
        }
    }
    Ok(())
}

fn check_prefix_lengths(server: &ServerConfig) -> anyhow::Result<()> {
    let (v4, v6) = (server.ipv4_prefix_len, server.ipv6_prefix_len);
    if !(8..=32).contains(&v4) || !(16..=128).contains(&v6) {
        bail!(
            "invalid configuration: server.ipv4_prefix_len must be 8 to 32 and \
             server.ipv6_prefix_len 16 to 128 (got {v4} and {v6})"
        );
    }
    Ok(())
}
