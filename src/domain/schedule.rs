//! Digest schedules: when one fires, and which period a firing stands for.
//! Cron times are matched in the schedule's own time zone, so 07:00 stays
//! 07:00 across daylight-saving changes. Each schedule is parsed once, when
//! the configuration is loaded (`config::DigestConfig`).

use std::time::Duration as StdDuration;

use chrono::{DateTime, Datelike, Duration, Timelike, Utc};
use chrono_tz::Tz;
use croner::{Cron, parser::CronParser, parser::Seconds};
use serde::{Deserialize, Serialize};

/// How often a reader wants a digest, and how often a schedule sends one.
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

/// One `[[digest.schedules]]` entry as written, before [`Schedule::parse`]
/// checks it.
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

fn utc() -> String {
    "UTC".into()
}

/// A digest schedule, checked: its name, cron, time zone and age limit.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    pub frequency: Frequency,
    pub subject: Option<String>,
    cron: Cron,
    /// The cron as written: croner keeps its own, rewritten, form.
    cron_text: String,
    timezone: Tz,
    /// The schedule's own `max_article_age_h`, if it sets one.
    own_max_age_h: Option<u64>,
    max_article_age: Duration,
}

impl Schedule {
    /// `default_max_age` is `digest.max_article_age_h`, which the
    /// schedule's own `max_article_age_h` overrides.
    pub fn parse(config: &ScheduleConfig, default_max_age: StdDuration) -> Result<Self, String> {
        let valid_name = !config.name.is_empty()
            && config
                .name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
        if !valid_name {
            return Err("name must be lower-case letters, digits, - and _".into());
        }
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .dom_and_dow(true)
            .build()
            .parse(&config.cron)
            .map_err(|e| {
                format!(
                    "cron {:?} is not a 6-field expression (seconds first): {e}",
                    config.cron
                )
            })?;
        let timezone = config.timezone.parse::<Tz>().map_err(|_| {
            format!(
                "timezone {:?} is not an IANA time zone name such as Europe/London",
                config.timezone
            )
        })?;
        let hour = StdDuration::from_secs(3600);
        let own_age = config
            .max_article_age_h
            .map(|h| hour.saturating_mul(u32::try_from(h).unwrap_or(u32::MAX)));
        let max_age = Some(own_age.unwrap_or(default_max_age))
            .filter(|age| (hour..=hour * (24 * 366 * 100)).contains(age))
            .and_then(|age| Duration::from_std(age).ok())
            .ok_or("max_article_age_h must be between 1 and 876,600 (a century)")?;
        let mut schedule = Self {
            name: config.name.clone(),
            frequency: config.frequency,
            subject: config.subject.clone(),
            cron,
            cron_text: config.cron.clone(),
            timezone,
            own_max_age_h: config.max_article_age_h,
            max_article_age: max_age,
        };
        schedule.max_article_age = schedule.max_article_age.max(schedule.period());
        Ok(schedule)
    }

    /// The entry as written, so the configuration can be written back out
    /// (its defaults are layered under `config.toml` that way).
    pub fn to_config(&self) -> ScheduleConfig {
        ScheduleConfig {
            name: self.name.clone(),
            cron: self.cron_text.clone(),
            timezone: self.timezone.name().to_owned(),
            frequency: self.frequency,
            subject: self.subject.clone(),
            max_article_age_h: self.own_max_age_h,
        }
    }

    /// The oldest publication time a digest sent at `now` may carry: older
    /// articles that were never sent stay out (an imported archive does not
    /// flood the next digest). Never less than one period, so a weekly
    /// digest reaches back at least a week.
    pub fn oldest_article(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.max_article_age
    }

    /// The latest firing at or before `now`.
    pub fn last_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(now).with_timezone(&self.timezone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
    }

    /// The first firing after `now`.
    pub fn next_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_second(now).with_timezone(&self.timezone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| whole_second(t.with_timezone(&Utc)))
    }

    /// The age limit in words, as config.toml gives it ("72 hours"), or in
    /// days from a week up ("7 days").
    pub fn max_article_age_text(&self) -> String {
        let hours = self.max_article_age.num_hours();
        if hours % 24 == 0 && hours >= 24 * 7 {
            format!("{} days", hours / 24)
        } else {
            format!("{hours} hours")
        }
    }

    /// The time between two firings, as the frequency promises it.
    pub fn period(&self) -> Duration {
        match self.frequency {
            Frequency::Daily => Duration::days(1),
            Frequency::Weekly => Duration::weeks(1),
        }
    }

    /// The campaign key of a firing: `daily:2026-11-27` (the local date) or
    /// `weekly:2026-W48` (the ISO week), so every instance derives the same one.
    pub fn period_key(&self, fire: DateTime<Utc>) -> String {
        let local = fire.with_timezone(&self.timezone);
        match self.frequency {
            Frequency::Daily => format!("{}:{}", self.name, local.format("%Y-%m-%d")),
            Frequency::Weekly => {
                let week = local.iso_week();
                format!("{}:{}-W{:02}", self.name, week.year(), week.week())
            }
        }
    }

    /// The firing's local date, for subjects and headings.
    pub fn local_date(&self, fire: DateTime<Utc>) -> String {
        fire.with_timezone(&self.timezone)
            .format("%-d %B %Y")
            .to_string()
    }
}

/// croner keeps the sub-second part of the time it starts from; firings are
/// whole seconds, so every instance names the same firing the same way.
/// Feeds' polls (`domain::feed`) are timed the same way.
pub(crate) fn whole_second(time: DateTime<Utc>) -> DateTime<Utc> {
    time.with_nanosecond(0).unwrap_or(time)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn schedule(cron: &str, timezone: &str, frequency: Frequency) -> Schedule {
        Schedule::parse(
            &ScheduleConfig {
                name: frequency.as_str().into(),
                cron: cron.into(),
                timezone: timezone.into(),
                frequency,
                subject: None,
                max_article_age_h: None,
            },
            StdDuration::from_secs(72 * 3600),
        )
        .unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    #[test]
    fn seven_o_clock_in_london_follows_daylight_saving() {
        let london = schedule("0 0 7 * * *", "Europe/London", Frequency::Daily);
        // Summer time (UTC+1): 07:00 local is 06:00 UTC.
        assert_eq!(
            london.next_fire(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-25T07:00:00Z"))
        );
        assert_eq!(
            london.last_fire(utc("2026-10-24T12:00:00Z")),
            Some(utc("2026-10-24T06:00:00Z"))
        );
        // The clocks went back on 25 October: 07:00 local is 07:00 UTC again.
        assert_eq!(
            london.next_fire(utc("2026-10-25T12:00:00Z")),
            Some(utc("2026-10-26T07:00:00Z"))
        );
        assert_eq!(
            london.period_key(utc("2026-10-25T07:00:00Z")),
            "daily:2026-10-25"
        );
    }

    #[test]
    fn instances_at_different_instants_name_the_same_firing() {
        let daily = schedule("0 0 7 * * *", "UTC", Frequency::Daily);
        let a = daily.last_fire(utc("2026-11-27T09:00:00.123Z"));
        let b = daily.last_fire(utc("2026-11-27T09:00:05.987Z"));
        assert_eq!(a, b);
        assert_eq!(a, Some(utc("2026-11-27T07:00:00Z")));
    }

    #[test]
    fn a_firing_at_the_instant_counts_as_the_last_one() {
        let daily = schedule("0 0 7 * * *", "UTC", Frequency::Daily);
        assert_eq!(
            daily.last_fire(utc("2026-11-27T07:00:00Z")),
            Some(utc("2026-11-27T07:00:00Z"))
        );
        assert_eq!(
            daily.last_fire(utc("2026-11-27T06:59:59Z")),
            Some(utc("2026-11-26T07:00:00Z"))
        );
    }

    #[test]
    fn weekly_keys_name_the_iso_week_in_local_time() {
        let weekly = schedule("0 0 8 * * MON", "Asia/Tokyo", Frequency::Weekly);
        // Sunday 23:30 UTC is already Monday in Tokyo.
        assert_eq!(
            weekly.period_key(utc("2026-11-29T23:30:00Z")),
            "weekly:2026-W49"
        );
        assert_eq!(weekly.period(), Duration::weeks(1));
    }

    #[test]
    fn the_age_limit_is_the_schedules_own_and_never_shorter_than_its_period() {
        let now = utc("2026-12-06T07:00:00Z");
        let daily = schedule("0 0 7 * * *", "UTC", Frequency::Daily);
        assert_eq!(daily.oldest_article(now), now - Duration::hours(72));
        // 72 hours would drop four days of a weekly digest's articles.
        let weekly = schedule("0 0 8 * * MON", "UTC", Frequency::Weekly);
        assert_eq!(weekly.oldest_article(now), now - Duration::weeks(1));
        let own = ScheduleConfig {
            name: "d".into(),
            cron: "0 0 7 * * *".into(),
            timezone: "UTC".into(),
            frequency: Frequency::Daily,
            subject: None,
            max_article_age_h: Some(240),
        };
        let own = Schedule::parse(&own, StdDuration::from_secs(72 * 3600)).unwrap();
        assert_eq!(own.oldest_article(now), now - Duration::hours(240));
    }

    #[test]
    fn bad_schedules_say_what_is_wrong() {
        let default_age = StdDuration::from_secs(72 * 3600);
        let bad_cron = ScheduleConfig {
            name: "d".into(),
            cron: "0 7 * * *".into(),
            timezone: "UTC".into(),
            frequency: Frequency::Daily,
            subject: None,
            max_article_age_h: None,
        };
        assert!(
            Schedule::parse(&bad_cron, default_age)
                .unwrap_err()
                .contains("6-field")
        );
        let bad_zone = ScheduleConfig {
            cron: "0 0 7 * * *".into(),
            timezone: "Mars/Olympus".into(),
            ..bad_cron
        };
        assert!(
            Schedule::parse(&bad_zone, default_age)
                .unwrap_err()
                .contains("IANA")
        );
        let no_age = ScheduleConfig {
            timezone: "UTC".into(),
            max_article_age_h: Some(0),
            ..bad_zone
        };
        assert!(
            Schedule::parse(&no_age, default_age)
                .unwrap_err()
                .contains("max_article_age_h")
        );
    }
}
