//! Data rights and retention: export (G-19/G-20), erasure (G-13) and the
//! purges that keep personal data no longer than needed (G-16/G-17).
//! The export format is documented in `docs/export.md`.

use std::{sync::Arc, time::Duration};

use serde_json::{Value, json};

mod suppression;

pub use suppression::{
    move_legacy_suppressions, suppression_hash, suppression_key, suppression_key_file,
};

use crate::{
    clock::{self, Clock},
    config::PrivacyConfig,
    consent,
    domain::{EventType, WebhookEvent},
    store::{
        self, Store, consent::EventWithText, feedback::EventRow, outbox::EmailRecord,
        sessions::SessionRecord, subscribers::Profile, suppressions::SuppressionRow,
    },
};

/// The export schema's name; bump it when a field changes meaning or goes
/// away. New fields keep it: readers of an export ignore what they do not
/// know (docs/export.md).
pub const EXPORT_SCHEMA: &str = "broadsheet.export.v1";

/// A reader's own data rights, over the store, the clock and the
/// suppression key.
#[derive(Clone)]
pub struct Privacy {
    store: Store,
    clock: Clock,
    /// Keys the hashes of erased addresses (G-13).
    suppression_key: Arc<[u8]>,
}

impl Privacy {
    pub fn new(store: Store, clock: Clock, suppression_key: &[u8]) -> Self {
        Self {
            store,
            clock,
            suppression_key: suppression_key.into(),
        }
    }

    /// Everything held about a reader, or `None` if there is no such reader.
    pub async fn export(&self, subscriber_id: &str) -> anyhow::Result<Option<Value>> {
        export(&self.store, &self.clock, subscriber_id).await
    }

    /// Erases a reader at their own request (see [`erase`]).
    pub async fn erase(&self, subscriber_id: &str) -> anyhow::Result<bool> {
        let key = &self.suppression_key;
        erase(&self.store, &self.clock, key, subscriber_id, None).await
    }
}

/// Unix milliseconds as RFC 3339, the form every time in an export takes.
pub use crate::clock::rfc3339;

/// Everything held about a reader, or `None` if there is no such reader.
pub async fn export(
    store: &Store,
    clock: &Clock,
    subscriber_id: &str,
) -> anyhow::Result<Option<Value>> {
    let mut conn = store.pool().acquire().await?;
    let Some(profile) = store::subscribers::profile(&mut conn, subscriber_id).await? else {
        return Ok(None);
    };
    let preferences = store::preferences::load(&mut conn, subscriber_id).await?;
    let digest = consent::digest_consent(&mut conn, subscriber_id).await?;
    let events = store::consent::events_of(&mut conn, subscriber_id).await?;
    let emails = store::outbox::history(&mut conn, subscriber_id).await?;
    let sessions = store::sessions::list(&mut conn, subscriber_id).await?;
    let reports = store::feedback::of_subscriber(&mut conn, subscriber_id).await?;
    let suppression = store::suppressions::of_subscriber(&mut conn, subscriber_id).await?;
    Ok(Some(json!({
        "schema": EXPORT_SCHEMA,
        "exported_at": rfc3339(clock.now_ms()),
        "profile": profile_json(&profile),
        "account": account_json(&profile),
        "preferences": preferences,
        "consent": {
            "digest": digest,
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        },
        "emails": emails.iter().map(email_json).collect::<Vec<_>>(),
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
        "delivery_reports": reports.iter().map(report_json).collect::<Vec<_>>(),
        "suppression": suppression.as_ref().map(suppression_json),
    })))
}

fn profile_json(profile: &Profile) -> Value {
    json!({
        "id": profile.id,
        "email": profile.email,
        "email_canonical": profile.email_canonical,
        "name": profile.name,
        "status": profile.status,
        "signed_up_at": rfc3339(profile.created_at),
        "confirmed_at": profile.confirmed_at.and_then(rfc3339),
    })
}

/// `None` for a reader without an account.
fn account_json(profile: &Profile) -> Option<Value> {
    profile.username.as_ref().map(|username| {
        json!({
            "username": username,
            "created_at": profile.account_created_at.and_then(rfc3339),
            "has_password": profile.has_password != 0,
        })
    })
}

/// A consent event with the wording shown and the privacy notice in force.
fn event_json(e: &EventWithText) -> Value {
    json!({
        "id": e.id,
        "purpose": e.purpose,
        "action": e.action,
        "source": e.source,
        "at": rfc3339(e.created_at),
        "ip": e.ip,
        "user_agent": e.user_agent,
        "wording": { "version": e.text_id, "language": e.text_language, "text": e.text_body },
        "privacy_notice_version": e.notice_id,
    })
}

fn email_json(m: &EmailRecord) -> Value {
    json!({
        "template": m.template,
        "status": m.status,
        "attempts": m.attempts,
        "message_id": m.message_id,
        "queued_at": rfc3339(m.created_at),
        "sent_at": m.sent_at.and_then(rfc3339),
        "last_error": m.last_error,
    })
}

fn session_json(s: &SessionRecord) -> Value {
    json!({
        "signed_in_at": rfc3339(s.created_at),
        "last_seen_at": rfc3339(s.last_seen_at),
        "expires_at": rfc3339(s.expires_at),
    })
}

/// A bounce or complaint reported about mail to the reader.
fn report_json(r: &EventRow) -> Value {
    json!({
        "source": r.source,
        "kind": r.kind,
        "status": r.status,
        "detail": r.detail,
        "occurred_at": rfc3339(r.occurred_at),
        "received_at": rfc3339(r.received_at),
        "campaign_id": r.campaign_id,
    })
}

/// Why, and since when, the reader is no longer mailed. An editor's note
/// is about the reader, so it is theirs to see (GDPR Art. 15).
fn suppression_json(s: &SuppressionRow) -> Value {
    json!({
        "reason": s.reason,
        "created_at": rfc3339(s.created_at),
        "note": s.note,
    })
}

/// Erases a reader: the address survives only as a keyed hash on the
/// suppression list, consent events stay as pseudonymised proof, and
/// everything else goes (G-13). Returns false if there was no such reader.
/// `by` is the editor or CLI acting on the reader's request, written to the
/// audit log in the same transaction; `None` when readers erase themselves.
pub async fn erase(
    store: &Store,
    clock: &Clock,
    key: &[u8],
    subscriber_id: &str,
    by: Option<&crate::audit::Actor>,
) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    let Some(profile) = store::subscribers::profile(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    let hash = suppression_hash(key, &profile.email_canonical);
    store::suppressions::mark_erased(&mut tx, &hash, now).await?;
    let kept = store::consent::pseudonymise(&mut tx, subscriber_id, &hash).await?;
    store::subscribers::delete(&mut tx, subscriber_id).await?;
    // Events about the reader still queued carry no address: it is added
    // as each is sent, and the reader is gone now.
    let erased = WebhookEvent::reader(EventType::SubscriberErased, subscriber_id, json!({}));
    store::webhooks::queue(&mut tx, &erased, now).await?;
    if let Some(actor) = by {
        // The former id only: the address must not outlive the erasure.
        let detail = json!({});
        crate::audit::record(&mut tx, now, actor, "reader.erase", subscriber_id, detail).await?;
    }
    tx.commit().await?;
    // Logged without the address: the hash prefix lets an operator match a request.
    tracing::info!(
        event = "erasure",
        subject = &hash[..12],
        consent_events_kept = kept,
        "reader erased"
    );
    Ok(true)
}

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub unconfirmed_signups: u64,
    pub consent_evidence_cleared: u64,
    pub tokens: u64,
    pub sessions: u64,
    /// Editors' sessions past their absolute timeout or long idle (their
    /// own, shorter idle timeout is enforced at every request).
    pub editor_sessions: u64,
    /// Answers kept for idempotent API requests, after a day.
    pub idempotency_keys: u64,
    /// Webhook events sent or given up, [`WEBHOOK_EVENTS_KEPT`] after.
    pub webhook_events: u64,
}

/// How long webhook events sent or given up stay for the console.
pub const WEBHOOK_EVENTS_KEPT: Duration = Duration::from_secs(30 * 24 * 3600);

/// Runs every retention rule once; safe to run on several instances at once.
pub async fn purge(
    store: &Store,
    clock: &Clock,
    config: &PrivacyConfig,
    session_idle: Duration,
) -> anyhow::Result<PurgeReport> {
    let now = clock.now_ms();
    let day = clock::ms(Duration::from_secs(24 * 3600));
    let mut conn = store.pool().acquire().await?;
    // Both deletes in one transaction, so a reader confirming meanwhile
    // keeps their consent events.
    let mut tx = store.begin().await?;
    let unconfirmed_signups = store::subscribers::purge_unconfirmed(
        &mut tx,
        now - clock::ms(config.unconfirmed_retention),
    )
    .await?;
    tx.commit().await?;
    let report = PurgeReport {
        unconfirmed_signups,
        consent_evidence_cleared: store::consent::clear_evidence_before(
            &mut conn,
            now - clock::ms(config.ip_retention),
        )
        .await?,
        tokens: store::tokens::purge_spent(&mut conn, now).await?,
        sessions: store::sessions::purge_dead(&mut conn, now, now - clock::ms(session_idle))
            .await?,
        editor_sessions: store::editors::purge_dead_sessions(
            &mut conn,
            now,
            now - clock::ms(session_idle),
        )
        .await?,
        idempotency_keys: store::audit::purge_answers(&mut conn, now - day).await?,
        webhook_events: store::webhooks::purge_finished(
            &mut conn,
            now - clock::ms(WEBHOOK_EVENTS_KEPT),
        )
        .await?,
    };
    tracing::info!(event = "purge", ?report, "retention rules applied");
    Ok(report)
}
