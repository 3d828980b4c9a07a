//! Typed configuration: defaults in code → `config.toml` → `BROADSHEET_<SECTION>__<KEY>`.
//!
//! Unknown keys and bad values stop start-up with a message naming the key and
//! what is allowed (serde's `deny_unknown_fields` and enums do the naming).
//! Every value is parsed once, here, as it is read: the senders into
//! mailboxes, the digest schedules and the feeds into the `domain` types
//! that the rest of the service uses as they are, durations into
//! `Duration`s (`duration.rs`). `config` imports nothing from the crate but
//! `domain`.

mod accounts;
mod bounces;
mod digest;
mod duration;
mod mail;
mod outgoing_webhooks;
mod relays;
mod server;
mod throttle;
mod validate;

use std::{fmt, path::Path};

use anyhow::bail;
use figment::{
    Figment,
    providers::{Env, Format, Serialized, Toml},
};
use serde::{Deserialize, Serialize};

use crate::domain::Feed;

pub use accounts::{
    AccountsConfig, CookiesConfig, EditorsConfig, IpMode, PrivacyConfig, SignupConfig,
};
pub use bounces::{BouncesConfig, ImapConfig, ImapTls, WebhooksConfig};
pub use digest::DigestConfig;
pub use mail::{
    DeliveryConfig, DkimAlgorithm, DkimConfig, MailConfig, MailTransport, SmtpConfig, SmtpTls,
};
pub use outgoing_webhooks::OutgoingWebhooksConfig;
pub use relays::{BreakerConfig, RelayConfig, RelayRole};
pub use server::{DatabaseConfig, LogConfig, LogFormat, ServerConfig, SiteConfig};
pub use throttle::{DomainLimit, WarmupConfig};

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
    /// RSS and Atom feeds whose entries become articles, parsed.
    #[serde(
        deserialize_with = "digest::read_feeds",
        serialize_with = "digest::write_feeds"
    )]
    pub feeds: Vec<Feed>,
    pub dkim: DkimConfig,
    pub bounces: BouncesConfig,
    pub webhooks: WebhooksConfig,
    pub outgoing_webhooks: OutgoingWebhooksConfig,
    pub log: LogConfig,
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
            jail.create_file("config.toml", include_str!("../../config.toml"))?;
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
    fn bounce_settings_that_cannot_work_are_refused_by_name() {
        for (file, key) in [
            ("[bounces]\nsoft_limit = 0\n", "bounces.soft_limit"),
            (
                "[bounces.imap]\npoll_interval_s = 0\n",
                "bounces.imap.poll_interval_s",
            ),
            (
                "[bounces.imap]\nhost = \"imap.example\"\ndone_folder = \"INBOX\"\n",
                "bounces.imap.done_folder",
            ),
            (
                "[bounces]\nreturn_path = \"a+b@news.example\"\n",
                "bounces.return_path",
            ),
            (
                "[bounces]\nreturn_path = \"fifteen-letters@news.example\"\n",
                "bounces.return_path",
            ),
        ] {
            Jail::expect_with(|jail| {
                jail.create_file("config.toml", file)?;
                let error = Config::load(None).expect_err(file).to_string();
                assert!(error.contains(key), "{file}: {error}");
                Ok(())
            });
        }
    }

    #[test]
    fn bad_senders_schedules_and_feeds_name_the_key_and_the_value() {
        for (file, key, value) in [
            ("[mail]\nfrom = \"nobody\"\n", "mail.from", "nobody"),
            ("[digest]\nfrom = \"nobody\"\n", "digest.from", "nobody"),
            (
                "[[digest.schedules]]\nname = \"daily\"\ncron = \"0 7 * * *\"\nfrequency = \"daily\"\n",
                "digest.schedules",
                "0 7 * * *",
            ),
            (
                "[[feeds]]\nurl = \"http://10.0.0.1/feed\"\n",
                "feeds",
                "http://10.0.0.1/feed",
            ),
        ] {
            Jail::expect_with(|jail| {
                jail.create_file("config.toml", file)?;
                let error = Config::load(None)
                    .expect_err("a bad value must fail")
                    .to_string();
                assert!(error.contains(key) && error.contains(value), "{error}");
                Ok(())
            });
        }
    }

    #[test]
    fn a_schedule_without_an_age_limit_of_its_own_takes_the_sections() {
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", "[digest]\nmax_article_age_h = 240\n")?;
            let config = Config::load(None).map_err(|e| e.to_string())?;
            let now = chrono::Utc::now();
            assert_eq!(
                config.digest.schedules[0].oldest_article(now),
                now - chrono::Duration::hours(240)
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
