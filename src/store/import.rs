//! Many readers at once, in multi-row statements (subscriber import).

use anyhow::Context;

use super::Conn;

/// A reader from an import file, validated.
pub struct ImportedReader<'a> {
    pub id: String,
    pub email: &'a str,
    pub email_canonical: &'a str,
    pub name: Option<&'a str>,
    pub topics: &'a [String],
    pub consented_at: i64,
}

/// `($1, $2, …), ($n, …)` for `rows` rows of `columns` parameters.
fn values(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", super::placeholders(row * columns + 1, columns)))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Inserts the readers not known yet, each confirmed, with an account, a
/// confirmed digest consent (source `import`, the given time, `detail`)
/// and their topics. Returns the ids of those inserted; known addresses are
/// left exactly as they are (a withdrawal stays a withdrawal).
pub async fn insert_batch(
    conn: &mut Conn,
    readers: &[ImportedReader<'_>],
    wording_id: &str,
    detail: &str,
    now: i64,
) -> anyhow::Result<Vec<String>> {
    if readers.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "INSERT INTO subscribers (id, email, email_canonical, name, status, created_at, updated_at, confirmed_at)
         VALUES {} ON CONFLICT (email_canonical) DO NOTHING RETURNING id",
        values(readers.len(), 8)
    );
    let mut query = sqlx::query_scalar::<_, String>(&sql);
    for r in readers {
        query = query
            .bind(&r.id)
            .bind(r.email)
            .bind(r.email_canonical)
            .bind(r.name)
            .bind("confirmed")
            .bind(now)
            .bind(now)
            .bind(r.consented_at);
    }
    let inserted = query
        .fetch_all(&mut *conn)
        .await
        .context("while importing readers")?;
    let new: Vec<&ImportedReader<'_>> = readers
        .iter()
        .filter(|r| inserted.contains(&r.id))
        .collect();
    if new.is_empty() {
        return Ok(inserted);
    }
    let sql = format!(
        "INSERT INTO accounts (subscriber_id, username, created_at) VALUES {} ON CONFLICT DO NOTHING",
        values(new.len(), 3)
    );
    let mut query = sqlx::query(&sql);
    for r in &new {
        query = query.bind(&r.id).bind(r.email_canonical).bind(now);
    }
    query
        .execute(&mut *conn)
        .await
        .context("while creating imported accounts")?;
    let sql = format!(
        "INSERT INTO consent_events
           (id, subject_kind, subject, purpose, action, text_id, source, source_detail, created_at)
         VALUES {}",
        values(new.len(), 9)
    );
    let mut query = sqlx::query(&sql);
    for r in &new {
        query = query
            .bind(super::new_id())
            .bind("subscriber")
            .bind(&r.id)
            .bind("newsletter")
            .bind("confirmed")
            .bind(wording_id)
            .bind("import")
            .bind(detail)
            .bind(r.consented_at);
    }
    query
        .execute(&mut *conn)
        .await
        .context("while recording imported consent")?;
    let topics: Vec<(&str, &str)> = new
        .iter()
        .flat_map(|r| r.topics.iter().map(move |t| (r.id.as_str(), t.as_str())))
        .collect();
    if !topics.is_empty() {
        let sql = format!(
            "INSERT INTO preference_topics (subscriber_id, category) VALUES {} ON CONFLICT DO NOTHING",
            values(topics.len(), 2)
        );
        let mut query = sqlx::query(&sql);
        for (id, topic) in &topics {
            query = query.bind(*id).bind(*topic);
        }
        query
            .execute(&mut *conn)
            .await
            .context("while importing topics")?;
    }
    Ok(inserted)
}

/// Which of these address hashes are on the suppression list.
pub async fn suppressed(conn: &mut Conn, hashes: &[String]) -> anyhow::Result<Vec<String>> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT email_hash FROM suppressions WHERE email_hash IN ({})",
        super::placeholders(1, hashes.len())
    );
    let mut query = sqlx::query_scalar(&sql);
    for hash in hashes {
        query = query.bind(hash);
    }
    query
        .fetch_all(&mut *conn)
        .await
        .context("while checking suppressions")
}
