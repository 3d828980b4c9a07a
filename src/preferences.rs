//! The preference centre's rules: digest on or off (a consent change, so an
//! event), frequency, topics and pause (plain preferences).

use crate::{
    clock::Clock,
    consent::{self, Action, DigestConsent, Evidence, Source},
    store::{self, Store, preferences::PreferenceRecord},
};

/// What a reader sees and can change.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PreferenceView {
    pub digest: DigestConsent,
    pub preferences: PreferenceRecord,
    /// Every category there is, to choose topics from.
    pub known_topics: Vec<String>,
}

/// A submitted change.
#[derive(Debug, Clone)]
pub struct PreferenceChange {
    pub digest_on: bool,
    /// The wording shown beside the digest box; needed to turn it on.
    pub wording_id: Option<String>,
    pub frequency: String,
    pub paused: bool,
    pub topics: Vec<String>,
}

/// Why a change was refused; shown to the reader.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PreferenceError {
    #[error("Frequency must be daily or weekly.")]
    Frequency,
    #[error("One of the topics does not exist.")]
    Topic,
    #[error(
        "The wording of the digest consent has changed. Please read it again and tick the box if you agree."
    )]
    StaleWording,
}

pub async fn view(store: &Store, subscriber_id: &str) -> anyhow::Result<PreferenceView> {
    let mut conn = store.pool().acquire().await?;
    Ok(PreferenceView {
        digest: consent::digest_consent(&mut conn, subscriber_id).await?,
        preferences: store::preferences::load(&mut conn, subscriber_id).await?,
        known_topics: store::preferences::known_topics(&mut conn).await?,
    })
}

/// Applies a change in one transaction. Turning the digest on takes the
/// ticked box and the wording shown (a fresh affirmative act), recorded as a
/// confirmed consent: the reader proved the address by signing in or by the
/// emailed link. Turning it off withdraws, cancelling pending digests.
pub async fn update(
    store: &Store,
    clock: &Clock,
    subscriber_id: &str,
    change: &PreferenceChange,
    source: Source,
    evidence: &Evidence,
) -> anyhow::Result<Result<(), PreferenceError>> {
    if change.frequency != "daily" && change.frequency != "weekly" {
        return Ok(Err(PreferenceError::Frequency));
    }
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    let known = store::preferences::known_topics(&mut tx).await?;
    if change.topics.iter().any(|topic| !known.contains(topic)) {
        return Ok(Err(PreferenceError::Topic));
    }
    let record = PreferenceRecord {
        frequency: change.frequency.clone(),
        paused: change.paused,
        topics: change.topics.clone(),
    };
    store::preferences::save(&mut tx, subscriber_id, &record, now).await?;
    let current = consent::digest_consent(&mut tx, subscriber_id).await?;
    match (change.digest_on, current) {
        (true, DigestConsent::On) | (false, DigestConsent::Off) => {}
        (true, _) => {
            let wording = change.wording_id.as_deref().unwrap_or_default();
            if !store::consent::text_exists(&mut tx, wording, consent::NEWSLETTER).await? {
                return Ok(Err(PreferenceError::StaleWording));
            }
            consent::record_newsletter(
                &mut tx,
                subscriber_id,
                Action::Confirmed,
                wording,
                source,
                evidence,
                now,
            )
            .await?;
        }
        (false, _) => {
            consent::withdraw_newsletter(&mut tx, subscriber_id, source, evidence, now).await?;
        }
    }
    tx.commit().await?;
    Ok(Ok(()))
}
