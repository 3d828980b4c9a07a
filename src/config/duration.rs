//! Durations in the configuration, as serde adapters:
//! `#[serde(rename = "lease_s", with = "duration::seconds")] pub lease: Duration`.
//! The TOML keys keep their unit suffix, so existing config files and
//! `BROADSHEET_*` variables keep working; the program sees a `Duration`,
//! converted once here, and never the number or its unit again.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer, de, ser};

/// A whole number of units of `unit_ms` milliseconds each.
fn read<'de, D: Deserializer<'de>>(
    deserializer: D,
    unit_ms: u64,
    unit: &str,
) -> Result<Duration, D::Error> {
    let count = u64::deserialize(deserializer)?;
    count
        .checked_mul(unit_ms)
        .map(Duration::from_millis)
        .ok_or_else(|| de::Error::custom(format!("{count} {unit} is too long a duration")))
}

/// The same number back, so a configuration written out (the defaults are
/// layered under `config.toml` that way) reads in unchanged. A `Duration`
/// that is not a whole number of units is refused rather than rounded.
fn write<S: Serializer>(
    duration: &Duration,
    serializer: S,
    unit_ms: u64,
    unit: &str,
) -> Result<S::Ok, S::Error> {
    let unit_ns = u128::from(unit_ms) * 1_000_000;
    let ns = duration.as_nanos();
    match u64::try_from(ns / unit_ns) {
        Ok(count) if ns.is_multiple_of(unit_ns) => serializer.serialize_u64(count),
        _ => Err(ser::Error::custom(format!(
            "{duration:?} is not a whole number of {unit}"
        ))),
    }
}

/// One `with` module per unit: `serialize` and `deserialize` for serde.
macro_rules! unit {
    ($(#[$doc:meta])* $module:ident, $unit_ms:expr, $unit:literal) => {
        $(#[$doc])*
        pub mod $module {
            use std::time::Duration;

            use serde::{Deserializer, Serializer};

            pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
                super::write(d, s, $unit_ms, $unit)
            }

            pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
                super::read(d, $unit_ms, $unit)
            }
        }
    };
}

unit!(
    /// Keys ending `_ms`.
    millis,
    1,
    "milliseconds"
);
unit!(
    /// Keys ending `_s`.
    seconds,
    1000,
    "seconds"
);
unit!(
    /// Keys ending `_min`.
    minutes,
    60 * 1000,
    "minutes"
);
unit!(
    /// Keys ending `_h`.
    hours,
    3600 * 1000,
    "hours"
);
unit!(
    /// Keys ending `_days`.
    days,
    24 * 3600 * 1000,
    "days"
);

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use figment::{
        Figment,
        providers::{Format, Serialized, Toml},
    };

    use crate::config::Config;

    #[test]
    fn keys_keep_their_unit_and_a_config_written_out_reads_back_the_same() {
        let text = "[delivery]\nlease_s = 45\npoll_interval_ms = 250\n\
                    [accounts]\nreset_token_ttl_min = 20\n\
                    [privacy]\nip_retention_days = 30\n\
                    [digest]\nmax_article_age_h = 48\n";
        let config: Config = Figment::from(Toml::string(text)).extract().unwrap();
        assert_eq!(config.delivery.lease, Duration::from_secs(45));
        assert_eq!(config.delivery.poll_interval, Duration::from_millis(250));
        assert_eq!(
            config.accounts.reset_token_ttl,
            Duration::from_secs(20 * 60)
        );
        assert_eq!(
            config.privacy.ip_retention,
            Duration::from_secs(30 * 24 * 3600)
        );
        assert_eq!(
            config.digest.max_article_age,
            Duration::from_secs(48 * 3600)
        );

        let written = serde_json::to_value(&config).unwrap();
        assert_eq!(written["delivery"]["lease_s"], 45);
        assert_eq!(written["delivery"]["poll_interval_ms"], 250);
        let again: Config = Figment::from(Serialized::defaults(config))
            .extract()
            .unwrap();
        assert_eq!(again.delivery.lease, Duration::from_secs(45));
        assert_eq!(again.delivery.poll_interval, Duration::from_millis(250));
        assert_eq!(serde_json::to_value(&again).unwrap(), written);
    }

    #[test]
    fn a_duration_too_long_to_hold_names_the_key() {
        let text = "[privacy]\nip_retention_days = 9223372036854775807\n";
        let error = Figment::from(Toml::string(text))
            .extract::<Config>()
            .unwrap_err()
            .to_string();
        assert!(error.contains("ip_retention_days"), "{error}");
    }

    #[test]
    fn a_duration_that_is_not_whole_units_is_not_written_rounded() {
        let mut config = Config::default();
        config.delivery.lease = Duration::from_millis(1500);
        assert!(serde_json::to_value(&config).is_err());
    }
}
