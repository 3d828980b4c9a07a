//! The audit log of editors' actions (S-10), and the answers kept for
//! idempotent API requests.

use anyhow::Context;
use sqlx::{AnyPool, FromRow};

use super::Conn;

/// One line of the audit log.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct AuditEntry {
    pub id: String,
    pub at: i64,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
}

pub async fn record(conn: &mut Conn, entry: &AuditEntry) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO audit_log (id, at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&entry.id)
    .bind(entry.at)
    .bind(&entry.actor)
    .bind(&entry.action)
    .bind(&entry.target)
    .bind(&entry.detail)
    .execute(&mut *conn)
    .await
    .context("while writing the audit log")?;
    Ok(())
}

/// How many times `actor` did `action` since `since`.
pub async fn count_recent(
    conn: &mut Conn,
    actor: &str,
    action: &str,
    since: i64,
) -> anyhow::Result<i64> {
    sqlx::query_scalar(
        "SELECT COUNT(*) FROM audit_log WHERE at >= $1 AND actor = $2 AND action = $3",
    )
    .bind(since)
    .bind(actor)
    .bind(action)
    .fetch_one(&mut *conn)
    .await
    .context("while counting recent actions")
}

/// The newest entries first, older than `before` (an entry id) if given.
pub async fn list(
    pool: &AnyPool,
    before: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<AuditEntry>> {
    sqlx::query_as(
        "SELECT id, at, actor, action, target, detail FROM audit_log
         WHERE $1 = '' OR id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("while reading the audit log")
}

/// A kept answer to an idempotent request.
#[derive(Debug, Clone, FromRow)]
pub struct KeptAnswer {
    pub request_hash: String,
    pub status: i64,
    pub body: String,
}

pub async fn kept_answer(
    pool: &AnyPool,
    actor: &str,
    key: &str,
) -> anyhow::Result<Option<KeptAnswer>> {
    sqlx::query_as(
        "SELECT request_hash, status, body FROM idempotency_keys WHERE actor = $1 AND key = $2",
    )
    .bind(actor)
    .bind(key)
    .fetch_optional(pool)
    .await
    .context("while looking up an idempotency key")
}

/// Claims a key for a request about to run (status 0 until it is
/// answered), or takes over a reservation made before `stale_before` and
/// never answered; `false` if the key is taken.
pub async fn reserve(
    pool: &AnyPool,
    actor: &str,
    key: &str,
    request_hash: &str,
    now: i64,
    stale_before: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO idempotency_keys (actor, key, request_hash, status, body, created_at)
         VALUES ($1, $2, $3, 0, '', $4)
         ON CONFLICT (actor, key) DO UPDATE SET request_hash = excluded.request_hash,
           created_at = excluded.created_at
         WHERE idempotency_keys.status = 0 AND idempotency_keys.created_at < $5",
    )
    .bind(actor)
    .bind(key)
    .bind(request_hash)
    .bind(now)
    .bind(stale_before)
    .execute(pool)
    .await
    .context("while reserving an idempotency key")?;
    Ok(result.rows_affected() == 1)
}

/// Keeps the answer to a reserved key.
pub async fn complete(
    pool: &AnyPool,
    actor: &str,
    key: &str,
    status: i64,
    body: &str,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE idempotency_keys SET status = $1, body = $2 WHERE actor = $3 AND key = $4")
        .bind(status)
        .bind(body)
        .bind(actor)
        .bind(key)
        .execute(pool)
        .await
        .context("while keeping an idempotent answer")?;
    Ok(())
}

/// Frees a key whose request failed, so a retry runs again.
pub async fn release(pool: &AnyPool, actor: &str, key: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM idempotency_keys WHERE actor = $1 AND key = $2")
        .bind(actor)
        .bind(key)
        .execute(pool)
        .await
        .context("while releasing an idempotency key")?;
    Ok(())
}

/// Retention: kept answers older than `before`.
pub async fn purge_answers(conn: &mut Conn, before: i64) -> anyhow::Result<u64> {
    let result = sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1")
        .bind(before)
        .execute(&mut *conn)
        .await
        .context("while purging idempotency keys")?;
    Ok(result.rows_affected())
}
