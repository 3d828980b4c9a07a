//! Feeds' poll state, and which entry became which article.

use anyhow::Context;

use super::{Conn, Store, articles::ArticleRecord};

/// Claims a poll: true for the one instance that moves `last_fire_at` forward.
pub async fn claim_poll(store: &Store, url: &str, fire_at: i64) -> anyhow::Result<bool> {
    sqlx::query(
        "INSERT INTO feeds (url, last_fire_at) VALUES ($1, 0) ON CONFLICT (url) DO NOTHING",
    )
    .bind(url)
    .execute(store.pool())
    .await
    .context("while creating feed state")?;
    let claimed =
        sqlx::query("UPDATE feeds SET last_fire_at = $1 WHERE url = $2 AND last_fire_at < $1")
            .bind(fire_at)
            .bind(url)
            .execute(store.pool())
            .await
            .context("while claiming a feed poll")?;
    Ok(claimed.rows_affected() == 1)
}

/// Keeps a poll's outcome, e.g. "3 new articles" or the error.
pub async fn record_result(store: &Store, url: &str, now: i64, result: &str) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO feeds (url, last_fire_at, polled_at, last_result) VALUES ($1, 0, $2, $3)
         ON CONFLICT (url) DO UPDATE SET polled_at = excluded.polled_at, last_result = excluded.last_result",
    )
    .bind(url)
    .bind(now)
    .bind(result)
        .execute(store.pool())
        .await
        .context("while recording a feed poll")?;
    Ok(())
}

/// A feed's entry, as it is known across polls.
pub struct Entry<'a> {
    pub feed_url: &'a str,
    pub guid: &'a str,
    /// Appended to a slug another article has taken.
    pub slug_suffix: &'a str,
    /// What readers see of the entry, hashed: a change updates the article.
    pub content_hash: &'a str,
}

/// What storing an entry did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Saved {
    New,
    Updated,
    Unchanged,
}

/// Stores a new entry as a new article; an entry stored before whose text
/// changed updates its article, keeping the article's slug, date and
/// publication state (so no digest sends it again). A slug taken by another
/// article gets the suffix, so a feed never overwrites an editor's article.
pub async fn save_entry(
    conn: &mut Conn,
    entry: &Entry<'_>,
    article: &ArticleRecord<'_>,
    now: i64,
) -> anyhow::Result<Saved> {
    let known: Option<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT e.article_id, a.slug, e.content_hash FROM feed_entries e
         JOIN articles a ON a.id = e.article_id WHERE e.feed_url = $1 AND e.guid = $2",
    )
    .bind(entry.feed_url)
    .bind(entry.guid)
    .fetch_optional(&mut *conn)
    .await
    .context("while looking up a feed entry")?;
    match known {
        None => {
            create_entry(conn, entry, article, now).await?;
            Ok(Saved::New)
        }
        Some((_, _, stored)) if stored.as_deref() == Some(entry.content_hash) => {
            Ok(Saved::Unchanged)
        }
        Some((id, slug, stored)) => {
            // Entries stored before hashes were kept: remember this one's,
            // without rewriting what an editor may have corrected.
            let changed = stored.is_some();
            if changed {
                let record = ArticleRecord {
                    slug: &slug,
                    ..*article
                };
                let outcome = super::articles::update(conn, &id, &record, now).await?;
                anyhow::ensure!(
                    outcome == super::articles::EditOutcome::Saved,
                    "article {id} of a feed entry could not be updated: {outcome:?}"
                );
            }
            sqlx::query(
                "UPDATE feed_entries SET content_hash = $1 WHERE feed_url = $2 AND guid = $3",
            )
            .bind(entry.content_hash)
            .bind(entry.feed_url)
            .bind(entry.guid)
            .execute(&mut *conn)
            .await
            .context("while recording a feed entry's hash")?;
            Ok(if changed {
                Saved::Updated
            } else {
                Saved::Unchanged
            })
        }
    }
}

async fn create_entry(
    conn: &mut Conn,
    entry: &Entry<'_>,
    article: &ArticleRecord<'_>,
    now: i64,
) -> anyhow::Result<()> {
    let taken: Option<i64> = sqlx::query_scalar("SELECT 1 FROM articles WHERE slug = $1")
        .bind(article.slug)
        .fetch_optional(&mut *conn)
        .await
        .context("while checking a slug")?;
    let slug = match taken {
        // Slugs are ASCII and at most 100 bytes: keep room for the suffix.
        Some(_) => {
            let base = &article.slug[..article.slug.len().min(90)];
            format!("{}-{}", base.trim_end_matches('-'), entry.slug_suffix)
        }
        None => article.slug.to_owned(),
    };
    let id = super::new_id();
    let record = ArticleRecord {
        slug: &slug,
        ..*article
    };
    // Checked at the write itself: the slug may have been taken meanwhile,
    // and another article is never replaced.
    let written = super::articles::upsert(conn, &id, &record, now).await?;
    anyhow::ensure!(
        matches!(written, super::articles::Upserted::Created),
        "slug {slug} is taken by another article"
    );
    sqlx::query(
        "INSERT INTO feed_entries (feed_url, guid, article_id, content_hash) VALUES ($1, $2, $3, $4)",
    )
    .bind(entry.feed_url)
    .bind(entry.guid)
    .bind(&id)
    .bind(entry.content_hash)
    .execute(&mut *conn)
    .await
    .context("while recording a feed entry")?;
    Ok(())
}

/// A feed's last poll, as the console shows it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Serialize)]
pub struct FeedState {
    pub url: String,
    pub polled_at: Option<i64>,
    pub last_result: Option<String>,
}

pub async fn states(store: &Store) -> anyhow::Result<Vec<FeedState>> {
    sqlx::query_as("SELECT url, polled_at, last_result FROM feeds ORDER BY url")
        .fetch_all(store.pool())
        .await
        .context("while listing feeds")
}

/// A feed an editor added.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EditorFeed {
    pub url: String,
    /// JSON array.
    pub categories: String,
    pub poll: String,
}

pub async fn editor_feeds(store: &Store) -> anyhow::Result<Vec<EditorFeed>> {
    sqlx::query_as("SELECT url, categories, poll FROM editor_feeds ORDER BY url")
        .fetch_all(store.pool())
        .await
        .context("while listing editors' feeds")
}

/// Adds a feed; `false` if it is there already.
pub async fn add_editor_feed(conn: &mut Conn, feed: &EditorFeed, now: i64) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO editor_feeds (url, categories, poll, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (url) DO NOTHING",
    )
    .bind(&feed.url)
    .bind(&feed.categories)
    .bind(&feed.poll)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while adding a feed")?;
    Ok(result.rows_affected() == 1)
}

/// Removes an editor's feed (its articles stay); `false` if there was none.
pub async fn remove_editor_feed(conn: &mut Conn, url: &str) -> anyhow::Result<bool> {
    let result = sqlx::query("DELETE FROM editor_feeds WHERE url = $1")
        .bind(url)
        .execute(&mut *conn)
        .await
        .context("while removing a feed")?;
    Ok(result.rows_affected() == 1)
}
