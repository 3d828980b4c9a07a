//! Fetching a feed, S-04-safe: http(s) only, every connection's address
//! checked after DNS (redirects included, so a name cannot rebind to an
//! inside address), at most 5 redirects, 5 MiB and 20 seconds.

use std::{net::SocketAddr, sync::Arc, time::Duration};

use anyhow::Context;
use futures_util::StreamExt;
use reqwest::{
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};

use crate::domain::{Feed, check_feed_url, is_public};

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
    reqwest::Client::builder()
        // Through a proxy, only the proxy's name would be resolved (and
        // checked): the feed's own host must be.
        .no_proxy()
        .timeout(TIMEOUT)
        .user_agent(concat!(
            "Broadsheet/",
            env!("CARGO_PKG_VERSION"),
            " (feed reader)"
        ))
        .dns_resolver(Arc::new(PublicResolver { allow_private }))
        .redirect(redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                return attempt.error(format!("more than {MAX_REDIRECTS} redirects"));
            }
            match check_feed_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(format!("redirect refused: {reason}")),
            }
        }))
        .build()
        .context("cannot set up the feed client")
}

/// Resolves names with the system resolver and keeps public addresses only
/// (or every address for a feed that allows private ones).
struct PublicResolver {
    allow_private: bool,
}

impl Resolve for PublicResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| allow_private || is_public(a.ip()))
                .collect();
            if found.is_empty() {
                return Err(format!(
                    "{host} resolves to no public address (set allow_private = true to fetch it)"
                )
                .into());
            }
            let addrs: Addrs = Box::new(found.into_iter());
            Ok(addrs)
        })
    }
}
