//! The consent ledger's rules (DESIGN "Consent ledger", G-04…G-10): wording
//! versions, the digest consent of each reader as a query over events, and
//! withdrawal that takes effect at once.

mod evidence;
mod receipt;
mod service;

pub use evidence::Evidence;
pub use receipt::Controller;
pub use service::{Consent, ConsentSettings, Notice};

use crate::{
    clock::Clock,
    domain::{EventType, WebhookEvent, content_hash},
    store::{
        self, Conn, Store,
        consent::{ConsentEvent, Subject},
    },
};

/// The purpose of the digest consent.
pub const NEWSLETTER: &str = "newsletter";
/// Wording purposes that are notices, not consents.
pub const PRIVACY_NOTICE: &str = "privacy_notice";
pub const COOKIE_BANNER: &str = "cookie_banner";

/// A wording shown to readers, identified by the hash of its text (G-05).
#[derive(Debug, Clone, serde::Serialize)]
pub struct Wording {
    pub id: String,
    pub body: String,
}

/// Stores `body` as a version of `purpose`'s wording if it is new, and returns it.
pub async fn register_wording(
    store: &Store,
    clock: &Clock,
    purpose: &str,
    body: &str,
) -> anyhow::Result<Wording> {
    let id = content_hash(&format!("{purpose}\0{body}"));
    let mut conn = store.pool().acquire().await?;
    store::consent::ensure_text(&mut conn, &id, purpose, body, "en", clock.now_ms()).await?;
    Ok(Wording {
        id,
        body: body.to_owned(),
    })
}

/// What a consent event records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Granted,
    Confirmed,
    Withdrawn,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Granted => "granted",
            Self::Confirmed => "confirmed",
            Self::Withdrawn => "withdrawn",
        }
    }
}

/// Where a consent event came from (G-04 "how").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    SignupForm,
    ConfirmationLink,
    AccountPage,
    PreferenceCentre,
    UnsubscribePage,
    /// RFC 8058 one-click POST from a mail client.
    OneClick,
    CookieBanner,
    /// The reader marked a digest as spam (a provider's complaint report).
    Complaint,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignupForm => "signup_form",
            Self::ConfirmationLink => "confirmation_link",
            Self::AccountPage => "account_page",
            Self::PreferenceCentre => "preference_centre",
            Self::UnsubscribePage => "unsubscribe_page",
            Self::OneClick => "one_click_unsubscribe",
            Self::CookieBanner => "cookie_banner",
            Self::Complaint => "complaint",
        }
    }
}

/// A reader's digest consent, derived from their latest newsletter event (G-06).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DigestConsent {
    /// Confirmed: digests may be sent (L-02).
    On,
    /// Given at signup, waiting for the double opt-in.
    AwaitingConfirmation,
    Off,
}

pub async fn digest_consent(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<DigestConsent> {
    let latest =
        store::consent::latest(conn, Subject::Subscriber(subscriber_id), NEWSLETTER).await?;
    Ok(match latest.as_ref().map(|(action, _)| action.as_str()) {
        Some("confirmed") => DigestConsent::On,
        Some("granted") => DigestConsent::AwaitingConfirmation,
        _ => DigestConsent::Off,
    })
}

/// Appends a newsletter event for a reader.
pub async fn record_newsletter(
    conn: &mut Conn,
    subscriber_id: &str,
    action: Action,
    wording_id: &str,
    source: Source,
    evidence: &Evidence,
    now: i64,
) -> anyhow::Result<()> {
    let event = ConsentEvent {
        subject: Subject::Subscriber(subscriber_id),
        purpose: NEWSLETTER,
        action: action.as_str(),
        text_id: wording_id,
        source: source.as_str(),
        ip: evidence.ip.as_deref(),
        user_agent: evidence.user_agent.as_deref(),
        notice_id: evidence.notice_id.as_deref(),
    };
    store::consent::record(conn, &event, now).await?;
    let data = serde_json::json!({
        "purpose": NEWSLETTER,
        "action": action.as_str(),
        "source": source.as_str(),
        "wording_id": wording_id,
    });
    let changed = WebhookEvent::reader(EventType::ConsentChanged, subscriber_id, data);
    store::webhooks::queue(conn, &changed, now).await?;
    Ok(())
}

/// Withdraws the digest consent and cancels the reader's pending newsletter
/// mail at once (G-09, G-10). Returns false, recording nothing, when there
/// was no consent to withdraw, so repeating it is harmless.
pub async fn withdraw_newsletter(
    conn: &mut Conn,
    subscriber_id: &str,
    source: Source,
    now: i64,
) -> anyhow::Result<bool> {
    let latest =
        store::consent::latest(conn, Subject::Subscriber(subscriber_id), NEWSLETTER).await?;
    let Some((action, wording)) = latest else {
        return Ok(false);
    };
    if action == Action::Withdrawn.as_str() {
        return Ok(false);
    }
    // The withdrawal points at the wording that was consented to. It keeps
    // no IP or user agent: those belong only to the proof of opt-in (G-07).
    let no_evidence = Evidence::default();
    record_newsletter(
        conn,
        subscriber_id,
        Action::Withdrawn,
        &wording,
        source,
        &no_evidence,
        now,
    )
    .await?;
    let cancelled = store::deliveries::cancel_pending_for(conn, subscriber_id).await?;
    let data = serde_json::json!({ "source": source.as_str() });
    let event = WebhookEvent::reader(EventType::SubscriberUnsubscribed, subscriber_id, data);
    store::webhooks::queue(conn, &event, now).await?;
    crate::metrics::reader_event("unsubscribe");
    tracing::info!(event = "consent_withdrawn", %subscriber_id, source = source.as_str(), cancelled, "digest consent withdrawn");
    Ok(true)
}

/// Records a browser's cookie choice: one event per configured category,
/// against its pseudonymous consent id and the banner version (C-08). No IP
/// or user agent: nothing here needs to identify a person.
pub async fn record_cookie_choice(
    store: &Store,
    clock: &Clock,
    consent_id: &str,
    banner_version: &str,
    decisions: &[(&str, bool)],
) -> anyhow::Result<()> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    for (category, accepted) in decisions {
        let purpose = format!("cookies.{category}");
        let action = if *accepted {
            Action::Granted
        } else {
            Action::Withdrawn
        };
        let event = ConsentEvent {
            subject: Subject::Browser(consent_id),
            purpose: &purpose,
            action: action.as_str(),
            text_id: banner_version,
            source: Source::CookieBanner.as_str(),
            ip: None,
            user_agent: None,
            notice_id: None,
        };
        store::consent::record(&mut tx, &event, now).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Unsubscribes a reader in a transaction of its own; harmless to repeat,
/// and harmless for a reader who no longer exists (erased).
pub async fn unsubscribe(
    store: &Store,
    clock: &Clock,
    subscriber_id: &str,
    source: Source,
) -> anyhow::Result<bool> {
    let mut tx = store.begin().await?;
    // Lock the reader first, so a concurrent "turn it on" cannot interleave.
    if !store::subscribers::lock(&mut tx, subscriber_id).await? {
        return Ok(false);
    }
    let withdrawn = withdraw_newsletter(&mut tx, subscriber_id, source, clock.now_ms()).await?;
    tx.commit().await?;
    Ok(withdrawn)
}
