//! `[mail]`, `[smtp]`, `[delivery]` and `[dkim]`: who mail comes from,
//! how it leaves, how hard the workers try.

use std::{path::PathBuf, time::Duration};

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{
    BreakerConfig, RelayConfig, Secret, duration,
    throttle::{DEFAULT_DOMAIN_HOLD, DomainLimit, WarmupConfig},
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    /// Sender of every message, parsed as it is read; its domain also names
    /// Message-IDs.
    #[serde(deserialize_with = "read_sender", serialize_with = "write_mailbox")]
    pub from: Mailbox,
    pub file_dir: PathBuf,
    /// A folder whose files override the email templates embedded in the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Broadsheet <newsletter@localhost>"
                .parse()
                .expect("the default sender is an address"),
            file_dir: "var/mail".into(),
            templates_dir: None,
        }
    }
}

/// `mail.from`: an address such as `Name <news@example.com>`.
fn read_sender<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Mailbox, D::Error> {
    let text = String::deserialize(deserializer)?;
    text.parse::<Mailbox>().map_err(|e| {
        <D::Error as de::Error>::custom(format!(
            "mail.from must be an address like \"Name <news@example.com>\" (got {text:?}): {e}"
        ))
    })
}

/// A mailbox as it is written in config.toml, e.g. `Name <news@example.com>`.
fn write_mailbox<S: Serializer>(mailbox: &Mailbox, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(mailbox)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
    None,
    Starttls,
    Tls,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    pub tls: SmtpTls,
    /// A PEM file of further certificate authorities to trust for the
    /// server's certificate (a relay with a private CA); empty for none.
    pub ca_file: PathBuf,
    pub username: String,
    pub password: Secret,
    /// Messages sent at once, and the size of the SMTP connection pool.
    pub concurrency: u32,
    /// 0 means unlimited.
    pub rate_per_second: u32,
    /// How long to wait for the server before a send counts as failed and is retried.
    #[serde(rename = "timeout_s", with = "duration::seconds")]
    pub timeout: Duration,
    /// The relay account mail (confirmations, sign-in links) goes through
    /// first, kept free of digests; empty: account mail goes as digests do.
    pub account_relay: String,
    /// Several relays in place of the server above (`relays.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub relays: Vec<RelayConfig>,
    pub breaker: BreakerConfig,
}

impl Default for SmtpConfig {
    fn default() -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 25,
            tls: SmtpTls::None,
            ca_file: PathBuf::new(),
            username: String::new(),
            password: Secret::new(""),
            concurrency: 4,
            rate_per_second: 0,
            timeout: Duration::from_secs(15),
            account_relay: String::new(),
            relays: Vec::new(),
            breaker: BreakerConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub batch_size: u32,
    /// How long a worker rests when there is nothing to send.
    #[serde(rename = "poll_interval_ms", with = "duration::millis")]
    pub poll_interval: Duration,
    /// How long a claimed message stays reserved for one worker (E-21, crash safety).
    #[serde(rename = "lease_s", with = "duration::seconds")]
    pub lease: Duration,
    /// About how long before the first retry; each further retry waits twice as long…
    #[serde(rename = "retry_base_s", with = "duration::seconds")]
    pub retry_base: Duration,
    /// …but never longer than this.
    #[serde(rename = "retry_max_s", with = "duration::seconds")]
    pub retry_max: Duration,
    /// A message still failing transiently after this long is marked failed (E-22).
    #[serde(rename = "give_up_after_h", with = "duration::hours")]
    pub give_up_after: Duration,
    /// Receiving domains' limits (`throttle.rs`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub domain_limits: Vec<DomainLimit>,
    /// How long a domain's digests wait after it deferred one (4.7.x).
    #[serde(rename = "domain_hold_s", with = "duration::seconds")]
    pub domain_hold: Duration,
    pub warmup: WarmupConfig,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval: Duration::from_millis(1000),
            lease: Duration::from_secs(30),
            retry_base: Duration::from_secs(30),
            retry_max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(72 * 3600),
            domain_limits: Vec::new(),
            domain_hold: DEFAULT_DOMAIN_HOLD,
            warmup: WarmupConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DkimAlgorithm {
    Rsa,
    Ed25519,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DkimConfig {
    /// The signing domain (`d=`); empty turns DKIM signing off.
    pub domain: String,
    /// The selector (`s=`): the key is published at `<selector>._domainkey.<domain>`.
    pub selector: String,
    /// RSA: a PKCS#1 PEM file (2048 bits or more). Ed25519: the base64 of the 32-byte seed.
    pub private_key_path: PathBuf,
    pub algorithm: DkimAlgorithm,
}

impl Default for DkimConfig {
    fn default() -> Self {
        Self {
            domain: String::new(),
            selector: "broadsheet".into(),
            private_key_path: PathBuf::new(),
            algorithm: DkimAlgorithm::Ed25519,
        }
    }
}
