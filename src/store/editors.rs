//! Editors, their sessions and set-password links, and API tokens.

use anyhow::Context;
use sqlx::{AnyPool, FromRow};

use super::Conn;
use crate::domain::TokenHash;

/// An editor as the console and the CLI list them.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EditorRow {
    pub id: String,
    pub email: String,
    pub role: String,
    pub created_at: i64,
    /// False until the set-password link has been used.
    #[sqlx(try_from = "i64")]
    pub has_password: IntFlag,
}

/// An integer 0/1 column read as a bool (the Any driver has no portable bool).
#[derive(Debug, Clone, Copy, serde::Serialize)]
#[serde(transparent)]
pub struct IntFlag(pub bool);

impl From<i64> for IntFlag {
    fn from(value: i64) -> Self {
        Self(value != 0)
    }
}

const EDITOR_COLUMNS: &str = "id, email, role, created_at, CASE WHEN password_hash IS NULL THEN 0 ELSE 1 END AS has_password";

/// Creates an editor with a set-password link, or replaces the link (and
/// role) of the editor with this address. Returns the editor's id.
pub async fn upsert(
    conn: &mut Conn,
    new_id: &str,
    email: &str,
    role: &str,
    link: &TokenHash,
    link_expires_at: i64,
    now: i64,
) -> anyhow::Result<String> {
    sqlx::query_scalar(
        "INSERT INTO editors (id, email, role, password_link_hash, password_link_expires_at, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (email) DO UPDATE SET role = excluded.role,
           password_link_hash = excluded.password_link_hash,
           password_link_expires_at = excluded.password_link_expires_at
         RETURNING id",
    )
    .bind(new_id)
    .bind(email)
    .bind(role)
    .bind(link.as_str())
    .bind(link_expires_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("while storing an editor")
}

/// Who an editor is: id, address, role.
#[derive(Debug, Clone, FromRow)]
pub struct EditorIdentity {
    pub id: String,
    pub email: String,
    pub role: String,
}

/// Sets the password of the editor whose live link this is, and voids the
/// link. Returns the editor, or `None` for an unknown or expired link.
pub async fn use_password_link(
    conn: &mut Conn,
    link: &TokenHash,
    password_hash: &str,
    now: i64,
) -> anyhow::Result<Option<EditorIdentity>> {
    sqlx::query_as(
        "UPDATE editors SET password_hash = $1, password_link_hash = NULL, password_link_expires_at = NULL
         WHERE password_link_hash = $2 AND password_link_expires_at > $3
         RETURNING id, email, role",
    )
    .bind(password_hash)
    .bind(link.as_str())
    .bind(now)
    .fetch_optional(&mut *conn)
    .await
    .context("while setting an editor's password")
}

/// True if the link could be used now; changes nothing.
pub async fn password_link_is_live(
    pool: &AnyPool,
    link: &TokenHash,
    now: i64,
) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM editors WHERE password_link_hash = $1 AND password_link_expires_at > $2",
    )
    .bind(link.as_str())
    .bind(now)
    .fetch_optional(pool)
    .await
    .context("while checking an editor's link")?;
    Ok(found.is_some())
}

/// What sign-in needs: the id, role and password hash.
#[derive(Debug, FromRow)]
pub struct EditorLogin {
    pub id: String,
    pub password_hash: Option<String>,
}

pub async fn find_login(pool: &AnyPool, email: &str) -> anyhow::Result<Option<EditorLogin>> {
    sqlx::query_as("SELECT id, password_hash FROM editors WHERE email = $1")
        .bind(email)
        .fetch_optional(pool)
        .await
        .context("while looking up an editor")
}

pub async fn list(pool: &AnyPool) -> anyhow::Result<Vec<EditorRow>> {
    sqlx::query_as(&format!(
        "SELECT {EDITOR_COLUMNS} FROM editors ORDER BY email"
    ))
    .fetch_all(pool)
    .await
    .context("while listing editors")
}

/// Removes an editor and, with them, their sessions.
pub async fn delete(conn: &mut Conn, id: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("DELETE FROM editors WHERE id = $1 RETURNING email")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .context("while removing an editor")
}

pub async fn create_session(
    conn: &mut Conn,
    id_hash: &TokenHash,
    editor_id: &str,
    now: i64,
    expires_at: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO editor_sessions (id_hash, editor_id, created_at, last_seen_at, expires_at)
         VALUES ($1, $2, $3, $3, $4)",
    )
    .bind(id_hash.as_str())
    .bind(editor_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut *conn)
    .await
    .context("while creating an editor's session")?;
    Ok(())
}

/// A live session's editor.
#[derive(Debug, Clone, FromRow)]
pub struct SessionEditor {
    pub id: String,
    pub email: String,
    pub role: String,
    pub last_seen_at: i64,
}

pub async fn find_session(
    pool: &AnyPool,
    id_hash: &TokenHash,
    now: i64,
    idle_since: i64,
) -> anyhow::Result<Option<SessionEditor>> {
    sqlx::query_as(
        "SELECT e.id, e.email, e.role, s.last_seen_at
         FROM editor_sessions s JOIN editors e ON e.id = s.editor_id
         WHERE s.id_hash = $1 AND s.expires_at > $2 AND s.last_seen_at > $3",
    )
    .bind(id_hash.as_str())
    .bind(now)
    .bind(idle_since)
    .fetch_optional(pool)
    .await
    .context("while looking up an editor's session")
}

pub async fn touch_session(pool: &AnyPool, id_hash: &TokenHash, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE editor_sessions SET last_seen_at = $1 WHERE id_hash = $2")
        .bind(now)
        .bind(id_hash.as_str())
        .execute(pool)
        .await
        .context("while refreshing an editor's session")?;
    Ok(())
}

pub async fn delete_session(pool: &AnyPool, id_hash: &TokenHash) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM editor_sessions WHERE id_hash = $1")
        .bind(id_hash.as_str())
        .execute(pool)
        .await
        .context("while ending an editor's session")?;
    Ok(())
}

pub async fn delete_sessions_of(conn: &mut Conn, editor_id: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM editor_sessions WHERE editor_id = $1")
        .bind(editor_id)
        .execute(&mut *conn)
        .await
        .context("while ending an editor's sessions")?;
    Ok(())
}

/// Retention: editors' sessions past their absolute or idle timeout.
pub async fn purge_dead_sessions(
    conn: &mut Conn,
    now: i64,
    idle_since: i64,
) -> anyhow::Result<u64> {
    let result =
        sqlx::query("DELETE FROM editor_sessions WHERE expires_at <= $1 OR last_seen_at <= $2")
            .bind(now)
            .bind(idle_since)
            .execute(&mut *conn)
            .await
            .context("while purging editors' sessions")?;
    Ok(result.rows_affected())
}

/// An API token as listed: never its secret.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct TokenRow {
    pub id: String,
    pub name: String,
    pub role: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

/// Stores a new token; `false` if the name is taken.
pub async fn create_token(
    conn: &mut Conn,
    id: &str,
    name: &str,
    role: &str,
    hash: &TokenHash,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO api_tokens (id, name, role, token_hash, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (name) WHERE revoked_at IS NULL DO NOTHING",
    )
    .bind(id)
    .bind(name)
    .bind(role)
    .bind(hash.as_str())
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while storing an API token")?;
    Ok(result.rows_affected() == 1)
}

pub async fn list_tokens(pool: &AnyPool) -> anyhow::Result<Vec<TokenRow>> {
    sqlx::query_as(
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens ORDER BY name",
    )
    .fetch_all(pool)
    .await
    .context("while listing API tokens")
}

/// The live token with this hash. `last_used_at` moves at most once a
/// minute, so an API call is not also a write every time.
pub async fn find_token(
    pool: &AnyPool,
    hash: &TokenHash,
    now: i64,
) -> anyhow::Result<Option<TokenRow>> {
    let token: Option<TokenRow> = sqlx::query_as(
        "SELECT id, name, role, created_at, last_used_at, revoked_at FROM api_tokens
         WHERE token_hash = $1 AND revoked_at IS NULL",
    )
    .bind(hash.as_str())
    .fetch_optional(pool)
    .await
    .context("while checking an API token")?;
    if let Some(token) = &token
        && token.last_used_at.is_none_or(|at| at < now - 60_000)
    {
        sqlx::query("UPDATE api_tokens SET last_used_at = $1 WHERE id = $2")
            .bind(now)
            .bind(&token.id)
            .execute(pool)
            .await
            .context("while noting an API token's use")?;
    }
    Ok(token)
}

/// Revokes the token with this name; its name if it was live.
pub async fn revoke_token(conn: &mut Conn, name: &str, now: i64) -> anyhow::Result<bool> {
    let result =
        sqlx::query("UPDATE api_tokens SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(name)
            .execute(&mut *conn)
            .await
            .context("while revoking an API token")?;
    Ok(result.rows_affected() == 1)
}
