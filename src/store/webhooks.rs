//! Outgoing webhooks' events, queued for the endpoints that want them
//! (`webhook_messages`, one row per event and endpoint; the endpoints are
//! in `webhook_endpoints.rs`), written in the transaction of the change
//! they tell of, numbered in their reader's or campaign's chain
//! (`webhook_chains`), and sent through the lease queue ([`super::queue`];
//! [`claim`] is this table's claim).

use anyhow::Context;
use sqlx::{FromRow, Row};

use super::{Backend, Conn, Store};
use crate::domain::{EventType, WebhookEvent};

/// Queues `event` for every enabled endpoint that wants its type, in the
/// caller's transaction; returns for how many. Without such an endpoint
/// this is one small read.
pub async fn queue(conn: &mut Conn, event: &WebhookEvent, now: i64) -> anyhow::Result<u64> {
    let endpoints = endpoints_wanting(conn, event.kind).await?;
    queue_to(conn, &endpoints, event, now).await
}

/// Queues `event` for `endpoints`, numbered next in its chain.
async fn queue_to(
    conn: &mut Conn,
    endpoints: &[String],
    event: &WebhookEvent,
    now: i64,
) -> anyhow::Result<u64> {
    if endpoints.is_empty() {
        return Ok(0);
    }
    let kind = event.kind.as_str();
    let key = event.ordering_key();
    let seq: i64 = sqlx::query_scalar(
        "INSERT INTO webhook_chains (ordering_key, seq) VALUES ($1, 1)
         ON CONFLICT (ordering_key) DO UPDATE SET seq = webhook_chains.seq + 1
         RETURNING seq",
    )
    .bind(&key)
    .fetch_one(&mut *conn)
    .await
    .context("while numbering a webhook event")?;
    let event_id = super::new_id();
    let payload = serde_json::json!({
        "type": kind,
        "timestamp": crate::clock::rfc3339_text(now),
        "data": event.data,
    })
    .to_string();
    for endpoint in endpoints {
        sqlx::query(
            "INSERT INTO webhook_messages (endpoint_id, event_id, event_type, ordering_key, seq,
                                           subscriber_id, payload, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, 'pending', $8, $8)",
        )
        .bind(endpoint)
        .bind(&event_id)
        .bind(kind)
        .bind(&key)
        .bind(seq)
        .bind(event.subscriber_id())
        .bind(&payload)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("while queueing a webhook event")?;
    }
    Ok(endpoints.len() as u64)
}

/// Queues `campaign.finished` for webhooks, with the campaign's end state
/// and its deliveries counted (only when an endpoint wants it: the count
/// reads every delivery of the campaign).
pub async fn tell_campaign_finished(
    conn: &mut Conn,
    campaign_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    let endpoints = endpoints_wanting(conn, EventType::CampaignFinished).await?;
    if endpoints.is_empty() {
        return Ok(());
    }
    let row = sqlx::query(
        "SELECT c.status, c.schedule,
                COALESCE(SUM(CASE WHEN d.status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                COALESCE(SUM(CASE WHEN d.status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
                COALESCE(SUM(CASE WHEN d.status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled
         FROM campaigns c LEFT JOIN deliveries d ON d.campaign_id = c.id
         WHERE c.id = $1 GROUP BY c.status, c.schedule",
    )
    .bind(campaign_id)
    .fetch_one(&mut *conn)
    .await
    .context("while reading a finished campaign")?;
    let data = serde_json::json!({
        "status": row.try_get::<String, _>("status")?,
        "schedule": row.try_get::<String, _>("schedule")?,
        "sent": row.try_get::<i64, _>("sent")?,
        "failed": row.try_get::<i64, _>("failed")?,
        "cancelled": row.try_get::<i64, _>("cancelled")?,
    });
    let finished = WebhookEvent::campaign(EventType::CampaignFinished, campaign_id, data);
    queue_to(conn, &endpoints, &finished, now).await?;
    Ok(())
}

async fn endpoints_wanting(conn: &mut Conn, kind: EventType) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar(
        "SELECT id FROM webhook_endpoints WHERE enabled = 1 AND events LIKE $1 ORDER BY id",
    )
    .bind(format!("%,{},%", kind.as_str()))
    .fetch_all(&mut *conn)
    .await
    .context("while finding the endpoints of an event")
}

/// One event claimed for sending.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedMessage {
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub subscriber_id: Option<String>,
    pub payload: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// Leases up to `limit` due events to `owner`, each the oldest pending
/// event of its endpoint and ordering key (so a reader's events go out in
/// order, each after the one before it is sent or given up), of enabled
/// endpoints only.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<ClaimedMessage>> {
    let lock = match store.backend() {
        Backend::Postgres => "FOR UPDATE OF m SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let sql = format!(
        "UPDATE webhook_messages SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
         WHERE (endpoint_id, event_id) IN (
             SELECT m.endpoint_id, m.event_id FROM webhook_messages m
             JOIN webhook_endpoints e ON e.id = m.endpoint_id AND e.enabled = 1
                  AND (e.retry_at IS NULL OR e.retry_at <= $3)
             WHERE m.status = 'pending' AND m.next_attempt_at <= $3
               AND (m.lease_until IS NULL OR m.lease_until < $3)
               AND NOT EXISTS (SELECT 1 FROM webhook_messages p
                               WHERE p.endpoint_id = m.endpoint_id AND p.ordering_key = m.ordering_key
                                 AND p.status = 'pending' AND p.seq < m.seq)
             ORDER BY m.next_attempt_at LIMIT $4 {lock})
         RETURNING endpoint_id, event_id, event_type, subscriber_id, payload, attempts, created_at"
    );
    sqlx::query_as(&sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(store.pool())
        .await
        .context("while claiming webhook events")
}

/// A reader's address while they exist: what their events carry as
/// `email`, read just before each is sent, so an erased reader's address
/// never leaves in one.
pub async fn address(store: &Store, subscriber_id: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
        .bind(subscriber_id)
        .fetch_optional(store.pool())
        .await
        .context("while reading the address of an event's reader")
}

/// Forgets events sent or given up before `before`, and any left by an
/// endpoint removed while they were queued.
pub async fn purge_finished(conn: &mut Conn, before: i64) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "DELETE FROM webhook_messages
         WHERE (status <> 'pending' AND COALESCE(sent_at, next_attempt_at) < $1)
            OR NOT EXISTS (SELECT 1 FROM webhook_endpoints e WHERE e.id = webhook_messages.endpoint_id)",
    )
    .bind(before)
    .execute(&mut *conn)
    .await
    .context("while purging old webhook events")?;
    Ok(result.rows_affected())
}

/// An event as the console and the API show it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct MessageRow {
    pub event_id: String,
    pub event_type: String,
    pub status: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

/// An endpoint's latest events, newest first.
pub async fn recent_messages(
    store: &Store,
    endpoint_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<MessageRow>> {
    sqlx::query_as(
        "SELECT event_id, event_type, status, attempts, next_attempt_at, last_error, created_at, sent_at
         FROM webhook_messages WHERE endpoint_id = $1 ORDER BY event_id DESC LIMIT $2",
    )
    .bind(endpoint_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("while reading an endpoint's events")
}
