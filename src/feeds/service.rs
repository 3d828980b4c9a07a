//! `Feeds`: the configured feeds and editors' ones as the console sees
//! them, over the store and the clock.

use std::sync::Arc;

use crate::{
    audit::{self, Actor},
    clock::Clock,
    domain::Feed,
    store::{
        Store,
        feeds::{self, FeedState},
    },
};

/// Feeds for handlers.
#[derive(Clone)]
pub struct Feeds {
    store: Store,
    clock: Clock,
    /// `[[feeds]]`, parsed with the config.
    configured: Arc<[Feed]>,
}

impl Feeds {
    pub fn new(store: Store, clock: Clock, configured: Vec<Feed>) -> Self {
        Self {
            store,
            clock,
            configured: configured.into(),
        }
    }

    /// The configured feeds and those editors added (see [`super::all`]).
    pub async fn all(&self) -> anyhow::Result<Vec<Feed>> {
        super::all(&self.store, &self.configured).await
    }

    /// Every polled feed's last poll and its result.
    pub async fn polls(&self) -> anyhow::Result<Vec<FeedState>> {
        feeds::states(&self.store).await
    }

    /// Adds a feed for an editor; `Err(why)` for one refused (see [`super::add`]).
    pub async fn add(
        &self,
        url: &str,
        categories: Vec<String>,
        actor: &Actor,
    ) -> anyhow::Result<Result<(), String>> {
        let (store, clock) = (&self.store, &self.clock);
        super::add(store, clock, &self.configured, url, categories, actor).await
    }

    /// Stops polling an editor's feed; `false` if no editor added it.
    pub async fn remove(&self, url: &str, actor: &Actor) -> anyhow::Result<bool> {
        super::remove(&self.store, &self.clock, url, actor).await
    }

    /// Polls the feed at `url` at once, whatever its schedule, and writes
    /// the audit log's line; `false` if no feed has this address. The
    /// outcome, success or failure, is kept as the feed's last result.
    pub async fn poll_now(&self, url: &str, actor: &Actor) -> anyhow::Result<bool> {
        let Some(feed) = self
            .all()
            .await?
            .into_iter()
            .find(|f| f.url.as_str() == url)
        else {
            return Ok(false);
        };
        let outcome = super::poll(&self.store, &self.clock, &feed).await;
        let mut conn = self.store.pool().acquire().await?;
        let detail = serde_json::json!({ "ok": outcome.is_ok() });
        let now = self.clock.now_ms();
        audit::record(&mut conn, now, actor, "feed.poll", url, detail).await?;
        Ok(true)
    }
}
