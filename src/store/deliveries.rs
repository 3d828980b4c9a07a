//! Deliveries (`deliveries`): one row per reader of a campaign, queued for
//! the workers and checked again when claimed.

use anyhow::Context;
use sqlx::FromRow;

use super::{Backend, Conn, Store};

/// Who may be sent a digest, over `subscribers s LEFT JOIN preferences p`:
/// confirmed, not suppressed (E-24), not paused, and whose latest newsletter
/// event is `confirmed` (L-02). Checked when recipients are chosen and again
/// when each delivery is claimed (G-10, E-26).
const SENDABLE: &str = "s.status = 'confirmed'
    AND NOT EXISTS (SELECT 1 FROM suppressions x WHERE x.subscriber_id = s.id)
    AND COALESCE(p.paused, 0) = 0
    AND (SELECT e.action FROM consent_events e
         WHERE e.subject_kind = 'subscriber' AND e.subject = s.id AND e.purpose = 'newsletter'
         ORDER BY e.created_at DESC, e.id DESC LIMIT 1) = 'confirmed'";

/// Inserts one delivery per eligible reader in a single statement, never
/// loading readers into memory: confirmed, latest newsletter event
/// `confirmed` (L-02), not suppressed (E-24), not paused, of this frequency,
/// and with at least one article in their topics (none chosen means all).
pub async fn enqueue_recipients(
    conn: &mut Conn,
    campaign_id: &str,
    frequency: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let sql = format!(
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, next_attempt_at)
         SELECT $1, s.id, 'pending', $3
         FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id
         WHERE {SENDABLE} AND COALESCE(p.frequency, 'daily') = $2
           AND (NOT EXISTS (SELECT 1 FROM preference_topics t WHERE t.subscriber_id = s.id)
                OR EXISTS (SELECT 1 FROM preference_topics t
                           JOIN article_categories c ON c.category = t.category
                           JOIN campaign_articles ca ON ca.article_id = c.article_id
                           WHERE t.subscriber_id = s.id AND ca.campaign_id = $1))
         ON CONFLICT (campaign_id, subscriber_id) DO NOTHING"
    );
    let result = sqlx::query(&sql)
        .bind(campaign_id)
        .bind(frequency)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("while enqueueing recipients")?;
    let recipients = result.rows_affected();
    sqlx::query("UPDATE campaigns SET recipients = $1 WHERE id = $2")
        .bind(i64::try_from(recipients).unwrap_or(i64::MAX))
        .bind(campaign_id)
        .execute(&mut *conn)
        .await
        .context("while counting recipients")?;
    Ok(recipients)
}

/// A delivery a worker holds the lease on.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    pub campaign_id: String,
    pub subscriber_id: String,
    pub attempts: i64,
}

/// Leases up to `limit` due deliveries of running campaigns to `owner`.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<ClaimedDelivery>> {
    sqlx::query_as(&claim_statement(store.backend()))
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(store.pool())
        .await
        .context("while claiming deliveries")
}

/// The claim, with its parameters: `$1` owner, `$2` lease end, `$3` now,
/// `$4` limit. It must walk `deliveries_pending` in due order, never scan
/// and sort the whole table: a test pins its plan on both databases.
pub fn claim_statement(backend: Backend) -> String {
    let due = |index: &str| {
        format!(
            "FROM deliveries d {index}
             JOIN campaigns c ON c.id = d.campaign_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $3
               AND (d.lease_until IS NULL OR d.lease_until < $3)
               AND c.status IN ('queued', 'sending')
             ORDER BY d.next_attempt_at LIMIT $4"
        )
    };
    let picked = match backend {
        // The rows locked by the subquery are updated by their physical
        // address (a TID scan): matched by key instead, the planner may
        // hash-join a scan of the whole table with them (the plan test
        // caught it).
        Backend::Postgres => format!(
            "ctid = ANY(ARRAY(SELECT d.ctid {} FOR UPDATE OF d SKIP LOCKED))",
            due("")
        ),
        // SQLite is told which index to walk: its planner may otherwise
        // scan and sort every delivery for each claim.
        Backend::Sqlite => format!(
            "(campaign_id, subscriber_id) IN (SELECT d.campaign_id, d.subscriber_id {})",
            due("INDEXED BY deliveries_pending")
        ),
    };
    format!(
        "UPDATE deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
         WHERE {picked}
         RETURNING campaign_id, subscriber_id, attempts"
    )
}

/// What a worker needs to know about a claimed reader, checked again at
/// claim time (G-10, E-26): may they still be sent to?
#[derive(Debug, Clone, FromRow)]
pub struct Recipient {
    pub id: String,
    pub email_canonical: String,
    pub name: Option<String>,
    pub eligible: i64,
}

pub async fn recipients(store: &Store, ids: &[String]) -> anyhow::Result<Vec<Recipient>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT s.id, s.email_canonical, s.name,
                CASE WHEN {SENDABLE} THEN 1 ELSE 0 END AS eligible
         FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id WHERE s.id IN ({ids})",
        ids = store.json_list(1)
    );
    sqlx::query_as(&sql)
        .bind(serde_json::to_string(ids)?)
        .fetch_all(store.pool())
        .await
        .context("while loading recipients")
}

/// Each reader's topics, for a batch.
pub async fn topics(store: &Store, ids: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT subscriber_id, category FROM preference_topics WHERE subscriber_id IN ({})",
        store.json_list(1)
    );
    sqlx::query_as(&sql)
        .bind(serde_json::to_string(ids)?)
        .fetch_all(store.pool())
        .await
        .context("while loading topics")
}

/// Withdrawal cancels a reader's pending digests at once (G-10).
pub async fn cancel_pending_for(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
         WHERE subscriber_id = $1 AND status = 'pending'",
    )
    .bind(subscriber_id)
    .execute(&mut *conn)
    .await
    .context("while cancelling deliveries")?;
    Ok(result.rows_affected())
}

/// A cancelled campaign's pending deliveries are cancelled with it; those a
/// worker is sending now are left to be recorded as what they become.
pub async fn cancel_pending_of_campaign(
    conn: &mut Conn,
    id: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
         WHERE campaign_id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < $2)",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while cancelling a campaign's deliveries")?;
    Ok(result.rows_affected())
}

/// One digest delivery of a reader's, as editors see it.
#[derive(Debug, Clone, FromRow)]
pub struct ReaderDelivery {
    pub campaign_id: String,
    pub period_key: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn deliveries_of(
    store: &Store,
    subscriber_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<ReaderDelivery>> {
    sqlx::query_as(
        "SELECT d.campaign_id, c.period_key, d.status, d.attempts, d.sent_at, d.last_error
         FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
         WHERE d.subscriber_id = $1 ORDER BY c.created_at DESC LIMIT $2",
    )
    .bind(subscriber_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("while listing a reader's deliveries")
}
