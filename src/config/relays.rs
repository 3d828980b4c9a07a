//! `[[smtp.relays]]`: the mail servers messages leave through, each with
//! its own connections, rate, weight and role. Without any, the `[smtp]`
//! table itself is the one relay, so older configs keep working.

use std::{path::PathBuf, time::Duration};

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::{Secret, SmtpConfig, SmtpTls, duration};

/// When a relay is used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RelayRole {
    /// Takes mail in turn with the other primaries, by weight.
    Primary,
    /// Takes mail when every primary's connections or rate are used up,
    /// and in their place while none is in rotation.
    Overflow,
    /// Takes mail only while no primary or overflow relay is in rotation.
    Fallback,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// How the relay is named in logs, `/metrics`, the console and
    /// `smtp.account_relay`: lower-case letters, digits, `-` and `_`.
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    #[serde(default = "default_tls")]
    pub tls: SmtpTls,
    #[serde(default)]
    pub ca_file: PathBuf,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub password: Secret,
    /// Connections to this relay, and messages sent through it at once.
    #[serde(default = "default_concurrency")]
    pub concurrency: u32,
    /// Messages per second through this relay; 0 means unlimited.
    #[serde(default)]
    pub rate_per_second: u32,
    /// Its share of the mail among relays of its role.
    #[serde(default = "default_weight")]
    pub weight: u32,
    #[serde(default = "default_role")]
    pub role: RelayRole,
}

fn default_port() -> u16 {
    25
}
fn default_tls() -> SmtpTls {
    SmtpTls::None
}
fn default_concurrency() -> u32 {
    4
}
fn default_weight() -> u32 {
    1
}
fn default_role() -> RelayRole {
    RelayRole::Primary
}

/// When a relay is taken out of rotation, and for how long.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BreakerConfig {
    /// Failures in a row (refused or timed-out connections, 4xx replies)
    /// that take a relay out of rotation.
    pub failures: u32,
    /// How long it stays out the first time; each failed probe doubles it…
    #[serde(rename = "open_s", with = "duration::seconds")]
    pub open: Duration,
    /// …up to this.
    #[serde(rename = "max_open_s", with = "duration::seconds")]
    pub max_open: Duration,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        Self {
            failures: 5,
            open: Duration::from_secs(30),
            max_open: Duration::from_secs(600),
        }
    }
}

/// The longest any time out or hold may be: beyond it, the service's
/// millisecond clock would overflow.
pub(super) const WEEK: Duration = Duration::from_secs(7 * 24 * 3600);

impl SmtpConfig {
    /// The relays to send through: those listed, or else the `[smtp]`
    /// table's own server, named `smtp`.
    pub fn relays(&self) -> Vec<RelayConfig> {
        if !self.relays.is_empty() {
            return self.relays.clone();
        }
        vec![RelayConfig {
            name: "smtp".into(),
            host: self.host.clone(),
            port: self.port,
            tls: self.tls,
            ca_file: self.ca_file.clone(),
            username: self.username.clone(),
            password: self.password.clone(),
            concurrency: self.concurrency,
            rate_per_second: self.rate_per_second,
            weight: 1,
            role: RelayRole::Primary,
        }]
    }

    /// Names unique and well formed, counts above zero, the account relay
    /// one of them, and a relay left for digests.
    pub(super) fn check_relays(&self) -> anyhow::Result<()> {
        let relays = self.relays();
        for (i, relay) in relays.iter().enumerate() {
            let name = &relay.name;
            let well_formed = !name.is_empty()
                && name.len() <= 40
                && name.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_'
                });
            if !well_formed {
                bail!(
                    "invalid configuration: smtp.relays names are 1 to 40 lower-case letters, digits, - and _ (got {name:?})"
                );
            }
            if relays[..i].iter().any(|other| other.name == *name) {
                bail!("invalid configuration: smtp.relays has two relays named {name:?}");
            }
            if relay.concurrency == 0 || relay.weight == 0 || relay.host.is_empty() {
                bail!(
                    "invalid configuration: smtp relay {name:?} needs a host, and concurrency and weight of at least 1"
                );
            }
        }
        if self.breaker.failures == 0 || self.breaker.open.is_zero() {
            bail!(
                "invalid configuration: smtp.breaker.failures and smtp.breaker.open_s must be at least 1"
            );
        }
        let account = self.account_relay.as_str();
        if account.is_empty() {
            return Ok(());
        }
        if !relays.iter().any(|relay| relay.name == account) {
            bail!(
                "invalid configuration: smtp.account_relay {account:?} is not one of smtp.relays"
            );
        }
        if relays.len() < 2 {
            bail!(
                "invalid configuration: smtp.account_relay needs another relay for digests in smtp.relays"
            );
        }
        Ok(())
    }
}

#[cfg(test)]
// figment's Jail closures must return its large error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::config::Config;
    use figment::Jail;

    fn load(file: &str) -> Result<Config, String> {
        let mut loaded = Err(String::new());
        Jail::expect_with(|jail| {
            jail.create_file("config.toml", file)?;
            loaded = Config::load(None).map_err(|e| e.to_string());
            Ok(())
        });
        loaded
    }

    #[test]
    fn the_smtp_table_alone_is_one_primary_relay() {
        let config = load("[smtp]\nhost = \"mx.example\"\nport = 2525\nconcurrency = 3\n").unwrap();
        let relays = config.smtp.relays();
        assert_eq!(relays.len(), 1);
        let relay = &relays[0];
        assert_eq!(
            (
                relay.name.as_str(),
                relay.host.as_str(),
                relay.port,
                relay.concurrency
            ),
            ("smtp", "mx.example", 2525, 3)
        );
        assert_eq!((relay.role, relay.weight), (RelayRole::Primary, 1));
    }

    #[test]
    fn listed_relays_are_read_with_their_defaults() {
        let config = load(
            "[smtp]\naccount_relay = \"signin\"\n\
             [[smtp.relays]]\nname = \"own\"\nhost = \"127.0.0.1\"\nweight = 3\n\
             [[smtp.relays]]\nname = \"signin\"\nhost = \"smtp.example\"\nport = 465\ntls = \"tls\"\nrole = \"fallback\"\nrate_per_second = 5\n",
        )
        .unwrap();
        let relays = config.smtp.relays();
        assert_eq!(relays.len(), 2);
        assert_eq!(
            (relays[0].port, relays[0].weight, relays[0].concurrency),
            (25, 3, 4)
        );
        assert_eq!(relays[0].role, RelayRole::Primary);
        assert_eq!(
            (relays[1].tls, relays[1].role),
            (SmtpTls::Tls, RelayRole::Fallback)
        );
        assert_eq!(relays[1].rate_per_second, 5);
    }

    #[test]
    fn relays_that_cannot_work_are_refused_by_name() {
        let relay = |name: &str| format!("[[smtp.relays]]\nname = \"{name}\"\nhost = \"h\"\n");
        for (file, words) in [
            (
                format!("{}{}", relay("a"), relay("a")),
                "two relays named \"a\"",
            ),
            (relay("Big Relay"), "smtp.relays names"),
            (format!("{}weight = 0\n", relay("a")), "weight"),
            (format!("{}role = \"spare\"\n", relay("a")), "role"),
            (
                format!("[smtp]\naccount_relay = \"b\"\n{}", relay("a")),
                "smtp.account_relay \"b\"",
            ),
            (
                format!("[smtp]\naccount_relay = \"a\"\n{}", relay("a")),
                "another relay for digests",
            ),
            (
                "[smtp.breaker]\nfailures = 0\n".to_owned(),
                "smtp.breaker.failures",
            ),
        ] {
            let error = load(&file).expect_err(&file);
            assert!(error.contains(words), "{file}: {error}");
        }
    }
}
