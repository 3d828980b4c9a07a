//! The durable mail queue: rows written with the change that caused them,
//! claimed by workers under a lease, then marked sent, rescheduled or failed.

use anyhow::Context;
use sqlx::FromRow;

use super::{Backend, Conn, Store};

/// A message about to be queued.
pub struct NewEmail<'a> {
    pub id: &'a str,
    pub template: &'a str,
    pub subscriber_id: Option<&'a str>,
    pub recipient: &'a str,
    pub context: &'a serde_json::Value,
    pub message_id: &'a str,
}

pub async fn enqueue(conn: &mut Conn, email: &NewEmail<'_>, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO outbox (id, template, subscriber_id, recipient, context, status,
                             next_attempt_at, message_id, created_at)
         VALUES ($1, $2, $3, $4, $5, 'pending', $6, $7, $6)",
    )
    .bind(email.id)
    .bind(email.template)
    .bind(email.subscriber_id)
    .bind(email.recipient)
    .bind(email.context.to_string())
    .bind(now)
    .bind(email.message_id)
    .execute(&mut *conn)
    .await
    .context("while queueing an email")?;
    Ok(())
}

/// A limit on one reader's emails of one template: fewer than `max` since
/// `since` (the daily limits of D-08 and D-09).
#[derive(Debug, Clone, Copy)]
pub struct Cap {
    pub since: i64,
    pub max: i64,
}

/// Queues `email` unless its reader already had `cap.max` emails of its
/// template since `cap.since`; returns whether it was queued. The count and
/// the insert are one statement, one round trip fewer per signup. Callers
/// hold the reader's row locked (`subscribers::upsert_pending`,
/// `subscribers::lock`), so two transactions cannot both count the same
/// share on PostgreSQL.
pub async fn enqueue_capped(
    conn: &mut Conn,
    email: &NewEmail<'_>,
    now: i64,
    cap: Cap,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO outbox (id, template, subscriber_id, recipient, context, status,
                             next_attempt_at, message_id, created_at)
         SELECT $1, $2, $3, $4, $5, 'pending', $6, $7, $6
         WHERE (SELECT COUNT(*) FROM outbox
                WHERE subscriber_id = $3 AND template = $2 AND created_at >= $8) < $9",
    )
    .bind(email.id)
    .bind(email.template)
    .bind(email.subscriber_id)
    .bind(email.recipient)
    .bind(email.context.to_string())
    .bind(now)
    .bind(email.message_id)
    .bind(cap.since)
    .bind(cap.max)
    .execute(&mut *conn)
    .await
    .context("while queueing an email within its limit")?;
    Ok(result.rows_affected() == 1)
}

/// How many emails of `template` were queued for a reader since `since`.
pub async fn count_recent(
    conn: &mut Conn,
    subscriber_id: &str,
    template: &str,
    since: i64,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE subscriber_id = $1 AND template = $2 AND created_at >= $3",
    )
    .bind(subscriber_id)
    .bind(template)
    .bind(since)
    .fetch_one(&mut *conn)
    .await
    .context("while counting recent emails")
}

/// A row a worker holds the lease on.
#[derive(Debug, FromRow)]
pub struct ClaimedEmail {
    pub id: String,
    pub template: String,
    pub recipient: String,
    pub context: String,
    pub message_id: String,
    pub attempts: i64,
    pub created_at: i64,
}

/// The emails a stranger's signup sends to the address given: what the
/// hourly ceiling (`signup.emails_per_hour`) counts and holds back.
const SIGNUP_TEMPLATES: &str = "('confirm', 'already_subscribed')";

/// How many signup emails were sent since `since`, or are being sent now
/// (leased by any worker at `now`).
pub async fn signup_emails_sent_since(store: &Store, since: i64, now: i64) -> anyhow::Result<i64> {
    sqlx::query_scalar(&format!(
        "SELECT COUNT(*) FROM outbox WHERE template IN {SIGNUP_TEMPLATES}
           AND (sent_at >= $1 OR (status = 'pending' AND lease_until >= $2))"
    ))
    .bind(since)
    .bind(now)
    .fetch_one(store.pool())
    .await
    .context("while counting signup emails")
}

/// Leases up to `limit` due rows to `owner`, of which at most
/// `signup_limit` signup emails. Rows whose lease expired (a crashed
/// worker) are due again. PostgreSQL skips rows other instances are
/// claiming; SQLite has one writer, so a single UPDATE … RETURNING suffices.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: i64,
    lease_until: i64,
    (limit, signup_limit): (i64, i64),
) -> anyhow::Result<Vec<ClaimedEmail>> {
    let lock = match store.backend() {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    let due = "status = 'pending' AND next_attempt_at <= $3 AND (lease_until IS NULL OR lease_until < $3)";
    // Two chosen sets, then one semi-join: PostgreSQL cannot turn
    // `IN (…) OR IN (…)` into one, and would scan the whole table.
    let sql = format!(
        "WITH other AS (
             SELECT id FROM outbox WHERE {due} AND template NOT IN {SIGNUP_TEMPLATES}
             ORDER BY next_attempt_at LIMIT $4 {lock}),
         signup AS (
             SELECT id FROM outbox WHERE {due} AND template IN {SIGNUP_TEMPLATES}
             ORDER BY next_attempt_at LIMIT $5 {lock})
         UPDATE outbox SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
         WHERE id IN (SELECT id FROM other UNION ALL SELECT id FROM signup)
         RETURNING id, template, recipient, context, message_id, attempts, created_at"
    );
    sqlx::query_as(&sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .bind(signup_limit.clamp(0, limit))
        .fetch_all(store.pool())
        .await
        .context("while claiming queued emails")
}

/// One email in a reader's history (no body, no link).
#[derive(Debug, FromRow, serde::Serialize)]
pub struct EmailRecord {
    pub template: String,
    pub status: String,
    pub attempts: i64,
    pub message_id: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn history(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<Vec<EmailRecord>> {
    sqlx::query_as(
        "SELECT template, status, attempts, message_id, created_at, sent_at, last_error
         FROM outbox WHERE subscriber_id = $1 ORDER BY created_at, id",
    )
    .bind(subscriber_id)
    .fetch_all(&mut *conn)
    .await
    .context("while reading email history")
}
