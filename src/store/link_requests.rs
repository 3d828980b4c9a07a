//! Password-reset and sign-in-link requests, kept as they arrive and turned
//! into emails by the delivery worker, so that a request costs the same
//! whether its address has an account or not: its timing tells nothing.

use anyhow::Context;
use sqlx::FromRow;

use super::{Backend, Conn, Store};

/// Keeps a request: one INSERT, whoever the address belongs to.
pub async fn add(
    store: &Store,
    email_canonical: &str,
    template: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO link_requests (id, email_canonical, template, created_at) VALUES ($1, $2, $3, $4)",
    )
    .bind(super::new_id())
    .bind(email_canonical)
    .bind(template)
    .bind(now)
    .execute(store.pool())
    .await
    .context("while keeping a link request")?;
    Ok(())
}

/// Whether any request waits: a read, so an idle worker's poll takes no
/// write lock (on SQLite, `BEGIN IMMEDIATE` would, every poll).
pub async fn any(store: &Store) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM link_requests LIMIT 1")
        .fetch_optional(store.pool())
        .await
        .context("while looking for link requests")?;
    Ok(found.is_some())
}

/// A request taken from the queue.
#[derive(Debug, FromRow)]
pub struct LinkRequest {
    pub email_canonical: String,
    pub template: String,
}

/// Takes the oldest request inside `conn`'s transaction: gone once it
/// commits, back if it rolls back. Instances skip each other's.
pub async fn take_oldest(conn: &mut Conn, backend: Backend) -> anyhow::Result<Option<LinkRequest>> {
    let lock = match backend {
        Backend::Postgres => "FOR UPDATE SKIP LOCKED",
        Backend::Sqlite => "",
    };
    sqlx::query_as(&format!(
        "DELETE FROM link_requests WHERE id = (
             SELECT id FROM link_requests ORDER BY created_at, id LIMIT 1 {lock})
         RETURNING email_canonical, template"
    ))
    .fetch_optional(&mut *conn)
    .await
    .context("while taking a link request")
}
