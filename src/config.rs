//! Typed configuration: defaults in code → `config.toml` → `BROADSHEET_<SECTION>__<KEY>`.
//!
//! Unknown keys and bad values stop start-up with a message naming the key and
//! what is allowed (serde's `deny_unknown_fields` and enums do the naming).

use std::{
    fmt,
    net::SocketAddr,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

/// Environment variables with this prefix and a `__` override config keys.
pub const ENV_PREFIX: &str = "BROADSHEET_";

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub site: SiteConfig,
    pub server: ServerConfig,
    pub database: DatabaseConfig,
    pub mail: MailConfig,
    pub smtp: SmtpConfig,
    pub delivery: DeliveryConfig,
    pub signup: SignupConfig,
    pub accounts: AccountsConfig,
    pub editors: EditorsConfig,
    pub privacy: PrivacyConfig,
    pub cookies: CookiesConfig,
    pub digest: DigestConfig,
    /// RSS and Atom feeds whose entries become articles.
    pub feeds: Vec<FeedConfig>,
    pub dkim: DkimConfig,
    pub log: LogConfig,
}

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
    pub request_timeout_s: u64,
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
            request_timeout_s: 30,
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
pub enum MailTransport {
    File,
    Smtp,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    pub transport: MailTransport,
    pub from: String,
    pub file_dir: PathBuf,
    /// A folder whose files override the email templates embedded in the binary.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub templates_dir: Option<PathBuf>,
}

impl Default for MailConfig {
    fn default() -> Self {
        Self {
            transport: MailTransport::File,
            from: "Broadsheet <newsletter@localhost>".into(),
            file_dir: "var/mail".into(),
            templates_dir: None,
        }
    }
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

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignupConfig {
    pub confirm_token_ttl_h: u64,
    pub credentials_token_ttl_h: u64,
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
            confirm_token_ttl_h: 48,
            credentials_token_ttl_h: 7 * 24,
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
    /// Hours the set-password link of `broadsheet editor add` works.
    pub password_link_ttl_h: u64,
    /// An editor's session unused this long ends.
    pub session_idle_h: u64,
    /// An editor's session ends this long after sign-in, used or not.
    pub session_absolute_h: u64,
    /// API requests per token per minute; past it, 429. 0 turns the limit off.
    pub api_requests_per_minute: u32,
    /// Test digests (sent to any address) each editor may send per hour.
    pub test_sends_per_hour: u32,
}

impl Default for EditorsConfig {
    fn default() -> Self {
        Self {
            password_link_ttl_h: 48,
            session_idle_h: 12,
            session_absolute_h: 7 * 24,
            api_requests_per_minute: 600,
            test_sends_per_hour: 10,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AccountsConfig {
    /// Minutes a password-reset link works (A-01: 1 hour).
    pub reset_token_ttl_min: u64,
    /// Minutes an emailed sign-in link works (A-10: at most 10).
    pub sign_in_link_ttl_min: u64,
    /// Reset and sign-in-link emails per address per hour.
    pub max_link_emails_per_hour: u32,
    /// A session unused this long ends (A-08 idle timeout).
    pub session_idle_h: u64,
    /// A session ends this long after sign-in, used or not (A-08 absolute timeout).
    pub session_absolute_h: u64,
    /// Sign-in attempts per client IP per minute; 0 turns the limit off.
    pub login_per_ip_per_minute: u32,
    /// Sign-in attempts per account per hour; 0 turns the limit off.
    pub login_per_account_per_hour: u32,
    /// Password hashes computed at once (S-03); each takes about 19 MiB.
    pub hashing_concurrency: u32,
    /// Milliseconds a request waits for a hashing thread before it is
    /// answered 503 with Retry-After; 0: refused at once when none is free.
    pub hashing_max_wait_ms: u64,
}

impl Default for AccountsConfig {
    fn default() -> Self {
        Self {
            reset_token_ttl_min: 60,
            sign_in_link_ttl_min: 10,
            max_link_emails_per_hour: 3,
            session_idle_h: 14 * 24,
            session_absolute_h: 30 * 24,
            login_per_ip_per_minute: 20,
            login_per_account_per_hour: 10,
            hashing_concurrency: 2,
            hashing_max_wait_ms: 1000,
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
    /// Days after which unconfirmed signups are deleted (G-16).
    pub unconfirmed_retention_days: u64,
    /// Days after which IPs and user agents on consent events are removed (G-07).
    pub ip_retention_days: u64,
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
            unconfirmed_retention_days: 7,
            ip_retention_days: 365,
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
    /// Days a choice is remembered before the banner asks again.
    pub max_age_days: u64,
}

impl Default for CookiesConfig {
    fn default() -> Self {
        Self {
            categories: vec!["preferences".into(), "analytics".into()],
            banner_text: "We use cookies that the site needs to work (sign-in, security). With \
                your permission we would also use cookies to remember your preferences and to \
                count visits anonymously. Nothing optional is stored until you choose."
                .into(),
            max_age_days: 180,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Frequency {
    Daily,
    Weekly,
}

impl Frequency {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Daily => "daily",
            Self::Weekly => "weekly",
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Names the schedule in campaigns and on the command line.
    pub name: String,
    /// 6-field cron, seconds first, in `timezone`.
    pub cron: String,
    /// An IANA time zone name such as `Europe/London`.
    #[serde(default = "utc")]
    pub timezone: String,
    /// Readers whose chosen frequency matches get this digest.
    pub frequency: Frequency,
    /// The subject line, a minijinja template (`{{ date }}`, `{{ count }}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    /// Overrides `digest.max_article_age_h` for this schedule.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_article_age_h: Option<u64>,
}

/// One `[[feeds]]` entry.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The feed's http(s) address.
    pub url: String,
    /// When to poll it: 5-field cron, UTC.
    #[serde(default = "every_quarter_hour")]
    pub poll: String,
    /// Categories given to every article from this feed, beside its own.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Lets the feed live on a private or loopback address (S-04: refused otherwise).
    #[serde(default)]
    pub allow_private: bool,
}

pub(crate) fn every_quarter_hour() -> String {
    "*/15 * * * *".into()
}

fn utc() -> String {
    "UTC".into()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DigestConfig {
    pub schedules: Vec<ScheduleConfig>,
    /// A digest carries every article its schedule has not sent yet, if it
    /// was published at most this many hours ago (never less than the
    /// schedule's period), so an imported archive does not flood it.
    pub max_article_age_h: u64,
    /// Identifies the list in `List-Id` (RFC 2919), e.g. `digest.example.com`.
    pub list_id: String,
    /// Sender of digests; `mail.from` if empty (E-13).
    pub from: String,
    /// An address for `mailto:` unsubscribes in `List-Unsubscribe`, if any.
    pub unsubscribe_mailto: String,
}

impl Default for DigestConfig {
    fn default() -> Self {
        Self {
            schedules: vec![ScheduleConfig {
                name: "daily".into(),
                cron: "0 0 7 * * *".into(),
                timezone: utc(),
                frequency: Frequency::Daily,
                subject: None,
                max_article_age_h: None,
            }],
            max_article_age_h: 72,
            list_id: "digest.localhost".into(),
            from: String::new(),
            unsubscribe_mailto: String::new(),
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

impl Config {
    /// Loads defaults, then `path` (or `config.toml` in the working directory
    /// if present), then environment overrides, and validates the result.
    pub fn load(path: Option<&Path>) -> anyhow::Result<Self> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match path {
            Some(path) if !path.exists() => bail!("config file {} not found", path.display()),
            Some(path) => figment = figment.merge(Toml::file_exact(path)),
            None if Path::new("config.toml").exists() => {
                figment = figment.merge(Toml::file_exact("config.toml"));
            }
            None => {}
        }
        figment = figment.merge(env_overrides());
        let config: Config = figment.extract().map_err(|e| {
            // figment's message names the key and the allowed values.
            anyhow::anyhow!("invalid configuration: {e}")
        })?;
        config.validate()?;
        Ok(config)
    }

    fn validate(&self) -> anyhow::Result<()> {
        let base = &self.server.base_url;
        if !(base.starts_with("http://") || base.starts_with("https://")) || base.ends_with('/') {
            bail!(
                "invalid configuration: server.base_url must start with http:// or https:// \
                 and have no trailing slash (got {base:?})"
            );
        }
        self.mail
            .from
            .parse::<lettre::message::Mailbox>()
            .with_context(|| {
                format!(
                    "invalid configuration: mail.from must be an address like \
                     \"Name <news@example.com>\" (got {:?})",
                    self.mail.from
                )
            })?;
        let url = self.database.url.expose();
        if !(url.starts_with("sqlite:")
            || url.starts_with("postgres://")
            || url.starts_with("postgresql://"))
        {
            bail!("invalid configuration: database.url must start with sqlite:// or postgres://");
        }
        for (key, value) in [
            ("smtp.concurrency", u64::from(self.smtp.concurrency)),
            ("delivery.batch_size", u64::from(self.delivery.batch_size)),
            (
                "database.max_connections",
                u64::from(self.database.max_connections),
            ),
            ("delivery.lease_s", self.delivery.lease_s),
            ("smtp.timeout_s", self.smtp.timeout_s),
            ("digest.max_article_age_h", self.digest.max_article_age_h),
            (
                "accounts.hashing_concurrency",
                u64::from(self.accounts.hashing_concurrency),
            ),
            ("accounts.session_idle_h", self.accounts.session_idle_h),
            ("editors.session_idle_h", self.editors.session_idle_h),
            (
                "editors.session_absolute_h",
                self.editors.session_absolute_h,
            ),
            (
                "editors.password_link_ttl_h",
                self.editors.password_link_ttl_h,
            ),
            (
                "accounts.session_absolute_h",
                self.accounts.session_absolute_h,
            ),
        ] {
            if value == 0 {
                bail!("invalid configuration: {key} must be at least 1");
            }
        }
        // A send may start until smtp.timeout_s before its lease ends, and
        // leases are renewed every third of one (src/delivery/lease.rs): a
        // shorter lease would leave no time to send between renewals.
        if self.delivery.lease_s < self.smtp.timeout_s.saturating_mul(2) {
            bail!(
                "invalid configuration: delivery.lease_s ({}) must be at least twice smtp.timeout_s ({})",
                self.delivery.lease_s,
                self.smtp.timeout_s
            );
        }
        for category in &self.cookies.categories {
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
        for schedule in &self.digest.schedules {
            crate::digest::Schedule::parse(schedule, self.digest.max_article_age_h).map_err(
                |e| {
                    anyhow::anyhow!(
                        "invalid configuration: digest.schedules {:?}: {e}",
                        schedule.name
                    )
                },
            )?;
        }
        for feed in &self.feeds {
            crate::feeds::Feed::parse(feed)
                .map_err(|e| anyhow::anyhow!("invalid configuration: feeds {:?}: {e}", feed.url))?;
        }
        if !self.digest.from.is_empty() {
            self.digest
                .from
                .parse::<lettre::message::Mailbox>()
                .with_context(|| {
                    format!(
                        "invalid configuration: digest.from must be an address (got {:?})",
                        self.digest.from
                    )
                })?;
        }
        let (v4, v6) = (self.server.ipv4_prefix_len, self.server.ipv6_prefix_len);
        if !(8..=32).contains(&v4) || !(16..=128).contains(&v6) {
            bail!(
                "invalid configuration: server.ipv4_prefix_len must be 8 to 32 and \
                 server.ipv6_prefix_len 16 to 128 (got {v4} and {v6})"
            );
        }
        if self.signup.newsletter_consent_text.trim().is_empty() {
            bail!("invalid configuration: signup.newsletter_consent_text must not be empty");
        }
        Ok(())
    }
}

/// `BROADSHEET_SECTION__KEY=value`. Variables without `__` (such as
/// `BROADSHEET_TEST_POSTGRES_URL`) are not configuration and are left alone.
fn env_overrides() -> Env {
    Env::prefixed(ENV_PREFIX)
        .filter(|key| key.as_str().contains("__"))
        .split("__")
}

/// A value that never prints: `Debug` and `Display` show `***` (STYLE 6).
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

#[cfg(test)]
// figment's Jail closures must return its large error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use figment::Jail;

    #[test]
    fn defaults_match_the_shipped_config_file() {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", include_str!("../config.toml"))?;
            let shipped = Config::load(None).map_err(|e| e.to_string())?;
            let defaults = Config::default();
            assert_eq!(
                serde_json::to_value(&shipped).map_err(|e| e.to_string())?,
                serde_json::to_value(&defaults).map_err(|e| e.to_string())?
            );
            Ok(())
        });
    }

    #[test]
    fn an_unknown_key_names_the_key() {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[smtp]\nhots = \"x\"\n")?;
            let error = Config::load(None)
                .expect_err("unknown key must fail")
                .to_string();
            assert!(error.contains("hots"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn a_bad_value_names_the_key_and_the_allowed_values() {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[mail]\ntransport = \"pigeon\"\n")?;
            let error = Config::load(None)
                .expect_err("bad value must fail")
                .to_string();
            assert!(
                error.contains("transport") && error.contains("smtp"),
                "{error}"
            );
            Ok(())
        });
    }

    #[test]
    fn environment_overrides_win_and_unrelated_variables_are_ignored() {
        Jail::expect_with(|jail| {
            jail.set_env("BROADSHEET_SMTP__PORT", "2525");
            jail.set_env("BROADSHEET_TEST_POSTGRES_URL", "postgres://elsewhere");
            let config = Config::load(None).map_err(|e| e.to_string())?;
            assert_eq!(config.smtp.port, 2525);
            Ok(())
        });
    }

    #[test]
    fn secrets_never_print() {
        let mut config = Config::default();
        config.smtp.password = Secret::new("hunter2");
        config.database.url = Secret::new("postgres://u:pw@db/x");
        let printed = format!("{config:?}");
        assert!(
            !printed.contains("hunter2") && !printed.contains("pw@db"),
            "{printed}"
        );
    }
}
