//! The consent ledger: immutable wording versions and append-only events (G-05, G-06).

use anyhow::Context;
use sqlx::Row;

use super::Conn;

/// Stores a wording version if new; its id is the hash of the text.
pub async fn ensure_text(
    conn: &mut Conn,
    id: &str,
    purpose: &str,
    body: &str,
    language: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO consent_texts (id, purpose, body, language, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO NOTHING",
    )
    .bind(id)
    .bind(purpose)
    .bind(body)
    .bind(language)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while storing a consent text")?;
    Ok(())
}

/// True if `id` names a stored wording version for `purpose`.
pub async fn text_exists(conn: &mut Conn, id: &str, purpose: &str) -> anyhow::Result<bool> {
    let found: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM consent_texts WHERE id = $1 AND purpose = $2")
            .bind(id)
            .bind(purpose)
            .fetch_optional(&mut *conn)
            .await
            .context("while looking up a consent text")?;
    Ok(found.is_some())
}

/// Whose consent an event records.
#[derive(Debug, Clone, Copy)]
pub enum Subject<'a> {
    Subscriber(&'a str),
    /// A browser's pseudonymous cookie-consent id.
    Browser(&'a str),
}

impl Subject<'_> {
    fn kind(self) -> &'static str {
        match self {
            Self::Subscriber(_) => "subscriber",
            Self::Browser(_) => "browser",
        }
    }

    fn id(&self) -> &str {
        match self {
            Self::Subscriber(id) | Self::Browser(id) => id,
        }
    }
}

/// One entry of the ledger.
pub struct ConsentEvent<'a> {
    pub subject: Subject<'a>,
    pub purpose: &'a str,
    pub action: &'a str,
    pub text_id: &'a str,
    pub source: &'a str,
    pub ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub notice_id: Option<&'a str>,
}

pub async fn record(conn: &mut Conn, event: &ConsentEvent<'_>, now: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO consent_events
           (id, subject_kind, subject, purpose, action, text_id, source, ip, user_agent, notice_id, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(super::new_id())
    .bind(event.subject.kind())
    .bind(event.subject.id())
    .bind(event.purpose)
    .bind(event.action)
    .bind(event.text_id)
    .bind(event.source)
    .bind(event.ip)
    .bind(event.user_agent)
    .bind(event.notice_id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while recording a consent event")?;
    Ok(())
}

/// The latest event for a purpose: (action, text id). Current consent is
/// derived from the ledger, never stored in a column (G-06).
pub async fn latest(
    conn: &mut Conn,
    subject: Subject<'_>,
    purpose: &str,
) -> anyhow::Result<Option<(String, String)>> {
    // UUID v7 ids are time-ordered, which breaks ties between events of one millisecond.
    let row = sqlx::query(
        "SELECT action, text_id FROM consent_events
         WHERE subject_kind = $1 AND subject = $2 AND purpose = $3
         ORDER BY created_at DESC, id DESC LIMIT 1",
    )
    .bind(subject.kind())
    .bind(subject.id())
    .bind(purpose)
    .fetch_optional(&mut *conn)
    .await
    .context("while reading current consent")?;
    row.map(|row| Ok((row.try_get("action")?, row.try_get("text_id")?)))
        .transpose()
}

/// A ledger entry with the wording it refers to, for exports and receipts.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct EventWithText {
    pub id: String,
    pub purpose: String,
    pub action: String,
    pub source: String,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub created_at: i64,
    pub text_id: String,
    pub text_body: String,
    pub text_language: String,
    pub notice_id: Option<String>,
}

/// A reader's events, oldest first.
pub async fn events_of(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<Vec<EventWithText>> {
    sqlx::query_as(
        "SELECT e.id, e.purpose, e.action, e.source, e.ip, e.user_agent, e.created_at,
                e.text_id, t.body AS text_body, t.language AS text_language, e.notice_id
         FROM consent_events e JOIN consent_texts t ON t.id = e.text_id
         WHERE e.subject_kind = 'subscriber' AND e.subject = $1
         ORDER BY e.created_at, e.id",
    )
    .bind(subscriber_id)
    .fetch_all(&mut *conn)
    .await
    .context("while reading consent events")
}

/// Erasure: a reader's events keep what they prove, under a keyed hash of
/// the address instead of the reader, and without IP or user agent (G-13).
pub async fn pseudonymise(
    conn: &mut Conn,
    subscriber_id: &str,
    subject_hash: &str,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE consent_events SET subject_kind = 'erased', subject = $1, ip = NULL, user_agent = NULL
         WHERE subject_kind = 'subscriber' AND subject = $2",
    )
    .bind(subject_hash)
    .bind(subscriber_id)
    .execute(&mut *conn)
    .await
    .context("while pseudonymising consent events")?;
    Ok(result.rows_affected())
}

/// Retention: IPs and user agents older than `before` are removed (G-07).
pub async fn clear_evidence_before(conn: &mut Conn, before: i64) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE consent_events SET ip = NULL, user_agent = NULL
         WHERE created_at < $1 AND (ip IS NOT NULL OR user_agent IS NOT NULL)",
    )
    .bind(before)
    .execute(&mut *conn)
    .await
    .context("while clearing old consent evidence")?;
    Ok(result.rows_affected())
}

/// The versions of a wording, newest first: (id, created_at).
pub async fn text_versions(conn: &mut Conn, purpose: &str) -> anyhow::Result<Vec<(String, i64)>> {
    sqlx::query_as(
        "SELECT id, created_at FROM consent_texts WHERE purpose = $1 ORDER BY created_at DESC, id",
    )
    .bind(purpose)
    .fetch_all(&mut *conn)
    .await
    .context("while listing wording versions")
}

/// One wording version's text.
pub async fn text(
    conn: &mut Conn,
    id: &str,
    purpose: &str,
) -> anyhow::Result<Option<(String, i64)>> {
    sqlx::query_as("SELECT body, created_at FROM consent_texts WHERE id = $1 AND purpose = $2")
        .bind(id)
        .bind(purpose)
        .fetch_optional(&mut *conn)
        .await
        .context("while reading a wording version")
}
