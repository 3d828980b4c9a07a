//! The endpoints admins registered for outgoing webhooks: added, listed,
//! turned off and on, removed; where their events go, and their run of
//! failures (an endpoint failing for a day is turned off). Their events are
//! in `webhooks.rs`.

use anyhow::Context;
use sqlx::FromRow;

use super::{Conn, Store};
use crate::domain::EventType;

/// An endpoint as admins see it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EndpointRow {
    pub id: String,
    pub url: String,
    /// The event types it wants, between commas (see the migration).
    pub events: String,
    pub description: String,
    pub enabled: i64,
    pub failing_since: Option<i64>,
    /// `failures` when turned off after a day of them, `admin` by hand.
    pub disabled_by: Option<String>,
    pub last_error: Option<String>,
    pub disabled_at: Option<i64>,
    pub disabled_reason: Option<String>,
    pub created_at: i64,
    /// Events waiting for it.
    pub pending: i64,
}

impl EndpointRow {
    pub fn event_types(&self) -> Vec<String> {
        self.events
            .split(',')
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect()
    }
}

const ENDPOINT_COLUMNS: &str = "e.id, e.url, e.events, e.description, e.enabled, e.failing_since, \
     e.disabled_by, e.last_error, e.disabled_at, e.disabled_reason, e.created_at, \
     (SELECT COUNT(*) FROM webhook_messages m WHERE m.endpoint_id = e.id AND m.status = 'pending') AS pending";

/// A new endpoint; `secret` is the `whsec_…` text it is signed with.
pub struct NewEndpoint<'a> {
    pub id: &'a str,
    pub url: &'a str,
    pub secret: &'a str,
    pub events: &'a [EventType],
    pub description: &'a str,
}

pub async fn create(conn: &mut Conn, endpoint: &NewEndpoint<'_>, now: i64) -> anyhow::Result<()> {
    let events: String = endpoint
        .events
        .iter()
        .map(|t| format!("{},", t.as_str()))
        .collect();
    sqlx::query(
        "INSERT INTO webhook_endpoints (id, url, secret, events, description, enabled, enabled_at, created_at)
         VALUES ($1, $2, $3, $4, $5, 1, $6, $6)",
    )
    .bind(endpoint.id)
    .bind(endpoint.url)
    .bind(endpoint.secret)
    .bind(format!(",{events}"))
    .bind(endpoint.description)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while adding a webhook endpoint")?;
    Ok(())
}

pub async fn list(store: &Store) -> anyhow::Result<Vec<EndpointRow>> {
    let sql =
        format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e ORDER BY e.created_at, e.id");
    sqlx::query_as(&sql)
        .fetch_all(store.pool())
        .await
        .context("while listing webhook endpoints")
}

/// Endpoints turned off after a day of failures, for the dashboard.
pub async fn turned_off_by_failures(store: &Store) -> anyhow::Result<Vec<EndpointRow>> {
    let sql = format!(
        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e
         WHERE e.enabled = 0 AND e.disabled_by = 'failures' ORDER BY e.disabled_at"
    );
    sqlx::query_as(&sql)
        .fetch_all(store.pool())
        .await
        .context("while listing failing webhook endpoints")
}

pub async fn find(store: &Store, id: &str) -> anyhow::Result<Option<EndpointRow>> {
    let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e WHERE e.id = $1");
    sqlx::query_as(&sql)
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .context("while reading a webhook endpoint")
}

/// Turns an endpoint on (its waiting events due at once, their back-off
/// and its failures forgotten) or off, `by` whom and why; false if there is
/// no such endpoint or it was so already.
pub async fn set_enabled(
    conn: &mut Conn,
    id: &str,
    enabled: bool,
    (by, reason): (&str, &str),
    now: i64,
) -> anyhow::Result<bool> {
    let query = if enabled {
        sqlx::query(
            "UPDATE webhook_endpoints SET enabled = 1, enabled_at = $2, failing_since = NULL,
                    retry_at = NULL, disabled_by = NULL, disabled_at = NULL, disabled_reason = NULL
             WHERE id = $1 AND enabled = 0",
        )
        .bind(id)
        .bind(now)
    } else {
        sqlx::query(
            "UPDATE webhook_endpoints SET enabled = 0, disabled_by = $3, disabled_at = $2,
                    disabled_reason = $4
             WHERE id = $1 AND enabled = 1",
        )
        .bind(id)
        .bind(now)
        .bind(by)
        .bind(reason)
    };
    let changed = query
        .execute(&mut *conn)
        .await
        .context("while turning a webhook endpoint on or off")?
        .rows_affected();
    if enabled && changed == 1 {
        sqlx::query(
            "UPDATE webhook_messages SET next_attempt_at = $2, attempts = 0
             WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("while making an endpoint's events due")?;
    }
    Ok(changed == 1)
}

/// Removes an endpoint and its events; false if there was none.
pub async fn delete(conn: &mut Conn, id: &str) -> anyhow::Result<bool> {
    sqlx::query("DELETE FROM webhook_messages WHERE endpoint_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while removing an endpoint's events")?;
    let result = sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while removing a webhook endpoint")?;
    Ok(result.rows_affected() == 1)
}

/// Where an endpoint's events go and how they are signed.
#[derive(Debug, Clone, FromRow)]
pub struct Target {
    pub id: String,
    pub url: String,
    pub secret: String,
    /// Retries give up counting from the later of this and the event.
    pub enabled_at: i64,
    /// Since when it has been failing, as of the claim: only then is a
    /// success written back ([`succeeded`]).
    pub failing_since: Option<i64>,
}

pub async fn target(store: &Store, id: &str) -> anyhow::Result<Option<Target>> {
    sqlx::query_as(
        "SELECT id, url, secret, enabled_at, failing_since FROM webhook_endpoints WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .context("while reading a webhook endpoint's address")
}

/// An endpoint answered: its failures are forgotten.
pub async fn succeeded(store: &Store, id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = NULL, last_error = NULL, retry_at = NULL
         WHERE id = $1 AND failing_since IS NOT NULL",
    )
    .bind(id)
    .execute(store.pool())
    .await
    .context("while noting a webhook endpoint's answer")?;
    Ok(())
}

/// An endpoint failed with `error`; with `retry_at`, the failure was the
/// endpoint's own and none of its events is tried before then. If it has
/// failed since `disable_before` or earlier, it is turned off. Returns
/// whether this turned it off.
pub async fn failed(
    store: &Store,
    id: &str,
    (error, retry_at): (&str, Option<i64>),
    now: i64,
    disable_before: i64,
) -> anyhow::Result<bool> {
    let mut tx = store.begin().await?;
    sqlx::query(
        "UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $2), last_error = $3,
                retry_at = COALESCE($4, retry_at)
         WHERE id = $1",
    )
    .bind(id)
    .bind(now)
    .bind(error)
    .bind(retry_at)
    .execute(&mut *tx)
    .await
    .context("while noting a webhook endpoint's failure")?;
    let disabled = sqlx::query(
        "UPDATE webhook_endpoints SET enabled = 0, disabled_by = 'failures', disabled_at = $2,
                disabled_reason = $3
         WHERE id = $1 AND enabled = 1 AND failing_since <= $4",
    )
    .bind(id)
    .bind(now)
    .bind(format!("every request failed for a day; the last: {error}"))
    .bind(disable_before)
    .execute(&mut *tx)
    .await
    .context("while turning off a failing webhook endpoint")?
    .rows_affected();
    tx.commit().await?;
    Ok(disabled == 1)
}
