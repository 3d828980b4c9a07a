//! Many readers at once (subscriber import): each statement takes a whole
//! batch as one JSON parameter. SQLite's way; PostgreSQL's is
//! `import_copy`, whose one statement must keep the rules written here.

use std::collections::HashSet;

use anyhow::Context;
use serde_json::json;

use super::{Conn, Store};

/// A reader from an import file, validated.
pub struct ImportedReader<'a> {
    pub id: String,
    pub email: &'a str,
    pub email_canonical: &'a str,
    pub name: Option<&'a str>,
    pub topics: &'a [String],
    pub consented_at: i64,
}

/// Inserts the readers not known yet, each confirmed, with an account, a
/// confirmed digest consent (source `import`, the given time, `detail`)
/// and their topics. Returns the ids of those inserted; known addresses are
/// left exactly as they are (a withdrawal stays a withdrawal).
pub async fn insert_batch(
    store: &Store,
    conn: &mut Conn,
    readers: &[ImportedReader<'_>],
    wording_id: &str,
    detail: &str,
    now: i64,
) -> anyhow::Result<Vec<String>> {
    if readers.is_empty() {
        return Ok(Vec::new());
    }
    let inserted = insert_subscribers(store, conn, readers, now).await?;
    let inserted_ids: HashSet<&str> = inserted.iter().map(String::as_str).collect();
    let new: Vec<&ImportedReader<'_>> = readers
        .iter()
        .filter(|r| inserted_ids.contains(r.id.as_str()))
        .collect();
    if new.is_empty() {
        return Ok(inserted);
    }
    insert_accounts(store, conn, &new, now).await?;
    insert_consents(store, conn, &new, wording_id, detail).await?;
    insert_topics(store, conn, &new).await?;
    Ok(inserted)
}

// In the upserts below, `WHERE true` tells SQLite's parser that the
// ON CONFLICT clause is the insert's, not a join's.

/// The readers whose addresses are new, confirmed; returns their ids.
async fn insert_subscribers(
    store: &Store,
    conn: &mut Conn,
    readers: &[ImportedReader<'_>],
    now: i64,
) -> anyhow::Result<Vec<String>> {
    let rows: Vec<_> = readers
        .iter()
        .map(|r| json!([r.id, r.email, r.email_canonical, r.name, r.consented_at]))
        .collect();
    sqlx::query_scalar(&format!(
        "INSERT INTO subscribers (id, email, email_canonical, name, status, created_at, updated_at, confirmed_at)
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, 'confirmed', $2, $2,
                CAST(value ->> 4 AS BIGINT)
         FROM {} WHERE true
         ON CONFLICT (email_canonical) DO NOTHING RETURNING id",
        store.json_rows(1)
    ))
    .bind(serde_json::to_string(&rows)?)
    .bind(now)
    .fetch_all(&mut *conn)
    .await
    .context("while importing readers")
}

async fn insert_accounts(
    store: &Store,
    conn: &mut Conn,
    new: &[&ImportedReader<'_>],
    now: i64,
) -> anyhow::Result<()> {
    let accounts: Vec<_> = new
        .iter()
        .map(|r| json!([r.id, r.email_canonical]))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO accounts (subscriber_id, username, created_at)
         SELECT value ->> 0, value ->> 1, $2 FROM {} WHERE true ON CONFLICT DO NOTHING",
        store.json_rows(1)
    ))
    .bind(serde_json::to_string(&accounts)?)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while creating imported accounts")?;
    Ok(())
}

/// Each new reader's confirmed digest consent, dated when they gave it.
async fn insert_consents(
    store: &Store,
    conn: &mut Conn,
    new: &[&ImportedReader<'_>],
    wording_id: &str,
    detail: &str,
) -> anyhow::Result<()> {
    let consents: Vec<_> = new
        .iter()
        .map(|r| json!([super::new_id(), r.id, r.consented_at]))
        .collect();
    sqlx::query(&format!(
        "INSERT INTO consent_events
           (id, subject_kind, subject, purpose, action, text_id, source, source_detail, created_at)
         SELECT value ->> 0, 'subscriber', value ->> 1, 'newsletter', 'confirmed', $2, 'import', $3,
                CAST(value ->> 2 AS BIGINT)
         FROM {}",
        store.json_rows(1)
    ))
    .bind(serde_json::to_string(&consents)?)
    .bind(wording_id)
    .bind(detail)
    .execute(&mut *conn)
    .await
    .context("while recording imported consent")?;
    Ok(())
}

async fn insert_topics(
    store: &Store,
    conn: &mut Conn,
    new: &[&ImportedReader<'_>],
) -> anyhow::Result<()> {
    let topics: Vec<_> = new
        .iter()
        .flat_map(|r| r.topics.iter().map(move |t| json!([r.id, t])))
        .collect();
    if topics.is_empty() {
        return Ok(());
    }
    sqlx::query(&format!(
        "INSERT INTO preference_topics (subscriber_id, category)
         SELECT value ->> 0, value ->> 1 FROM {} WHERE true ON CONFLICT DO NOTHING",
        store.json_rows(1)
    ))
    .bind(serde_json::to_string(&topics)?)
    .execute(&mut *conn)
    .await
    .context("while importing topics")?;
    Ok(())
}

/// Which of these address hashes are on the suppression list.
pub async fn suppressed(
    store: &Store,
    conn: &mut Conn,
    hashes: &[String],
) -> anyhow::Result<HashSet<String>> {
    if hashes.is_empty() {
        return Ok(HashSet::new());
    }
    let found: Vec<String> = sqlx::query_scalar(&format!(
        "SELECT email_hash FROM suppressions WHERE email_hash IN ({})",
        store.json_list(1)
    ))
    .bind(serde_json::to_string(hashes)?)
    .fetch_all(&mut *conn)
    .await
    .context("while checking suppressions")?;
    Ok(found.into_iter().collect())
}
