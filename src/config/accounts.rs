//! `[signup]`, `[accounts]`, `[editors]`, `[privacy]` and `[cookies]`: the
//! limits and lifetimes of what readers and editors do, and what is kept
//! about them.

use std::{path::PathBuf, time::Duration};

use serde::{Deserialize, Serialize};

use super::duration;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupConfig {
    /// How long a confirmation link works.
    #[serde(rename = "confirm_token_ttl_h", with = "duration::hours")]
    pub confirm_token_ttl: Duration,
    /// How long the set-password link sent on confirmation works.
    #[serde(rename = "credentials_token_ttl_h", with = "duration::hours")]
    pub credentials_token_ttl: Duration,
    /// Confirmation emails per address per 24 h (D-09).
    pub max_confirmations_per_day: u32,
    /// Signup, reset and sign-in-link requests per client IP per hour (D-10); 0 turns the limit off.
    pub per_ip_per_hour: u32,
    /// Emails that signups send strangers (confirmations, "already
    /// subscribed") per hour from the whole service, however many networks
    /// ask; the rest wait in the queue. 0 turns the ceiling off.
    pub emails_per_hour: u32,
    /// The exact wording shown beside the digest checkbox; its hash is its version (G-05).
    pub newsletter_consent_text: String,
}

impl Default for SignupConfig {
    fn default() -> Self {
        Self {
            confirm_token_ttl: Duration::from_secs(48 * 3600),
            credentials_token_ttl: Duration::from_secs(7 * 24 * 3600),
            max_confirmations_per_day: 3,
            per_ip_per_hour: 30,
            emails_per_hour: 1000,
            newsletter_consent_text: "Yes, email me the daily digest of new articles. \
                I can unsubscribe at any time with one click."
                .into(),
        }
    }
}

/// Editors' accounts: shorter sessions than readers', as they can send mail.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EditorsConfig {
    /// How long the set-password link of `broadsheet editor add` works.
    #[serde(rename = "password_link_ttl_h", with = "duration::hours")]
    pub password_link_ttl: Duration,
    /// An editor's session unused this long ends.
    #[serde(rename = "session_idle_h", with = "duration::hours")]
    pub session_idle: Duration,
    /// An editor's session ends this long after sign-in, used or not.
    #[serde(rename = "session_absolute_h", with = "duration::hours")]
    pub session_absolute: Duration,
    /// API requests per token per minute; past it, 429. 0 turns the limit off.
    pub api_requests_per_minute: u32,
    /// Test digests (sent to any address) each editor may send per hour.
    pub test_sends_per_hour: u32,
}

impl Default for EditorsConfig {
    fn default() -> Self {
        Self {
            password_link_ttl: Duration::from_secs(48 * 3600),
            session_idle: Duration::from_secs(12 * 3600),
            session_absolute: Duration::from_secs(7 * 24 * 3600),
            api_requests_per_minute: 600,
            test_sends_per_hour: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// How long a password-reset link works (A-01: 1 hour).
    #[serde(rename = "reset_token_ttl_min", with = "duration::minutes")]
    pub reset_token_ttl: Duration,
    /// How long an emailed sign-in link works (A-10: at most 10 minutes).
    #[serde(rename = "sign_in_link_ttl_min", with = "duration::minutes")]
    pub sign_in_link_ttl: Duration,
    /// Reset and sign-in-link emails per address per hour.
    pub max_link_emails_per_hour: u32,
    /// A session unused this long ends (A-08 idle timeout).
    #[serde(rename = "session_idle_h", with = "duration::hours")]
    pub session_idle: Duration,
    /// A session ends this long after sign-in, used or not (A-08 absolute timeout).
    #[serde(rename = "session_absolute_h", with = "duration::hours")]
    pub session_absolute: Duration,
    /// Sign-in attempts per client IP per minute; 0 turns the limit off.
    pub login_per_ip_per_minute: u32,
    /// Sign-in attempts per account per hour; 0 turns the limit off.
    pub login_per_account_per_hour: u32,
    /// Password hashes computed at once (S-03); each takes about 19 MiB.
    pub hashing_concurrency: u32,
    /// How long a request waits for a hashing thread before it is
    /// answered 503 with Retry-After; 0: refused at once when none is free.
    #[serde(rename = "hashing_max_wait_ms", with = "duration::millis")]
    pub hashing_max_wait: Duration,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            reset_token_ttl: Duration::from_secs(60 * 60),
            sign_in_link_ttl: Duration::from_secs(10 * 60),
            max_link_emails_per_hour: 3,
            session_idle: Duration::from_secs(14 * 24 * 3600),
            session_absolute: Duration::from_secs(30 * 24 * 3600),
            login_per_ip_per_minute: 20,
            login_per_account_per_hour: 10,
            hashing_concurrency: 2,
            hashing_max_wait: Duration::from_millis(1000),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IpMode {
    Full,
    Truncated,
    None,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PrivacyConfig {
    /// How much of the client IP consent events keep (G-07).
    pub ip_mode: IpMode,
    /// Unconfirmed signups older than this are deleted (G-16).
    #[serde(rename = "unconfirmed_retention_days", with = "duration::days")]
    pub unconfirmed_retention: Duration,
    /// IPs and user agents on consent events older than this are removed (G-07).
    #[serde(rename = "ip_retention_days", with = "duration::days")]
    pub ip_retention: Duration,
    /// When the retention jobs run: a 6-field cron expression (seconds first), UTC.
    pub purge_cron: String,
    /// A Markdown file with the privacy notice; the built-in notice if unset.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice_file: Option<PathBuf>,
    /// The data controller named in consent receipts (G-08).
    pub controller_name: String,
    pub controller_email: String,
    pub controller_address: String,
    /// The jurisdiction named in consent receipts.
    pub jurisdiction: String,
    /// A file holding the key that hashes erased addresses (G-13). Kept out of
    /// the database, a dump of it alone cannot test guesses against the
    /// hashes; empty: a key generated into the database.
    pub suppression_key_file: PathBuf,
}

impl Default for PrivacyConfig {
    fn default() -> Self {
        Self {
            ip_mode: IpMode::Truncated,
            unconfirmed_retention: Duration::from_secs(7 * 24 * 3600),
            ip_retention: Duration::from_secs(365 * 24 * 3600),
            purge_cron: "0 30 3 * * *".into(),
            notice_file: None,
            controller_name: "Broadsheet".into(),
            controller_email: "privacy@localhost".into(),
            controller_address: "".into(),
            jurisdiction: "EU".into(),
            suppression_key_file: PathBuf::new(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CookiesConfig {
    /// Optional cookie categories offered in the banner, all off until chosen (C-02).
    pub categories: Vec<String>,
    /// The banner's text; its hash is the banner version recorded with each choice.
    pub banner_text: String,
    /// How long a choice is remembered before the banner asks again.
    #[serde(rename = "max_age_days", with = "duration::days")]
    pub max_age: Duration,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        Self {
            categories: vec!["preferences".into(), "analytics".into()],
            banner_text: "We use cookies that the site needs to work (sign-in, security). With \
                your permission we would also use cookies to remember your preferences and to \
                count visits anonymously. Nothing optional is stored until you choose."
                .into(),
            max_age: Duration::from_secs(180 * 24 * 3600),
        }
    }
}
