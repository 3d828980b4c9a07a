//! Readers' digest preferences.

use anyhow::Context;

use super::Conn;

/// Frequency, pause and topics; a reader without a row has the defaults.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PreferenceRecord {
    pub frequency: String,
    pub paused: bool,
    pub topics: Vec<String>,
}

pub async fn load(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<PreferenceRecord> {
    let row: Option<(String, i64)> =
        sqlx::query_as("SELECT frequency, paused FROM preferences WHERE subscriber_id = $1")
            .bind(subscriber_id)
            .fetch_optional(&mut *conn)
            .await
            .context("while reading preferences")?;
    let topics = sqlx::query_scalar(
        "SELECT category FROM preference_topics WHERE subscriber_id = $1 ORDER BY category",
    )
    .bind(subscriber_id)
    .fetch_all(&mut *conn)
    .await
    .context("while reading topics")?;
    let (frequency, paused) = row.unwrap_or_else(|| ("daily".into(), 0));
    Ok(PreferenceRecord {
        frequency,
        paused: paused != 0,
        topics,
    })
}

pub async fn save(
    conn: &mut Conn,
    subscriber_id: &str,
    preferences: &PreferenceRecord,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO preferences (subscriber_id, frequency, paused, updated_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (subscriber_id) DO UPDATE SET
           frequency = excluded.frequency, paused = excluded.paused, updated_at = excluded.updated_at",
    )
    .bind(subscriber_id)
    .bind(&preferences.frequency)
    .bind(i64::from(preferences.paused))
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while saving preferences")?;
    sqlx::query("DELETE FROM preference_topics WHERE subscriber_id = $1")
        .bind(subscriber_id)
        .execute(&mut *conn)
        .await
        .context("while replacing topics")?;
    for topic in &preferences.topics {
        sqlx::query("INSERT INTO preference_topics (subscriber_id, category) VALUES ($1, $2)")
            .bind(subscriber_id)
            .bind(topic)
            .execute(&mut *conn)
            .await
            .context("while saving a topic")?;
    }
    Ok(())
}

/// Every article category, for the topics a reader can choose.
pub async fn known_topics(conn: &mut Conn) -> anyhow::Result<Vec<String>> {
    sqlx::query_scalar("SELECT DISTINCT category FROM article_categories ORDER BY category")
        .fetch_all(&mut *conn)
        .await
        .context("while listing categories")
}
