//! Fetching a feed, S-04-safe (`outbound_http`): at most 5 redirects,
//! 5 MiB and 20 seconds.

use std::time::Duration;

use anyhow::Context;
use futures_util::StreamExt;

use crate::{
    domain::{Feed, Reach},
    outbound_http::guarded_client,
};

const MAX_BYTES: usize = 5 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: usize = 5;

/// Fetches at most `MAX_BYTES` from the feed, S-04-safe.
pub(super) async fn fetch(feed: &Feed) -> anyhow::Result<Vec<u8>> {
    let response = client(feed.allow_private)?
        .get(feed.url.clone())
        .send()
        .await
        .context("fetching failed")?;
    anyhow::ensure!(
        response.status().is_success(),
        "the feed answered {}",
        response.status()
    );
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BYTES as u64)
    {
        anyhow::bail!("the feed is larger than {} MiB", MAX_BYTES >> 20);
    }
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.context("reading failed")?;
        anyhow::ensure!(
            body.len() + chunk.len() <= MAX_BYTES,
            "the feed is larger than {} MiB",
            MAX_BYTES >> 20
        );
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A client whose every connection and redirect passes the S-04 checks.
fn client(allow_private: bool) -> anyhow::Result<reqwest::Client> {
    let reach = Reach::public_or_any(allow_private);
    guarded_client(reach, "feed reader", TIMEOUT, MAX_REDIRECTS)
}
