//! `[[delivery.domain_limits]]` and `[delivery.warmup]`: how fast digests
//! may go to one receiving domain, and how many a new sending domain may
//! send a day while mailbox providers learn to trust it.

use std::time::Duration;

use anyhow::bail;
use chrono::NaiveDate;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::{DeliveryConfig, relays::WEEK};

/// A receiving domain's limits, over every relay and instance.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DomainLimit {
    /// The part after `@`, lower case (`gmail.com`).
    pub domain: String,
    /// Digests to it per minute, over every instance; 0: no limit.
    #[serde(default)]
    pub per_minute: u32,
    /// Digests to it in flight at once from one instance; 0: no limit.
    #[serde(default)]
    pub connections: u32,
}

/// A daily ceiling that grows by a schedule, for a new sending domain.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmupConfig {
    /// The schedule's first day (UTC), `YYYY-MM-DD`; none: no warm-up.
    #[serde(
        skip_serializing_if = "Option::is_none",
        deserialize_with = "read_date",
        serialize_with = "write_date"
    )]
    pub start: Option<NaiveDate>,
    /// Digests per UTC day, one entry per day from `start`; after the
    /// last, no ceiling.
    pub daily: Vec<u32>,
}

impl WarmupConfig {
    /// The ceiling of the UTC day `now` (Unix milliseconds) falls in, if
    /// the schedule holds then (a start still ahead counts as its first day).
    pub fn ceiling_at(&self, now: i64) -> Option<u32> {
        let start = self.start?;
        let day = chrono::DateTime::from_timestamp_millis(now)?.date_naive();
        let index = usize::try_from((day - start).num_days().max(0)).ok()?;
        self.daily.get(index).copied()
    }
}

impl Default for WarmupConfig {
    fn default() -> Self {
        Self {
            start: None,
            daily: vec![500, 1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000],
        }
    }
}

fn read_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<NaiveDate>, D::Error> {
    let text = String::deserialize(deserializer)?;
    if text.is_empty() {
        return Ok(None);
    }
    NaiveDate::parse_from_str(&text, "%Y-%m-%d")
        .map(Some)
        .map_err(|e| {
            <D::Error as de::Error>::custom(format!(
                "delivery.warmup.start must be a date like \"2026-12-01\" (got {text:?}): {e}"
            ))
        })
}

fn write_date<S: Serializer>(date: &Option<NaiveDate>, serializer: S) -> Result<S::Ok, S::Error> {
    match date {
        Some(date) => serializer.collect_str(&date.format("%Y-%m-%d")),
        None => serializer.serialize_none(),
    }
}

/// How long a domain's digests wait after it deferred one for its own
/// reasons (a 4.7.x reply, such as Gmail's 421 4.7.28).
pub(super) const DEFAULT_DOMAIN_HOLD: Duration = Duration::from_secs(300);

impl DeliveryConfig {
    pub(super) fn check_throttles(&self) -> anyhow::Result<()> {
        for (i, limit) in self.domain_limits.iter().enumerate() {
            let domain = &limit.domain;
            let well_formed = domain.contains('.')
                && !domain.starts_with('.')
                && domain.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'.' || b == b'-'
                });
            if !well_formed {
                bail!(
                    "invalid configuration: delivery.domain_limits domains are lower-case names like \"gmail.com\" (got {domain:?})"
                );
            }
            if self.domain_limits[..i].iter().any(|l| l.domain == *domain) {
                bail!("invalid configuration: delivery.domain_limits lists {domain:?} twice");
            }
        }
        if self.warmup.start.is_some()
            && (self.warmup.daily.is_empty() || self.warmup.daily.contains(&0))
        {
            bail!(
                "invalid configuration: delivery.warmup.daily needs at least one ceiling, each at least 1"
            );
        }
        if self.domain_hold.is_zero() || self.domain_hold > WEEK {
            bail!("invalid configuration: delivery.domain_hold_s must be 1 to 604800 (a week)");
        }
        Ok(())
    }
}
