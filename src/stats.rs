//! What the dashboard and `/api/v1/stats` report: readers by state, and
//! signups and unsubscribes per day.

pub use crate::store::stats::ReaderCounts;
use crate::{
    clock::Clock,
    store::{self, Store},
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
                        "{}: {} signups, {} unsubscribes",
                        day.date, day.signups, day.unsubscribes
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

#[cfg(test)]
mod tests {
    use super::*;

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
