//! Emailed tokens, by hash only (D-03).

use anyhow::Context;
use sqlx::Row;

use super::Conn;
use crate::domain::{TokenHash, TokenPurpose};

/// A token about to be stored.
pub struct NewToken<'a> {
    pub hash: &'a TokenHash,
    pub subscriber_id: &'a str,
    pub purpose: TokenPurpose,
    pub outbox_id: &'a str,
    pub expires_at: i64,
    /// The digest wording a confirmation link also confirms.
    pub consent_text_id: Option<&'a str>,
}

/// Stores a token and voids the reader's unused older ones of the same purpose (D-05).
pub async fn issue(conn: &mut Conn, token: &NewToken<'_>, now: i64) -> anyhow::Result<()> {
    void_all(conn, token.subscriber_id, token.purpose).await?;
    insert(conn, token, now).await
}

/// Stores a token without voiding older ones: for a reader created in the
/// caller's transaction, who has none.
pub async fn insert(conn: &mut Conn, token: &NewToken<'_>, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO tokens (hash, subscriber_id, purpose, outbox_id, created_at, expires_at, consent_text_id)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(token.hash.as_str())
    .bind(token.subscriber_id)
    .bind(token.purpose.as_str())
    .bind(token.outbox_id)
    .bind(now)
    .bind(token.expires_at)
    .bind(token.consent_text_id)
    .execute(&mut *conn)
    .await
    .context("while storing a token")?;
    Ok(())
}

/// What a consumed token pointed at.
pub struct ConsumedToken {
    pub subscriber_id: String,
    pub outbox_id: Option<String>,
    pub consent_text_id: Option<String>,
}

/// Uses a token once: `None` if it is unknown, used, expired or of another purpose.
pub async fn consume(
    conn: &mut Conn,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: i64,
) -> anyhow::Result<Option<ConsumedToken>> {
    let row = sqlx::query(
        "UPDATE tokens SET used_at = $1
         WHERE hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
         RETURNING subscriber_id, outbox_id, consent_text_id",
    )
    .bind(now)
    .bind(hash.as_str())
    .bind(purpose.as_str())
    .fetch_optional(&mut *conn)
    .await
    .context("while using a token")?;
    row.map(|row| {
        Ok(ConsumedToken {
            subscriber_id: row.try_get("subscriber_id")?,
            outbox_id: row.try_get("outbox_id")?,
            consent_text_id: row.try_get("consent_text_id")?,
        })
    })
    .transpose()
}

/// `Some(consent wording, if any)` when the token could be used now; reads
/// only (GET pages must not change state, D-06).
pub async fn usable(
    conn: &mut Conn,
    hash: &TokenHash,
    purpose: TokenPurpose,
    now: i64,
) -> anyhow::Result<Option<Option<String>>> {
    sqlx::query_scalar(
        "SELECT consent_text_id FROM tokens
         WHERE hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
    )
    .bind(hash.as_str())
    .bind(purpose.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .context("while looking up a token")
}

/// Voids every unused token of a purpose for a reader (A-02: a password was set).
pub async fn void_all(
    conn: &mut Conn,
    subscriber_id: &str,
    purpose: TokenPurpose,
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM tokens WHERE subscriber_id = $1 AND purpose = $2 AND used_at IS NULL")
        .bind(subscriber_id)
        .bind(purpose.as_str())
        .execute(&mut *conn)
        .await
        .context("while voiding tokens")?;
    Ok(())
}

/// Retention: tokens used or expired.
pub async fn purge_spent(conn: &mut Conn, now: i64) -> anyhow::Result<u64> {
    let result = sqlx::query("DELETE FROM tokens WHERE used_at IS NOT NULL OR expires_at <= $1")
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("while purging tokens")?;
    Ok(result.rows_affected())
}
