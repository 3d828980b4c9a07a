//! Article feeds: `[[feeds]]` entries polled on their own cron by the
//! scheduler. New entries (by GUID, or link) become articles with sanitised
//! HTML (E-28), checked as every article is; an entry that changes later
//! updates its article, which digests that sent it do not send again.
//! Fetching follows S-04: http(s) only; private, loopback and link-local
//! addresses refused unless the feed says `allow_private`, checked
//! on every connection (redirects included, and after DNS, so a name cannot
//! rebind to an inside address); at most 5 redirects, 5 MiB and 20 seconds.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use croner::{Cron, parser::CronParser, parser::Seconds};
use futures_util::StreamExt;
use reqwest::{
    Url,
    dns::{Addrs, Name, Resolve, Resolving},
    redirect,
};

use crate::{
    articles::{ArticleInput, MAX_CATEGORIES, NewArticle, valid_category},
    clock::Clock,
    config::FeedConfig,
    digest::whole_second,
    domain::content_hash,
    store::{Store, feeds},
};

const MAX_BYTES: usize = 5 * 1024 * 1024;
const TIMEOUT: Duration = Duration::from_secs(20);
const MAX_REDIRECTS: usize = 5;

/// A configured feed, checked.
#[derive(Clone)]
pub struct Feed {
    pub url: Url,
    pub categories: Vec<String>,
    pub allow_private: bool,
    /// From config.toml (the operator's), or added by an editor.
    pub from_config: bool,
    poll: Cron,
}

impl Feed {
    pub fn parse(config: &FeedConfig) -> Result<Self, String> {
        if config.categories.len() > MAX_CATEGORIES
            || !config.categories.iter().all(|c| valid_category(c))
        {
            return Err(format!(
                "at most {MAX_CATEGORIES} categories, each 1 to 50 characters without commas"
            ));
        }
        let url = Url::parse(&config.url).map_err(|e| format!("url is not an address: {e}"))?;
        check_url(&url, config.allow_private)?;
        let poll = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .dom_and_dow(true)
            .build()
            .parse(&config.poll)
            .map_err(|e| {
                format!(
                    "poll {:?} is not a 5-field cron expression: {e}",
                    config.poll
                )
            })?;
        Ok(Self {
            url,
            categories: config.categories.clone(),
            allow_private: config.allow_private,
            from_config: true,
            poll,
        })
    }

    /// The latest poll time at or before `now` (UTC), in whole seconds so
    /// every instance names it alike.
    fn last_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.poll
            .find_previous_occurrence(&whole_second(now), true)
            .ok()
            .map(whole_second)
    }
}

/// Every configured feed.
pub fn feeds(configs: &[FeedConfig]) -> anyhow::Result<Vec<Feed>> {
    configs
        .iter()
        .map(|c| Feed::parse(c).map_err(|e| anyhow::anyhow!("feeds {:?}: {e}", c.url)))
        .collect()
}

/// The configured feeds and those editors added. An editor's feed that no
/// longer passes the checks is skipped, with a warning, rather than
/// stopping every other.
pub async fn all(store: &Store, configs: &[FeedConfig]) -> anyhow::Result<Vec<Feed>> {
    let mut all = feeds(configs)?;
    for row in feeds::editor_feeds(store).await? {
        let config = FeedConfig {
            url: row.url,
            poll: row.poll,
            categories: serde_json::from_str(&row.categories).unwrap_or_default(),
            allow_private: false,
        };
        match Feed::parse(&config) {
            Ok(feed) => all.push(Feed {
                from_config: false,
                ..feed
            }),
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
    configs: &[FeedConfig],
    url: &str,
    categories: Vec<String>,
    actor: &crate::audit::Actor,
) -> anyhow::Result<Result<(), String>> {
    let config = FeedConfig {
        url: url.trim().to_owned(),
        poll: crate::config::every_quarter_hour(),
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
    if all(store, configs).await?.iter().any(|f| f.url == feed.url) {
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
                tracing::warn!(feed = %feed.url, error = format!("{error:#}"), "feed poll failed")
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
        Err(error) => format!("failed: {error:#}"),
    };
    feeds::record_result(store, feed.url.as_str(), clock.now_ms(), &summary).await?;
    result
}

/// A feed's entries as articles, each with the GUID it is known by, and
/// how many entries the feed held (some may not make an article). Pure, so
/// the feed fuzz target runs it.
pub fn articles_in(
    body: &[u8],
    categories: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, Vec<(String, NewArticle)>)> {
    let parsed = feed_rs::parser::parse(body).context("not an RSS or Atom feed")?;
    let source = parsed.title.map(|t| t.content).unwrap_or_default();
    let entries = parsed.entries.len();
    let articles = parsed
        .entries
        .into_iter()
        .filter_map(|entry| from_entry(entry, &source, categories, now))
        .collect();
    Ok((entries, articles))
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

/// An entry as an article, with the GUID it is known by; `None` for an
/// entry that makes no valid article, by the rules every article follows.
fn from_entry(
    entry: feed_rs::model::Entry,
    source: &str,
    defaults: &[String],
    now: DateTime<Utc>,
) -> Option<(String, NewArticle)> {
    let link = entry.links.first().map(|l| l.href.clone());
    // feed-rs makes up an id from the content when a feed gives none; the
    // link is steadier then.
    let guid = if entry.id.is_empty() {
        link.clone()?
    } else {
        entry.id
    };
    let summary = entry.summary.map(|s| s.content);
    let mut body = entry
        .content
        .and_then(|c| c.body)
        .or_else(|| summary.clone())
        .unwrap_or_default();
    let teaser = crate::articles::teaser(plain_text(summary.as_deref().unwrap_or(&body)));
    if let Some(link) = &link {
        body.push_str(&format!(
            "<p><a href=\"{}\">Read the original</a></p>",
            link.replace('"', "%22")
        ));
    }
    // An entry's own terms are hints: those no article may carry are left
    // out rather than the entry, and the feed's own come first.
    let mut categories: Vec<String> = defaults.to_vec();
    for category in entry.categories {
        let term = category.term.trim().to_lowercase();
        if categories.len() < MAX_CATEGORIES && valid_category(&term) && !categories.contains(&term)
        {
            categories.push(term);
        }
    }
    let input = ArticleInput {
        title: entry
            .title
            .map(|t| plain_text(&t.content))
            .unwrap_or_default(),
        slug: None,
        author: Some(
            entry
                .authors
                .first()
                .map_or_else(|| source.to_owned(), |a| a.name.clone()),
        ),
        categories,
        teaser: Some(teaser),
        // A date in the future would hold the entry back from digests.
        published_at: Some(entry.published.or(entry.updated).unwrap_or(now).min(now)),
        body_markdown: String::new(),
    };
    match input.validate_html(&body) {
        Ok(article) => Some((guid, article)),
        Err(error) => {
            tracing::debug!(%guid, %error, "a feed entry is skipped");
            None
        }
    }
}

/// HTML to plain text: tags dropped, the common entities decoded (templates
/// escape again when they show it).
fn plain_text(html: &str) -> String {
    let text = ammonia::Builder::empty().clean(html).to_string();
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Fetches at most `MAX_BYTES` from the feed, S-04-safe.
async fn fetch(feed: &Feed) -> anyhow::Result<Vec<u8>> {
    let allow_private = feed.allow_private;
    let client = reqwest::Client::builder()
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
            match check_url(attempt.url(), allow_private) {
                Ok(()) => attempt.follow(),
                Err(reason) => attempt.error(format!("redirect refused: {reason}")),
            }
        }))
        .build()
        .context("cannot set up the feed client")?;
    let response = client
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

/// http(s) only; an address written as an IP must be public unless allowed.
/// Names are checked after DNS, by [`PublicResolver`].
fn check_url(url: &Url, allow_private: bool) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https are fetched, not {}",
            url.scheme()
        ));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the address has no host".into()),
    };
    if allow_private || is_public(ip) {
        Ok(())
    } else {
        Err(format!(
            "{ip} is a private address (set allow_private = true to fetch it)"
        ))
    }
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

/// Not loopback, private, link-local, shared, documentation, multicast or
/// otherwise reserved: an address on the public internet.
fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || v4.is_multicast()
                || a == 0
                || (a == 100 && (64..128).contains(&b)) // shared, RFC 6598
                || (a == 198 && (b == 18 || b == 19)) // benchmarking
                || (a == 192 && b == 0 && v4.octets()[2] == 0) // IETF protocol assignments
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let segments = v6.segments();
            let first = segments[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local
                || (first & 0xffc0) == 0xfe80 // link-local
                || (first & 0xffc0) == 0xfec0 // site-local (deprecated)
                || (first == 0x2001 && segments[1] == 0x0db8) // documentation
                // Ranges that carry an IPv4 address inside: NAT64, 6to4,
                // IPv4-compatible. Refused rather than unwrapped.
                || (first == 0x0064 && segments[1] == 0xff9b)
                || first == 0x2002
                || segments[..6].iter().all(|&s| s == 0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(url: &str) -> FeedConfig {
        FeedConfig {
            url: url.into(),
            poll: "*/15 * * * *".into(),
            categories: Vec::new(),
            allow_private: false,
        }
    }

    #[test]
    fn only_public_http_addresses_are_accepted() {
        assert!(Feed::parse(&config("https://news.example/feed.xml")).is_ok());
        for bad in [
            "ftp://news.example/feed.xml",
            "file:///etc/passwd",
            "http://127.0.0.1/feed",
            "http://10.1.2.3/feed",
            "http://169.254.169.254/latest/meta-data",
            "http://[::1]/feed",
            "http://[::ffff:192.168.0.1]/feed",
            "http://100.64.0.1/feed",
        ] {
            assert!(Feed::parse(&config(bad)).is_err(), "{bad}");
        }
        let mut allowed = config("http://127.0.0.1/feed");
        allowed.allow_private = true;
        assert!(Feed::parse(&allowed).is_ok());
    }

    #[test]
    fn polls_are_five_field_crons() {
        let mut bad = config("https://news.example/feed.xml");
        bad.poll = "0 */15 * * * *".into();
        assert!(Feed::parse(&bad).err().unwrap().contains("5-field"));
        bad.poll = "0 6 * * 1-5".into();
        assert!(Feed::parse(&bad).is_ok());
    }

    #[test]
    fn public_addresses_are_public() {
        for ip in ["93.184.216.34", "2a00:1450:4001:82b::200e"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn text_loses_tags_and_keeps_its_characters() {
        assert_eq!(
            plain_text("<p>Fish &amp; chips <script>x</script><b>now</b></p>"),
            "Fish & chips now"
        );
    }
}
