//! The preference centre's rules: digest on or off (a consent change, so an
//! event), frequency, topics and pause (plain preferences).

use crate::{
    clock::Clock,
    consent::{self, Action, DigestConsent, Evidence, Source},
    domain::Frequency,
    signup::Signup,
    store::{self, Conn, Store, preferences::PreferenceRecord},
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
    #[error("Choose one of the frequencies shown: no digest is sent at any other.")]
    Frequency,
    #[error("One of the topics does not exist.")]
    Topic,
    #[error(
        "The wording of the digest consent has changed. Please read it again and tick the box if you agree."
    )]
    StaleWording,
    #[error("This link belongs to a reader who no longer exists.")]
    Gone,
}

/// The preference centre for handlers, over the store and the clock.
#[derive(Clone)]
pub struct Preferences {
    store: Store,
    clock: Clock,
    /// The frequencies a configured schedule sends at: the only ones a
    /// reader is offered (a weekly reader with no weekly schedule would
    /// never get a digest).
    frequencies: std::sync::Arc<Vec<Frequency>>,
}

impl Preferences {
    /// `served`: the schedules' frequencies; with none, every frequency.
    pub fn new(store: Store, clock: Clock, served: &[Frequency]) -> Self {
        let mut frequencies: Vec<Frequency> = [Frequency::Daily, Frequency::Weekly]
            .into_iter()
            .filter(|f| served.contains(f))
            .collect();
        if frequencies.is_empty() {
            frequencies = vec![Frequency::Daily, Frequency::Weekly];
        }
        Self {
            store,
            clock,
            frequencies: std::sync::Arc::new(frequencies),
        }
    }

    /// The frequencies offered, as the form writes them.
    pub fn frequencies(&self) -> Vec<&'static str> {
        self.frequencies.iter().map(|f| f.as_str()).collect()
    }

    /// The reader's preferences, or `None` if the reader no longer exists.
    pub async fn view(&self, subscriber_id: &str) -> anyhow::Result<Option<PreferenceView>> {
        view(&self.store, subscriber_id).await
    }

    /// Applies a change (see [`update`]).
    pub async fn update(
        &self,
        subscriber_id: &str,
        change: &PreferenceChange,
        proof: Proof<'_>,
        evidence: &Evidence,
    ) -> anyhow::Result<Result<Applied, PreferenceError>> {
        let offered =
            parse_frequency(&change.frequency).is_some_and(|f| self.frequencies.contains(&f));
        if !offered {
            return Ok(Err(PreferenceError::Frequency));
        }
        update(
            &self.store,
            &self.clock,
            subscriber_id,
            change,
            proof,
            evidence,
        )
        .await
    }
}

/// The reader's preferences, or `None` if the reader no longer exists
/// (a link from before an erasure).
pub async fn view(store: &Store, subscriber_id: &str) -> anyhow::Result<Option<PreferenceView>> {
    let mut conn = store.pool().acquire().await?;
    if store::subscribers::profile(&mut conn, subscriber_id)
        .await?
        .is_none()
    {
        return Ok(None);
    }
    Ok(Some(PreferenceView {
        digest: consent::digest_consent(&mut conn, subscriber_id).await?,
        preferences: store::preferences::load(&mut conn, subscriber_id).await?,
        known_topics: store::preferences::known_topics(&mut conn).await?,
    }))
}

/// How the reader showed who they are, which decides how turning the digest
/// on is recorded.
pub enum Proof<'a> {
    /// Signed in: a fresh affirmative act on the account page is a confirmed
    /// consent at once.
    SignedIn,
    /// A preferences link from an email, which works for anyone the email was
    /// forwarded to: turning the digest on is recorded as granted and must be
    /// confirmed from the inbox (L-02).
    EmailedLink(&'a Signup),
}

/// What a saved change did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    Saved,
    /// The digest waits for the reader to confirm by email.
    ConfirmationSent,
}

/// Applies a change in one transaction, the reader's row locked first so
/// consent changes for one reader never interleave. Turning the digest off
/// withdraws at once, cancelling pending digests.
pub async fn update(
    store: &Store,
    clock: &Clock,
    subscriber_id: &str,
    change: &PreferenceChange,
    proof: Proof<'_>,
    evidence: &Evidence,
) -> anyhow::Result<Result<Applied, PreferenceError>> {
    let Some(frequency) = parse_frequency(&change.frequency) else {
        return Ok(Err(PreferenceError::Frequency));
    };
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    if !store::subscribers::lock(&mut tx, subscriber_id).await? {
        return Ok(Err(PreferenceError::Gone));
    }
    let known = store::preferences::known_topics(&mut tx).await?;
    if change.topics.iter().any(|topic| !known.contains(topic)) {
        return Ok(Err(PreferenceError::Topic));
    }
    let record = PreferenceRecord {
        frequency: frequency.as_str().to_owned(),
        paused: change.paused,
        topics: change.topics.clone(),
    };
    store::preferences::save(&mut tx, subscriber_id, &record, now).await?;
    let applied =
        match apply_digest_choice(&mut tx, subscriber_id, change, proof, evidence, now).await? {
            Ok(applied) => applied,
            Err(refused) => return Ok(Err(refused)),
        };
    tx.commit().await?;
    Ok(Ok(applied))
}

impl Proof<'_> {
    /// Where the change was made, as its consent event records it.
    fn source(&self) -> Source {
        match self {
            Proof::SignedIn => Source::AccountPage,
            Proof::EmailedLink(_) => Source::PreferenceCentre,
        }
    }
}

/// Records the digest box as the reader left it, if that changes their
/// consent: turning it on needs the wording they were shown to be a
/// current one; turning it off withdraws at once.
async fn apply_digest_choice(
    conn: &mut Conn,
    subscriber_id: &str,
    change: &PreferenceChange,
    proof: Proof<'_>,
    evidence: &Evidence,
    now: i64,
) -> anyhow::Result<Result<Applied, PreferenceError>> {
    let current = consent::digest_consent(conn, subscriber_id).await?;
    match (change.digest_on, current) {
        (true, DigestConsent::On) | (false, DigestConsent::Off) => Ok(Ok(Applied::Saved)),
        (true, _) => {
            let wording = change.wording_id.as_deref().unwrap_or_default();
            if !store::consent::text_exists(conn, wording, consent::NEWSLETTER).await? {
                return Ok(Err(PreferenceError::StaleWording));
            }
            let applied =
                turn_digest_on(conn, subscriber_id, wording, proof, evidence, now).await?;
            Ok(Ok(applied))
        }
        (false, _) => {
            consent::withdraw_newsletter(conn, subscriber_id, proof.source(), now).await?;
            Ok(Ok(Applied::Saved))
        }
    }
}

/// Turns the digest on: confirmed at once for a signed-in reader; through
/// an emailed link, granted until the reader confirms from their inbox.
async fn turn_digest_on(
    conn: &mut Conn,
    subscriber_id: &str,
    wording: &str,
    proof: Proof<'_>,
    evidence: &Evidence,
    now: i64,
) -> anyhow::Result<Applied> {
    let source = proof.source();
    match proof {
        Proof::SignedIn => {
            consent::record_newsletter(
                conn,
                subscriber_id,
                Action::Confirmed,
                wording,
                source,
                evidence,
                now,
            )
            .await?;
            Ok(Applied::Saved)
        }
        Proof::EmailedLink(signup) => {
            consent::record_newsletter(
                conn,
                subscriber_id,
                Action::Granted,
                wording,
                source,
                evidence,
                now,
            )
            .await?;
            signup
                .queue_digest_confirmation(conn, subscriber_id, wording, now)
                .await?;
            Ok(Applied::ConfirmationSent)
        }
    }
}

fn parse_frequency(value: &str) -> Option<Frequency> {
    match value {
        "daily" => Some(Frequency::Daily),
        "weekly" => Some(Frequency::Weekly),
        _ => None,
    }
}
