//! Polling: each feed once per cron time across instances, its new and
//! changed entries stored as articles, the outcome kept as its last result.

use crate::{
    articles::NewArticle,
    clock::Clock,
    domain::{Feed, content_hash},
    store::{Store, feeds},
};

use super::{entries::articles_in, fetch::fetch};

/// What one poll did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Polled {
    pub entries: usize,
    pub new: usize,
    /// Entries imported before whose text changed since.
    pub updated: usize,
    /// Entries that make no valid article (no title, a title with control
    /// characters, no link or id…).
    pub skipped: usize,
}

impl std::fmt::Display for Polled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} entries, {} new", self.entries, self.new)?;
        if self.updated > 0 {
            write!(f, ", {} updated", self.updated)?;
        }
        if self.skipped > 0 {
            write!(f, ", {} skipped as invalid", self.skipped)?;
        }
        Ok(())
    }
}

/// Polls each feed whose cron time has come and that no other instance has
/// polled for that time. A failing feed is recorded and does not stop the rest.
pub async fn poll_due(store: &Store, clock: &Clock, feeds: &[Feed]) -> anyhow::Result<()> {
    let now = clock.now();
    for feed in feeds {
        let Some(fire) = feed.last_fire(now) else {
            continue;
        };
        if !feeds::claim_poll(store, feed.url.as_str(), fire.timestamp_millis()).await? {
            continue;
        }
        match poll(store, clock, feed).await {
            Ok(polled) => tracing::info!(feed = %feed.url, ?polled, "feed polled"),
            Err(error) => {
                tracing::warn!(feed = %feed.url, error = crate::telemetry::error_text(&error), "feed poll failed")
            }
        }
    }
    Ok(())
}

/// Fetches a feed and stores its new entries; the outcome is kept as the
/// feed's last result either way.
pub async fn poll(store: &Store, clock: &Clock, feed: &Feed) -> anyhow::Result<Polled> {
    let result = fetch_and_store(store, clock, feed).await;
    let summary = match &result {
        Ok(polled) => polled.to_string(),
        Err(error) => format!("failed: {}", crate::telemetry::error_text(error)),
    };
    feeds::record_result(store, feed.url.as_str(), clock.now_ms(), &summary).await?;
    result
}

async fn fetch_and_store(store: &Store, clock: &Clock, feed: &Feed) -> anyhow::Result<Polled> {
    let body = fetch(feed).await?;
    let now = clock.now();
    let (entries, articles) = articles_in(&body, &feed.categories, now)?;
    let mut polled = Polled {
        entries,
        new: 0,
        updated: 0,
        skipped: entries.saturating_sub(articles.len()),
    };
    let mut tx = store.begin().await?;
    for (guid, article) in articles {
        let entry = feeds::Entry {
            feed_url: feed.url.as_str(),
            guid: &guid,
            slug_suffix: &content_hash(&format!("{}\0{guid}", feed.url))[..8],
            content_hash: &entry_hash(&article),
        };
        match feeds::save_entry(
            &mut tx,
            &entry,
            &article.record(now),
            now.timestamp_millis(),
        )
        .await?
        {
            feeds::Saved::New => polled.new += 1,
            feeds::Saved::Updated => polled.updated += 1,
            feeds::Saved::Unchanged => {}
        }
    }
    tx.commit().await?;
    Ok(polled)
}

/// What readers see of an entry: a change to it updates the article. Its
/// date is left out: an article keeps the date it was first published with.
fn entry_hash(article: &NewArticle) -> String {
    content_hash(
        &[
            article.title.as_str(),
            &article.teaser,
            &article.author,
            &article.body_html,
            &article.categories.join(","),
        ]
        .join("\0"),
    )
}
