//! Outgoing webhooks' events, queued for the endpoints that want them
//! (`webhook_messages`, one row per event and endpoint; the endpoints are
//! in `webhook_endpoints.rs`),
//! written in the transaction of the change they tell of and sent through
//! the lease queue ([`super::queue`]; [`claim`] is this table's claim).

use anyhow::Context;
use sqlx::{FromRow, Row};

use super::{Backend, Conn, Store};
use crate::domain::{EventType, WebhookEvent};

/// Queues `event` for every enabled endpoint that wants its type, in the
/// caller's transaction; returns for how many. Without such an endpoint
/// this is one small read.
pub async fn queue(conn: &mut Conn, event: &WebhookEvent, now: i64) -> anyhow::Result<u64> {
    let kind = event.kind.as_str();
    let endpoints = endpoints_wanting(conn, event.kind).await?;
    if endpoints.is_empty() {
        return Ok(0);
    }
    let mut data = event.data.clone();
    if let Some(id) = event.subscriber_id() {
        let email: Option<String> =
            sqlx::query_scalar("SELECT email FROM subscribers WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await
                .context("while reading an event's reader")?;
        // A reader erased meanwhile (or in this very transaction) has none.
        if let Some(email) = email {
            data.entry("email")
                .or_insert(serde_json::Value::from(email));
        }
    }
    let event_id = super::new_id();
    let payload = serde_json::json!({
        "type": kind,
        "timestamp": rfc3339(now),
        "data": data,
    })
    .to_string();
    for endpoint in &endpoints {
        sqlx::query(
            "INSERT INTO webhook_messages (endpoint_id, event_id, event_type, ordering_key, subscriber_id,
                                           payload, status, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7)",
        )
        .bind(endpoint)
        .bind(&event_id)
        .bind(kind)
        .bind(event.ordering_key())
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
    if !wanted(conn, EventType::CampaignFinished).await? {
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
    queue(conn, &finished, now).await?;
    Ok(())
}

/// Whether any enabled endpoint wants events of `kind`.
pub async fn wanted(conn: &mut Conn, kind: EventType) -> anyhow::Result<bool> {
    Ok(!endpoints_wanting(conn, kind).await?.is_empty())
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

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// One event claimed for sending, with where it goes.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedMessage {
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
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
             WHERE m.status = 'pending' AND m.next_attempt_at <= $3
               AND (m.lease_until IS NULL OR m.lease_until < $3)
               AND NOT EXISTS (SELECT 1 FROM webhook_messages p
                               WHERE p.endpoint_id = m.endpoint_id AND p.ordering_key = m.ordering_key
                                 AND p.status = 'pending' AND p.event_id < m.event_id)
             ORDER BY m.next_attempt_at LIMIT $4 {lock})
         RETURNING endpoint_id, event_id, event_type, payload, attempts, created_at"
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

/// Which readers' events [`scrub`] empties.
#[derive(Debug, Clone, Copy)]
pub enum Whose<'a> {
    /// One reader's, as they are erased.
    Reader(&'a str),
    /// Those of readers no longer there (unconfirmed signups purged).
    Gone,
}

/// Takes a reader's address, and every other field, out of the events
/// about them that are kept (G-13): what is left names the reader's former
/// id and the event's type only.
pub async fn scrub(conn: &mut Conn, whose: Whose<'_>, now: i64) -> anyhow::Result<u64> {
    let which = match whose {
        Whose::Reader(_) => "subscriber_id = $2",
        Whose::Gone => {
            "subscriber_id IS NOT NULL AND payload NOT LIKE '%\"erased\":true}}'
             AND NOT EXISTS (SELECT 1 FROM subscribers s WHERE s.id = webhook_messages.subscriber_id)"
        }
    };
    // The types are this crate's own names and the ids UUIDs: nothing to
    // escape in the JSON written around them.
    let sql = format!(
        "UPDATE webhook_messages
         SET payload = '{{\"type\":\"' || event_type || '\",\"timestamp\":\"' || $1
                       || '\",\"data\":{{\"subscriber_id\":\"' || subscriber_id || '\",\"erased\":true}}}}'
         WHERE {which}"
    );
    let query = sqlx::query(&sql).bind(rfc3339(now));
    let query = match whose {
        Whose::Reader(id) => query.bind(id),
        Whose::Gone => query,
    };
    let result = query
        .execute(&mut *conn)
        .await
        .context("while scrubbing readers' webhook events")?;
    Ok(result.rows_affected())
}

/// Forgets events sent or given up before `before`.
pub async fn purge_finished(conn: &mut Conn, before: i64) -> anyhow::Result<u64> {
    let result =
        sqlx::query("DELETE FROM webhook_messages WHERE status <> 'pending' AND created_at < $1")
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
