//! Server-side sessions, by hash of the cookie's secret.

use anyhow::Context;
use sqlx::{FromRow, Pool};

use super::Conn;
use crate::domain::TokenHash;

pub async fn create(
    conn: &mut Conn,
    id_hash: &TokenHash,
    subscriber_id: &str,
    now: i64,
    expires_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO sessions (id_hash, subscriber_id, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(id_hash.as_str())
    .bind(subscriber_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await
    .context("while creating a session")?;
    Ok(())
}

/// A live session and who it belongs to.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRow {
    pub subscriber_id: String,
    pub username: String,
    pub last_seen_at: i64,
}

/// The session if it exists, has not passed its absolute expiry and was
/// seen since `idle_since`.
pub async fn find_live(
    pool: &Pool<sqlx::Any>,
    id_hash: &TokenHash,
    now: i64,
    idle_since: i64,
) -> anyhow::Result<Option<SessionRow>> {
    sqlx::query_as(
        "SELECT s.subscriber_id, a.username, s.last_seen_at
         FROM sessions s JOIN accounts a ON a.subscriber_id = s.subscriber_id
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3",
    )
    .bind(id_hash.as_str())
    .bind(now)
    .bind(idle_since)
    .fetch_optional(pool)
    .await
    .context("while looking up a session")
}

pub async fn touch(pool: &Pool<sqlx::Any>, id_hash: &TokenHash, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash.as_str())
        .execute(pool)
        .await
        .context("while refreshing a session")?;
    Ok(())
}

pub async fn delete(conn: &mut Conn, id_hash: &TokenHash) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM sessions WHERE id_hash = $1")
        .bind(id_hash.as_str())
        .execute(&mut *conn)
        .await
        .context("while ending a session")?;
    Ok(())
}

/// Revokes every session of a reader but `keep` (A-02: a password change).
pub async fn delete_all_but(
    conn: &mut Conn,
    subscriber_id: &str,
    keep: Option<&TokenHash>,
) -> anyhow::Result<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE subscriber_id = $1 AND id_hash <> $2")
        .bind(subscriber_id)
        .bind(keep.map_or("", TokenHash::as_str))
        .execute(&mut *conn)
        .await
        .context("while revoking sessions")?;
    Ok(result.rows_affected())
}

/// A reader's sessions, without their secrets.
#[derive(Debug, FromRow, serde::Serialize)]
pub struct SessionRecord {
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
}

pub async fn list(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<Vec<SessionRecord>> {
    sqlx::query_as(
        "SELECT created_at, last_seen_at, expires_at FROM sessions WHERE subscriber_id = $1 ORDER BY created_at",
    )
    .bind(subscriber_id)
    .fetch_all(&mut *conn)
    .await
    .context("while listing sessions")
}

/// Retention: sessions past their absolute or idle timeout.
pub async fn purge_dead(conn: &mut Conn, now: i64, idle_since: i64) -> anyhow::Result<u64> {
    let result = sqlx::query("DELETE FROM sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
        .bind(now)
        .bind(idle_since)
        .execute(&mut *conn)
        .await
        .context("while purging sessions")?;
    Ok(result.rows_affected())
}
