//! The one suppression list: addresses never mailed again, each kept as a
//! keyed hash (so the list outlives an erasure without holding the
//! address), with its reason, the reader it suppresses while they exist,
//! and the report that caused it.

use anyhow::Context;

use super::Conn;

/// Why an address is no longer mailed. (An erasure's entry is written by
/// [`mark_erased`] alone.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    HardBounce,
    SoftBounces,
    Complaint,
    /// Added by an editor.
    Manual,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounces => "soft_bounces",
            Self::Complaint => "complaint",
            Self::Manual => "manual",
        }
    }
}

pub struct NewSuppression<'a> {
    pub email_hash: &'a str,
    pub reason: Reason,
    pub subscriber_id: Option<&'a str>,
    pub event_id: Option<&'a str>,
    pub note: Option<&'a str>,
}

/// Adds an address; false if it was already on the list (its first
/// reason stays: the earliest cause is the one worth knowing).
pub async fn add(conn: &mut Conn, new: &NewSuppression<'_>, now: i64) -> anyhow::Result<bool> {
    let added = sqlx::query(
        "INSERT INTO suppressions (email_hash, reason, subscriber_id, event_id, note, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (email_hash) DO NOTHING",
    )
    .bind(new.email_hash)
    .bind(new.reason.as_str())
    .bind(new.subscriber_id)
    .bind(new.event_id)
    .bind(new.note)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while suppressing an address")?;
    Ok(added.rows_affected() == 1)
}

/// Takes an address off the list, unless it was erased: an erasure's
/// promise holds until the reader opts in again ([`lift_erasure`]).
/// Returns the reason it had, or `None` if nothing was removed.
pub async fn remove(conn: &mut Conn, email_hash: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "DELETE FROM suppressions WHERE email_hash = $1 AND reason <> 'erased' RETURNING reason",
    )
    .bind(email_hash)
    .fetch_optional(&mut *conn)
    .await
    .context("while lifting a suppression")
}

/// A fresh double opt-in lifts an erasure's suppression (the reader chose to come back).
pub async fn lift_erasure(conn: &mut Conn, email_hash: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM suppressions WHERE email_hash = $1 AND reason = 'erased'")
        .bind(email_hash)
        .execute(&mut *conn)
        .await
        .context("while lifting a suppression")?;
    Ok(())
}

/// Ties an entry made before this reader existed (an editor's, or one
/// left by an earlier reader of the address) to the reader.
pub async fn link(conn: &mut Conn, email_hash: &str, subscriber_id: &str) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE suppressions SET subscriber_id = $2 WHERE email_hash = $1 AND subscriber_id IS NULL",
    )
    .bind(email_hash)
    .bind(subscriber_id)
    .execute(&mut *conn)
    .await
    .context("while linking a suppression to its reader")?;
    Ok(())
}

/// An erasure's entry: whatever the address was listed for before, it is
/// now listed as erased, which only a fresh signup lifts.
pub async fn mark_erased(conn: &mut Conn, email_hash: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO suppressions (email_hash, reason, created_at) VALUES ($1, 'erased', $2)
         ON CONFLICT (email_hash) DO UPDATE SET reason = 'erased', subscriber_id = NULL",
    )
    .bind(email_hash)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while suppressing an erased address")?;
    Ok(())
}

/// One entry of the list, as editors see it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct SuppressionRow {
    pub email_hash: String,
    pub reason: String,
    pub subscriber_id: Option<String>,
    /// The reader's address while they exist; erased readers have none.
    pub email: Option<String>,
    pub event_id: Option<String>,
    pub note: Option<String>,
    pub created_at: i64,
}

const ROW: &str = "SELECT p.email_hash, p.reason, p.subscriber_id, s.email, p.event_id, p.note,
                          p.created_at
                   FROM suppressions p LEFT JOIN subscribers s ON s.id = p.subscriber_id";

/// Newest first, `limit` at a time before `before` (a `created_at`,
/// `i64::MAX` for the first page); `hash` narrows it to one address.
pub async fn list(
    conn: &mut Conn,
    hash: Option<&str>,
    before: i64,
    limit: i64,
) -> anyhow::Result<Vec<SuppressionRow>> {
    sqlx::query_as(&format!(
        "{ROW} WHERE p.created_at < $1 AND ($2 = '' OR p.email_hash = $2)
         ORDER BY p.created_at DESC, p.email_hash LIMIT $3"
    ))
    .bind(before)
    .bind(hash.unwrap_or(""))
    .bind(limit)
    .fetch_all(&mut *conn)
    .await
    .context("while listing suppressions")
}

/// The reader's entry, if they are suppressed.
pub async fn of_subscriber(
    conn: &mut Conn,
    subscriber_id: &str,
) -> anyhow::Result<Option<SuppressionRow>> {
    sqlx::query_as(&format!("{ROW} WHERE p.subscriber_id = $1"))
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .context("while reading a reader's suppression")
}

/// Readers still marked the old way (`subscribers.suppressed_at`), with
/// their addresses, for `privacy::move_legacy_suppressions`.
pub async fn legacy(conn: &mut Conn) -> anyhow::Result<Vec<(String, String, i64)>> {
    sqlx::query_as(
        "SELECT id, email_canonical, suppressed_at FROM subscribers WHERE suppressed_at IS NOT NULL",
    )
    .fetch_all(&mut *conn)
    .await
    .context("while reading old suppressions")
}
