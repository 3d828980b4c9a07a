//! `[bounces]` and `[webhooks]`: where the mail world's reports come back
//! (a tagged return path, a bounce mailbox read over IMAP, providers'
//! webhooks) and what they lead to.

use std::time::Duration;

use lettre::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{Secret, duration};
use crate::domain::MAX_TAG_LEN;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BouncesConfig {
    /// The envelope sender of every email, which each message tags with
    /// itself (`bounces+<tag>@domain`); `None` sends from `mail.from`'s
    /// address, untagged.
    #[serde(
        deserialize_with = "read_return_path",
        serialize_with = "write_return_path"
    )]
    pub return_path: Option<Address>,
    /// Soft bounces of consecutive messages that suppress an address...
    pub soft_limit: u32,
    /// ... when they all came within this long.
    #[serde(rename = "soft_window_days", with = "duration::days")]
    pub soft_window: Duration,
    pub imap: ImapConfig,
}

impl Default for BouncesConfig {
    fn default() -> Self {
        Self {
            return_path: None,
            soft_limit: 3,
            soft_window: Duration::from_secs(14 * 86_400),
            imap: ImapConfig::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImapTls {
    None,
    Starttls,
    Tls,
}

/// `[bounces.imap]`: the mailbox the return path delivers to.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ImapConfig {
    /// Empty: no mailbox is read.
    pub host: String,
    pub port: u16,
    pub tls: ImapTls,
    /// A PEM file of further certificate authorities to trust (a private
    /// CA); empty for none.
    pub ca_file: std::path::PathBuf,
    pub username: String,
    pub password: Secret,
    /// Where reports arrive.
    pub folder: String,
    /// Where each message goes once handled, created if missing.
    pub done_folder: String,
    #[serde(rename = "poll_interval_s", with = "duration::seconds")]
    pub poll_interval: Duration,
}

impl Default for ImapConfig {
    fn default() -> Self {
        Self {
            host: String::new(),
            port: 993,
            tls: ImapTls::Tls,
            ca_file: std::path::PathBuf::new(),
            username: String::new(),
            password: Secret::default(),
            folder: "INBOX".into(),
            done_folder: "Processed".into(),
            poll_interval: Duration::from_secs(60),
        }
    }
}

/// `[webhooks]`: the providers whose event webhooks are accepted, each
/// with what proves a request is theirs. A provider left unset refuses
/// every request with 404.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WebhooksConfig {
    /// Amazon SES through SNS: the topic ARNs whose messages are accepted.
    pub ses_topics: Vec<String>,
    /// Postmark: the basic-auth user and password put in the webhook's URL.
    pub postmark_username: String,
    pub postmark_password: Secret,
    /// Mailgun: the HTTP webhook signing key.
    pub mailgun_signing_key: Secret,
    /// SendGrid: the signed event webhook's verification key (base64).
    pub sendgrid_public_key: String,
}

/// `bounces.return_path`: an address whose local part leaves room for a
/// tag within SMTP's 64 octets, and holds no `+` of its own.
fn read_return_path<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<Address>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.trim().is_empty() {
        return Ok(None);
    }
    let address: Address = text.trim().parse().map_err(|e| {
        de::Error::custom(format!(
            "bounces.return_path must be an address like bounces@news.example (got {text:?}): {e}"
        ))
    })?;
    let room = 64 - 1 - MAX_TAG_LEN;
    if address.user().contains('+') || address.user().len() > room {
        return Err(de::Error::custom(format!(
            "bounces.return_path's local part must have no '+' and at most {room} characters, \
             to leave room for the tag (got {text:?})"
        )));
    }
    Ok(Some(address))
}

fn write_return_path<S: Serializer>(
    address: &Option<Address>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match address {
        Some(address) => serializer.collect_str(address),
        None => serializer.serialize_str(""),
    }
}
