//! `[mail]`, `[smtp]`, `[delivery]` and `[dkim]`: who mail comes from,
//! how it leaves, how hard the workers try.

use std::path::PathBuf;

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::Secret;

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
    pub timeout_s: u64,
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
            timeout_s: 15,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryConfig {
    pub batch_size: u32,
    pub poll_interval_ms: u64,
    /// How long a claimed message stays reserved for one worker (E-21, crash safety).
    pub lease_s: u64,
    pub retry_base_s: u64,
    pub retry_max_s: u64,
    /// A message still failing transiently after this long is marked failed (E-22).
    pub give_up_after_h: u64,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            batch_size: 500,
            poll_interval_ms: 1000,
            lease_s: 30,
            retry_base_s: 30,
            retry_max_s: 3600,
            give_up_after_h: 72,
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
