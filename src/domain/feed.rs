//! Article feeds as configured (`[[feeds]]`) or added by an editor: an
//! http(s) address, a 5-field poll cron in UTC and the feed's own
//! categories, checked once when the feed is read. S-04: an address written
//! as a private, loopback or link-local IP is refused unless the feed says
//! `allow_private`; names are checked after DNS, when fetching (`feeds`).

use std::net::IpAddr;

use chrono::{DateTime, Utc};
use croner::{Cron, parser::CronParser, parser::Seconds};
use serde::{Deserialize, Serialize};
use url::Url;

use super::{
    category::{MAX_CATEGORIES, valid_category},
    network::Reach,
    schedule::whole_second,
};

/// One `[[feeds]]` entry as written (or an editor's feed as stored),
/// before [`Feed::parse`] checks it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedConfig {
    /// The feed's http(s) address.
    pub url: String,
    /// When to poll it: 5-field cron, UTC.
    #[serde(default = "every_quarter_hour")]
    pub poll: String,
    /// Categories given to every article from this feed, beside its own.
    #[serde(default)]
    pub categories: Vec<String>,
    /// Lets the feed live on a private or loopback address (S-04: refused otherwise).
    #[serde(default)]
    pub allow_private: bool,
}

/// The poll cron of a feed that names none, and of every editor's feed.
pub fn every_quarter_hour() -> String {
    "*/15 * * * *".into()
}

/// A feed, checked.
#[derive(Debug, Clone)]
pub struct Feed {
    pub url: Url,
    pub categories: Vec<String>,
    pub allow_private: bool,
    /// From config.toml (the operator's), or added by an editor.
    pub from_config: bool,
    poll: Cron,
    /// The poll cron as written: croner keeps its own, rewritten, form.
    poll_text: String,
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
        check_feed_url(&url, config.allow_private)?;
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
            poll_text: config.poll.clone(),
        })
    }

    /// The entry as written, so the configuration can be written back out
    /// (its defaults are layered under `config.toml` that way).
    pub fn to_config(&self) -> FeedConfig {
        FeedConfig {
            url: self.url.to_string(),
            poll: self.poll_text.clone(),
            categories: self.categories.clone(),
            allow_private: self.allow_private,
        }
    }

    /// The latest poll time at or before `now` (UTC), in whole seconds so
    /// every instance names it alike.
    pub fn last_fire(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.poll
            .find_previous_occurrence(&whole_second(now), true)
            .ok()
            .map(whole_second)
    }
}

/// http(s) only; an address written as an IP must be public unless allowed.
/// Names are checked after DNS, by the fetcher's resolver (`feeds`).
pub fn check_feed_url(url: &Url, allow_private: bool) -> Result<(), String> {
    check_url(url, &Reach::public_or_any(allow_private))
        .map_err(|refused| format!("{refused} (set allow_private = true to fetch it)"))
}

/// http(s) only, and an address written as an IP within `reach` (S-04);
/// a name is checked after DNS, by the resolver of the request's client.
pub fn check_url(url: &Url, reach: &Reach) -> Result<(), String> {
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "only http and https addresses are allowed, not {}",
            url.scheme()
        ));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(ip)) => IpAddr::V4(ip),
        Some(url::Host::Ipv6(ip)) => IpAddr::V6(ip),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err("the address has no host".into()),
    };
    if reach.allows(ip) {
        Ok(())
    } else {
        Err(format!("{ip} is a private address"))
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
    fn a_parsed_feed_is_written_back_as_it_was_given() {
        let mut given = config("https://news.example/feed.xml");
        given.poll = "0 6 * * MON-FRI".into();
        given.categories = vec!["news".into()];
        let written = Feed::parse(&given).unwrap().to_config();
        assert_eq!(
            (written.url, written.poll, written.categories),
            (given.url, given.poll, given.categories)
        );
    }
}
