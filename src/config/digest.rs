//! `[digest]` and `[[feeds]]`, parsed once as they are read: the schedules
//! into [`Schedule`]s, the digest sender into a mailbox, each feed into a
//! [`Feed`]. A bad value stops loading with the key and the value named.

use std::time::Duration;

use lettre::message::Mailbox;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

use super::duration;
use crate::domain::{Feed, FeedConfig, Frequency, Schedule, ScheduleConfig};

/// `[digest]`, parsed. A schedule's own age limit defaults to the section's
/// `max_article_age_h`, so the section is parsed as a whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(try_from = "DigestFile", into = "DigestFile")]
pub struct DigestConfig {
    pub schedules: Vec<Schedule>,
    /// A digest carries every article its schedule has not sent yet, if it
    /// was published at most this long ago (never less than the schedule's
    /// period), so an imported archive does not flood it.
    pub max_article_age: Duration,
    /// Identifies the list in `List-Id` (RFC 2919), e.g. `digest.example.com`.
    pub list_id: String,
    /// Sender of digests; `None` (empty in the file): `mail.from` (E-13).
    pub from: Option<Mailbox>,
    /// An address for `mailto:` unsubscribes in `List-Unsubscribe`, if any.
    pub unsubscribe_mailto: String,
}

impl Default for DigestConfig {
    fn default() -> Self {
        DigestFile::default()
            .try_into()
            .expect("the default digest section is valid")
    }
}

/// `[digest]` as written.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct DigestFile {
    schedules: Vec<ScheduleConfig>,
    #[serde(rename = "max_article_age_h", with = "duration::hours")]
    max_article_age: Duration,
    list_id: String,
    from: String,
    unsubscribe_mailto: String,
}

impl Default for DigestFile {
    fn default() -> Self {
        Self {
            schedules: vec![ScheduleConfig {
                name: "daily".into(),
                cron: "0 0 7 * * *".into(),
                timezone: "UTC".into(),
                frequency: Frequency::Daily,
                subject: None,
                max_article_age_h: None,
            }],
            max_article_age: Duration::from_secs(72 * 3600),
            list_id: "digest.localhost".into(),
            from: String::new(),
            unsubscribe_mailto: String::new(),
        }
    }
}

impl TryFrom<DigestFile> for DigestConfig {
    type Error = String;

    fn try_from(file: DigestFile) -> Result<Self, String> {
        if file.max_article_age.is_zero() {
            return Err("digest.max_article_age_h must be at least 1".into());
        }
        let schedules = file
            .schedules
            .iter()
            .map(|schedule| {
                Schedule::parse(schedule, file.max_article_age)
                    .map_err(|e| format!("digest.schedules {:?}: {e}", schedule.name))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let from = match file.from.as_str() {
            "" => None,
            text => Some(
                text.parse::<Mailbox>()
                    .map_err(|e| format!("digest.from must be an address (got {text:?}): {e}"))?,
            ),
        };
        Ok(Self {
            schedules,
            max_article_age: file.max_article_age,
            list_id: file.list_id,
            from,
            unsubscribe_mailto: file.unsubscribe_mailto,
        })
    }
}

impl From<DigestConfig> for DigestFile {
    fn from(digest: DigestConfig) -> Self {
        Self {
            schedules: digest.schedules.iter().map(Schedule::to_config).collect(),
            max_article_age: digest.max_article_age,
            list_id: digest.list_id,
            from: digest.from.map(|from| from.to_string()).unwrap_or_default(),
            unsubscribe_mailto: digest.unsubscribe_mailto,
        }
    }
}

/// `[[feeds]]`: each entry parsed into a [`Feed`] as it is read.
pub(super) fn read_feeds<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Vec<Feed>, D::Error> {
    Vec::<FeedConfig>::deserialize(deserializer)?
        .iter()
        .map(|feed| {
            Feed::parse(feed)
                .map_err(|e| <D::Error as de::Error>::custom(format!("feeds {:?}: {e}", feed.url)))
        })
        .collect()
}

/// The feeds as config.toml writes them.
pub(super) fn write_feeds<S: Serializer>(feeds: &[Feed], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_seq(feeds.iter().map(Feed::to_config))
}
