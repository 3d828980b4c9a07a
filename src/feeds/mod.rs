//! Article feeds: `[[feeds]]` entries polled on their own cron by the
//! scheduler. New entries (by GUID, or link) become articles with sanitised
//! HTML (E-28), checked as every article is; an entry that changes later
//! updates its article, which digests that sent it do not send again.
//! Fetching follows S-04: http(s) only; private, loopback and link-local
//! addresses refused unless the feed says `allow_private`, checked
//! on every connection (redirects included, and after DNS, so a name cannot
//! rebind to an inside address); at most 5 redirects, 5 MiB and 20 seconds.
//!
//! The configured feeds come parsed from `config`; editors' feeds are
//! parsed here, from their rows, by the same [`Feed::parse`].

mod entries;
mod fetch;
mod poll;
mod service;

pub use entries::articles_in;
pub use poll::{Polled, poll, poll_due};
pub use service::Feeds;

use crate::{
    clock::Clock,
    domain::{Feed, FeedConfig, every_quarter_hour},
    store::{Store, feeds},
};

/// The configured feeds and those editors added. An editor's feed that no
/// longer passes the checks is skipped, with a warning, rather than
/// stopping every other.
pub async fn all(store: &Store, configured: &[Feed]) -> anyhow::Result<Vec<Feed>> {
    let mut all = configured.to_vec();
    for row in feeds::editor_feeds(store).await? {
        let config = FeedConfig {
            url: row.url,
            poll: row.poll,
            categories: serde_json::from_str(&row.categories).unwrap_or_default(),
            allow_private: false,
        };
        match Feed::parse(&config) {
            Ok(mut feed) => {
                feed.from_config = false;
                all.push(feed);
            }
            Err(error) => tracing::warn!(feed = %config.url, %error, "an editor's feed is skipped"),
        }
    }
    Ok(all)
}

/// Adds a feed for an editor, polled every quarter hour; `Err(why)` for an
/// address that is not a public http(s) one, or a feed already polled.
pub async fn add(
    store: &Store,
    clock: &Clock,
    configured: &[Feed],
    url: &str,
    categories: Vec<String>,
    actor: &crate::audit::Actor,
) -> anyhow::Result<Result<(), String>> {
    let config = FeedConfig {
        url: url.trim().to_owned(),
        poll: every_quarter_hour(),
        categories,
        allow_private: false,
    };
    let feed = match Feed::parse(&config) {
        Ok(feed) => feed,
        Err(why) => return Ok(Err(why)),
    };
    // Secrets in an address would reach the audit log and the console.
    if !feed.url.username().is_empty() || feed.url.password().is_some() {
        return Ok(Err(
            "an address with a user name or password is not accepted".into(),
        ));
    }
    if all(store, configured)
        .await?
        .iter()
        .any(|f| f.url == feed.url)
    {
        return Ok(Err("this feed is polled already".into()));
    }
    let row = feeds::EditorFeed {
        url: feed.url.to_string(),
        categories: serde_json::to_string(&config.categories)?,
        poll: config.poll,
    };
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    if !feeds::add_editor_feed(&mut tx, &row, now).await? {
        return Ok(Err("this feed is polled already".into()));
    }
    let detail = serde_json::json!({ "categories": config.categories });
    crate::audit::record(&mut tx, now, actor, "feed.add", &row.url, detail).await?;
    tx.commit().await?;
    Ok(Ok(()))
}

/// Stops polling an editor's feed; its articles stay. `false` if no editor added it.
pub async fn remove(
    store: &Store,
    clock: &Clock,
    url: &str,
    actor: &crate::audit::Actor,
) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    if !feeds::remove_editor_feed(&mut tx, url).await? {
        return Ok(false);
    }
    crate::audit::record(
        &mut tx,
        now,
        actor,
        "feed.remove",
        url,
        serde_json::json!({}),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}
