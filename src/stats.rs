//! What the dashboard and `/api/v1/stats` report: readers by state,
//! signups and unsubscribes per day, and bounce and complaint rates against
//! the limits mailbox providers enforce.

pub use crate::store::stats::ReaderCounts;
use crate::{
    clock::Clock,
    store::{self, Store, feedback::Counts},
};

const DAY_MS: i64 = 86_400_000;

/// Signups and unsubscribes on one UTC day.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub signups: i64,
    pub unsubscribes: i64,
}

/// Readers by state, and signups and unsubscribes per day.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Figures {
    pub readers: ReaderCounts,
    /// Oldest first, one entry per day, today last.
    pub days: Vec<Day>,
}

/// The figures, for the dashboard and the API.
#[derive(Clone)]
pub struct Stats {
    store: Store,
    clock: Clock,
}

impl Stats {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Readers by state and the last `days` days of signups and unsubscribes.
    pub async fn collect(&self, days: i64) -> anyhow::Result<Figures> {
        collect(&self.store, &self.clock, days).await
    }

    /// Bounces and complaints of the last `days` days, against the
    /// messages (digests and account emails) sent in them.
    pub async fn deliverability(&self, days: i64) -> anyhow::Result<Deliverability> {
        let since = self.clock.now_ms() - days * DAY_MS;
        let mut conn = self.store.pool().acquire().await?;
        let (counts, sent) = store::feedback::counts_since(&mut conn, since).await?;
        Ok(Deliverability::of(counts, sent))
    }

    /// A campaign's bounces and complaints, against the `sent` digests it
    /// sent.
    pub async fn campaign_deliverability(
        &self,
        campaign_id: &str,
        sent: i64,
    ) -> anyhow::Result<Deliverability> {
        let mut conn = self.store.pool().acquire().await?;
        let counts = store::feedback::campaign_counts(&mut conn, campaign_id).await?;
        Ok(Deliverability::of(counts, sent))
    }
}

/// The complaint rate, in percent, that mailbox providers enforce: Gmail
/// and Yahoo require bulk senders to stay below 0.3 % of spam reports
/// (their sender requirements, in force since February 2024).
pub const COMPLAINT_LIMIT: f64 = 0.3;
/// The complaint rate, in percent, Gmail asks senders to stay below.
pub const COMPLAINT_TARGET: f64 = 0.1;
/// The hard-bounce rate, in percent, that providers' guidelines commonly
/// set: past it a list looks bought or neglected, and mail is filtered.
pub const BOUNCE_LIMIT: f64 = 2.0;

/// Bounces and complaints against the messages sent, with rates in
/// percent (two decimals; `None` when nothing was sent) and whether they
/// reach the providers' limits.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Deliverability {
    pub sent: i64,
    pub hard_bounces: i64,
    pub soft_bounces: i64,
    pub complaints: i64,
    /// Hard bounces per hundred messages sent.
    pub bounce_rate: Option<f64>,
    /// Complaints per hundred messages sent.
    pub complaint_rate: Option<f64>,
    /// At or over [`BOUNCE_LIMIT`].
    pub bounce_over: bool,
    /// At or over [`COMPLAINT_LIMIT`].
    pub complaint_over: bool,
    pub bounce_limit: f64,
    pub complaint_limit: f64,
    pub complaint_target: f64,
}

impl Deliverability {
    /// The figures for `counts` reported of `sent` messages.
    pub fn of(counts: Counts, sent: i64) -> Self {
        let bounce_rate = percent(counts.hard, sent);
        let complaint_rate = percent(counts.complaints, sent);
        Self {
            sent,
            hard_bounces: counts.hard,
            soft_bounces: counts.soft,
            complaints: counts.complaints,
            bounce_over: bounce_rate.is_some_and(|rate| rate >= BOUNCE_LIMIT),
            complaint_over: complaint_rate.is_some_and(|rate| rate >= COMPLAINT_LIMIT),
            bounce_rate: bounce_rate.map(two_decimals),
            complaint_rate: complaint_rate.map(two_decimals),
            bounce_limit: BOUNCE_LIMIT,
            complaint_limit: COMPLAINT_LIMIT,
            complaint_target: COMPLAINT_TARGET,
        }
    }
}

/// `part` per hundred of `whole`; `None` for a whole of nothing.
#[allow(clippy::cast_precision_loss)] // counts far below 2^52
fn percent(part: i64, whole: i64) -> Option<f64> {
    (whole > 0).then(|| part as f64 * 100.0 / whole as f64)
}

fn two_decimals(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// Readers by state and the last `days` days of signups and unsubscribes.
pub async fn collect(store: &Store, clock: &Clock, days: i64) -> anyhow::Result<Figures> {
    let today = clock.now_ms().div_euclid(DAY_MS);
    let first = today - days + 1;
    let counts = store::stats::consents_per_day(store.pool(), first * DAY_MS).await?;
    let series = (first..=today)
        .map(|day| {
            let count = |action: &str| {
                counts
                    .iter()
                    .filter(|c| c.day == day && c.action == action)
                    .map(|c| c.count)
                    .sum()
            };
            Day {
                date: chrono::DateTime::from_timestamp_millis(day * DAY_MS)
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .unwrap_or_default(),
                signups: count("granted"),
                unsubscribes: count("withdrawn"),
            }
        })
        .collect();
    Ok(Figures {
        readers: store::stats::reader_counts(store.pool()).await?,
        days: series,
    })
}

/// A bar chart of a daily series, laid out for an inline SVG: the template
/// draws it, so every label is escaped like any other text.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Chart {
    pub width: u32,
    pub height: u32,
    pub max: i64,
    pub bars: Vec<Bar>,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Bar {
    pub x: u32,
    pub y: u32,
    pub height: u32,
    pub signups_y: u32,
    pub signups_height: u32,
    pub label: String,
}

const BAR_WIDTH: u32 = 6;
const CHART_HEIGHT: u32 = 120;

impl Chart {
    /// Two bars a day: signups and unsubscribes side by side would be too
    /// thin on a phone, so each day is one bar of signups with the
    /// unsubscribes drawn over its foot.
    pub fn of(days: &[Day]) -> Self {
        let max = days
            .iter()
            .map(|d| d.signups.max(d.unsubscribes))
            .max()
            .unwrap_or(0)
            .max(1);
        let scale = |value: i64| {
            u32::try_from(value * i64::from(CHART_HEIGHT) / max).unwrap_or(CHART_HEIGHT)
        };
        let bars = days
            .iter()
            .zip(0u32..)
            .map(|(day, i)| {
                let signups_height = scale(day.signups);
                let height = scale(day.unsubscribes);
                Bar {
                    x: i * (BAR_WIDTH + 1),
                    y: CHART_HEIGHT - height,
                    height,
                    signups_y: CHART_HEIGHT - signups_height,
                    signups_height,
                    label: format!(
                        "{}: {}, {}",
                        day.date,
                        counted(day.signups, "signup"),
                        counted(day.unsubscribes, "unsubscribe")
                    ),
                }
            })
            .collect::<Vec<_>>();
        Self {
            width: u32::try_from(bars.len()).unwrap_or(0) * (BAR_WIDTH + 1),
            height: CHART_HEIGHT,
            max,
            bars,
        }
    }
}

/// `n` and `word`, with an "s" unless `n` is one: "1 signup", "2 signups".
/// (The console's words all take a plain "s".)
pub fn counted(n: i64, word: &str) -> String {
    if n == 1 {
        format!("{n} {word}")
    } else {
        format!("{n} {word}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_take_an_s_unless_one() {
        assert_eq!(counted(1, "signup"), "1 signup");
        assert_eq!(counted(0, "signup"), "0 signups");
        assert_eq!(counted(2, "unsubscribe"), "2 unsubscribes");
    }

    #[test]
    fn rates_are_marked_from_the_providers_limits_on() {
        let counts = |hard, complaints| Counts {
            hard,
            soft: 7,
            complaints,
        };
        let within = Deliverability::of(counts(1, 1), 1000);
        assert_eq!(within.bounce_rate, Some(0.1));
        assert_eq!(within.complaint_rate, Some(0.1));
        assert!(!within.bounce_over && !within.complaint_over);
        let at = Deliverability::of(counts(20, 3), 1000);
        assert!(at.bounce_over && at.complaint_over, "{at:?}");
        let half = Deliverability::of(counts(0, 1), 2);
        assert_eq!(half.complaint_rate, Some(50.0));
        assert_eq!(half.soft_bounces, 7);
        let nothing_sent = Deliverability::of(counts(0, 1), 0);
        assert_eq!(nothing_sent.complaint_rate, None);
        assert!(!nothing_sent.complaint_over);
    }

    #[test]
    fn bars_scale_to_the_largest_day() {
        let day = |signups, unsubscribes| Day {
            date: "2026-11-27".into(),
            signups,
            unsubscribes,
        };
        let chart = Chart::of(&[day(0, 0), day(10, 5), day(5, 0)]);
        assert_eq!(chart.max, 10);
        assert_eq!(chart.bars[1].signups_height, CHART_HEIGHT);
        assert_eq!(chart.bars[1].height, CHART_HEIGHT / 2);
        assert_eq!(chart.bars[2].signups_y, CHART_HEIGHT / 2);
        assert_eq!(chart.bars[0].signups_height, 0);
        assert_eq!(chart.width, 3 * (BAR_WIDTH + 1));
    }
}
