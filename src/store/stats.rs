//! Counts for the dashboard and `/api/v1/stats`.

use anyhow::Context;
use sqlx::{AnyPool, FromRow};

/// Readers by state. A reader may be in several (e.g. confirmed and paused).
#[derive(Debug, Clone, Default, FromRow, serde::Serialize)]
pub struct ReaderCounts {
    pub pending: i64,
    pub confirmed: i64,
    /// Confirmed, newsletter consent in force, not paused, not suppressed.
    pub digest_on: i64,
    pub paused: i64,
    /// Newsletter consent withdrawn.
    pub unsubscribed: i64,
    /// On the suppression list (bounces, complaints, editors).
    pub suppressed: i64,
}

pub async fn reader_counts(pool: &AnyPool) -> anyhow::Result<ReaderCounts> {
    sqlx::query_as(
        "SELECT
           COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
           COALESCE(SUM(CASE WHEN status = 'confirmed' THEN 1 ELSE 0 END), 0) AS confirmed,
           COALESCE(SUM(CASE WHEN status = 'confirmed' AND latest = 'confirmed' AND paused = 0
                              AND suppressed_at IS NULL THEN 1 ELSE 0 END), 0) AS digest_on,
           COALESCE(SUM(CASE WHEN latest = 'confirmed' AND paused = 1 THEN 1 ELSE 0 END), 0) AS paused,
           COALESCE(SUM(CASE WHEN latest = 'withdrawn' THEN 1 ELSE 0 END), 0) AS unsubscribed,
           COALESCE(SUM(CASE WHEN suppressed_at IS NOT NULL THEN 1 ELSE 0 END), 0) AS suppressed
         FROM (SELECT s.status, COALESCE(p.paused, 0) AS paused,
                 (SELECT x.created_at FROM suppressions x WHERE x.subscriber_id = s.id)
                   AS suppressed_at,
                 (SELECT e.action FROM consent_events e
                  WHERE e.subject_kind = 'subscriber' AND e.subject = s.id AND e.purpose = 'newsletter'
                  ORDER BY e.created_at DESC, e.id DESC LIMIT 1) AS latest
               FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id) r",
    )
    .fetch_one(pool)
    .await
    .context("while counting readers")
}

/// Newsletter consents granted and withdrawn per UTC day since `since`;
/// erased readers' pseudonymised events still count.
#[derive(Debug, Clone, FromRow)]
pub struct DayCount {
    /// Days since 1970-01-01.
    pub day: i64,
    pub action: String,
    pub count: i64,
}

pub async fn consents_per_day(pool: &AnyPool, since: i64) -> anyhow::Result<Vec<DayCount>> {
    sqlx::query_as(
        "SELECT created_at / 86400000 AS day, action, COUNT(*) AS count FROM consent_events
         WHERE purpose = 'newsletter' AND action IN ('granted', 'withdrawn') AND created_at >= $1
         GROUP BY created_at / 86400000, action",
    )
    .bind(since)
    .fetch_all(pool)
    .await
    .context("while counting consents per day")
}

/// Messages waiting to be sent.
#[derive(Debug, Clone, Copy, Default, FromRow)]
pub struct QueueDepth {
    /// Account and signup emails in the outbox.
    pub outbox: i64,
    /// Digest deliveries of campaigns.
    pub deliveries: i64,
}

pub async fn queue_depth(pool: &AnyPool) -> anyhow::Result<QueueDepth> {
    sqlx::query_as(
        "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending') AS outbox,
                (SELECT COUNT(*) FROM deliveries WHERE status = 'pending') AS deliveries",
    )
    .fetch_one(pool)
    .await
    .context("while measuring the queues")
}
