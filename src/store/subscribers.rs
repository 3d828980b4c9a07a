//! Subscribers and their accounts.

use anyhow::Context;
use sqlx::{FromRow, Row};

use super::Conn;
use crate::domain::{EmailAddress, SubscriberName};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SubscriberStatus {
    Pending,
    Confirmed,
}

impl SubscriberStatus {
    fn parse(value: &str) -> anyhow::Result<Self> {
        match value {
            "pending" => Ok(Self::Pending),
            "confirmed" => Ok(Self::Confirmed),
            other => anyhow::bail!("unknown subscriber status {other:?}"),
        }
    }
}

/// The row a signup found or created, locked for the rest of the transaction.
#[derive(Debug)]
pub struct SignupTarget {
    pub id: String,
    pub status: SubscriberStatus,
    pub created: bool,
}

/// Inserts a pending subscriber unless the canonical address exists, and
/// touches the row either way, in one statement. Writing first makes the
/// transaction take the write lock at once on SQLite and locks the row on
/// PostgreSQL, so concurrent signups of one address queue up instead of
/// racing.
pub async fn upsert_pending(
    conn: &mut Conn,
    new_id: &str,
    email: &EmailAddress,
    name: Option<&SubscriberName>,
    now: i64,
) -> anyhow::Result<SignupTarget> {
    let row = sqlx::query(
        "INSERT INTO subscribers (id, email, email_canonical, name, status, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5, $5)
         ON CONFLICT (email_canonical) DO UPDATE SET updated_at = excluded.updated_at
         RETURNING id, status",
    )
    .bind(new_id)
    .bind(email.as_entered())
    .bind(email.canonical())
    .bind(name.map(SubscriberName::as_str))
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("while upserting a subscriber")?;
    let id: String = row.try_get("id")?;
    Ok(SignupTarget {
        created: id == new_id,
        status: SubscriberStatus::parse(&row.try_get::<String, _>("status")?)?,
        id,
    })
}

/// Marks a pending subscriber confirmed; returns the address to write to,
/// or `None` if the subscriber was not pending.
pub async fn confirm(
    conn: &mut Conn,
    id: &str,
    via_outbox_id: Option<&str>,
    now: i64,
) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE subscribers SET status = 'confirmed', confirmed_at = $1, confirmed_via = $2, updated_at = $1
         WHERE id = $3 AND status = 'pending' RETURNING email_canonical",
    )
    .bind(now)
    .bind(via_outbox_id)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .context("while confirming a subscriber")
}

/// Creates the reader's account (no password yet); repeating it is harmless.
pub async fn create_account(
    conn: &mut Conn,
    subscriber_id: &str,
    username: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO accounts (subscriber_id, username, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (subscriber_id) DO NOTHING",
    )
    .bind(subscriber_id)
    .bind(username)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while creating an account")?;
    Ok(())
}

/// What sign-in needs to know about an account.
#[derive(Debug, sqlx::FromRow)]
pub struct AccountLogin {
    pub subscriber_id: String,
    pub username: String,
    pub password_hash: Option<String>,
}

/// The account whose username (the canonical address) is `username`.
/// Readers rarely remember how they capitalised their address, so the match
/// ignores case; an exact match wins if two accounts differ only by case.
pub async fn find_account(conn: &mut Conn, username: &str) -> anyhow::Result<Option<AccountLogin>> {
    sqlx::query_as(
        "SELECT subscriber_id, username, password_hash FROM accounts
         WHERE lower(username) = lower($1)
         ORDER BY CASE WHEN username = $1 THEN 0 ELSE 1 END LIMIT 1",
    )
    .bind(username)
    .fetch_optional(&mut *conn)
    .await
    .context("while looking up an account")
}

/// Stores a new password hash; returns the account's username.
pub async fn set_password_hash(
    conn: &mut Conn,
    subscriber_id: &str,
    password_hash: &str,
) -> anyhow::Result<String> {
    sqlx::query_scalar(
        "UPDATE accounts SET password_hash = $1 WHERE subscriber_id = $2 RETURNING username",
    )
    .bind(password_hash)
    .bind(subscriber_id)
    .fetch_one(&mut *conn)
    .await
    .context("while storing a password")
}

/// What the account page shows.
#[derive(Debug, sqlx::FromRow)]
pub struct AccountOverview {
    pub username: String,
    pub created_at: i64,
}

pub async fn account_overview(
    conn: &mut Conn,
    subscriber_id: &str,
) -> anyhow::Result<Option<AccountOverview>> {
    sqlx::query_as("SELECT username, created_at FROM accounts WHERE subscriber_id = $1")
        .bind(subscriber_id)
        .fetch_optional(&mut *conn)
        .await
        .context("while reading an account")
}

/// The subscriber with this address (case-insensitive, exact match first).
pub async fn find_id_by_email(conn: &mut Conn, address: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT id FROM subscribers WHERE lower(email_canonical) = lower($1)
         ORDER BY CASE WHEN email_canonical = $1 THEN 0 ELSE 1 END LIMIT 1",
    )
    .bind(address)
    .fetch_optional(&mut *conn)
    .await
    .context("while looking up a subscriber")
}

/// Everything the subscribers and accounts tables hold about one reader.
#[derive(Debug, sqlx::FromRow)]
pub struct Profile {
    pub id: String,
    pub email: String,
    pub email_canonical: String,
    pub name: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub username: Option<String>,
    pub account_created_at: Option<i64>,
    pub has_password: i64,
}

pub async fn profile(conn: &mut Conn, id: &str) -> anyhow::Result<Option<Profile>> {
    sqlx::query_as(
        "SELECT s.id, s.email, s.email_canonical, s.name, s.status, s.created_at, s.confirmed_at,
                a.username, a.created_at AS account_created_at,
                CASE WHEN a.password_hash IS NULL THEN 0 ELSE 1 END AS has_password
         FROM subscribers s LEFT JOIN accounts a ON a.subscriber_id = s.id
         WHERE s.id = $1",
    )
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .context("while reading a profile")
}

/// Deletes a subscriber and, by cascade, their account, tokens, sessions,
/// queued and sent mail, and preferences.
pub async fn delete(conn: &mut Conn, id: &str) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM subscribers WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while deleting a subscriber")?;
    Ok(result.rows_affected() > 0)
}

/// Deletes signups neither confirmed nor renewed since `before` (a repeat
/// signup renews one with a fresh link), with their consent events (G-16);
/// returns how many. Run it in a transaction.
pub async fn purge_unconfirmed(conn: &mut Conn, before: i64) -> anyhow::Result<u64> {
    sqlx::query(
        "DELETE FROM consent_events WHERE subject_kind = 'subscriber' AND subject IN
           (SELECT id FROM subscribers WHERE status = 'pending' AND updated_at < $1)",
    )
    .bind(before)
    .execute(&mut *conn)
    .await
    .context("while purging unconfirmed consent events")?;
    let result =
        sqlx::query("DELETE FROM subscribers WHERE status = 'pending' AND updated_at < $1")
            .bind(before)
            .execute(&mut *conn)
            .await
            .context("while purging unconfirmed signups")?;
    Ok(result.rows_affected())
}

/// The password hash of a reader's account, if they set one.
pub async fn password_hash_of(
    conn: &mut Conn,
    subscriber_id: &str,
) -> anyhow::Result<Option<String>> {
    let hash: Option<Option<String>> =
        sqlx::query_scalar("SELECT password_hash FROM accounts WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .fetch_optional(&mut *conn)
            .await
            .context("while reading a password hash")?;
    Ok(hash.flatten())
}

/// Locks a reader's row for the rest of the transaction, so consent changes
/// for one reader happen one after another; false if there is no such reader.
pub async fn lock(conn: &mut Conn, id: &str) -> anyhow::Result<bool> {
    let result = sqlx::query("UPDATE subscribers SET updated_at = updated_at WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while locking a reader")?;
    Ok(result.rows_affected() == 1)
}

/// One line of an editor's list of readers.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ReaderLine {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub status: String,
    pub created_at: i64,
    pub confirmed_at: Option<i64>,
    pub suppressed_at: Option<i64>,
}

/// Readers in id order (UUID v7: signup order) after `after`, whose
/// address contains `search`, of `status` if given.
pub async fn list(
    pool: &sqlx::AnyPool,
    search: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<ReaderLine>> {
    let pattern = format!(
        "%{}%",
        super::articles::like_escape(&search.trim().to_lowercase())
    );
    sqlx::query_as(
        "SELECT id, email, name, status, created_at, confirmed_at,
                (SELECT x.created_at FROM suppressions x WHERE x.subscriber_id = subscribers.id)
                  AS suppressed_at
         FROM subscribers
         WHERE email_canonical LIKE $1 ESCAPE '\\' AND ($2 = '' OR status = $2) AND id > $3
         ORDER BY id LIMIT $4",
    )
    .bind(pattern)
    .bind(status.unwrap_or(""))
    .bind(after.unwrap_or(""))
    .bind(limit)
    .fetch_all(pool)
    .await
    .context("while listing readers")
}
