//! Double opt-in: signing up, confirming, and the emails in between
//! (DESIGN "Double opt-in and credentials", STANDARDS D-01…D-17, L-01).
//! What one signup writes is in `record.rs`; the signup writer
//! (`writer.rs`) writes the signups arriving together in one transaction.

mod record;
mod writer;

use std::time::Duration;

use serde_json::json;

use crate::{
    clock::Clock,
    consent::{self, Action, Evidence, Source},
    domain::{EmailAddress, EventType, SubscriberName, Token, TokenPurpose, WebhookEvent},
    emails::{Earlier, Emails, LinkEmail},
    privacy,
    store::{self, Conn, Store},
};
use record::Rules;
use writer::Writer;

/// Email template names.
pub const CONFIRM_EMAIL: &str = "confirm";
pub const CREDENTIALS_EMAIL: &str = "credentials";
pub const ALREADY_SUBSCRIBED_EMAIL: &str = "already_subscribed";

const DAY_MS: i64 = 24 * 3600 * 1000;

/// Settings the signup flow takes from configuration.
#[derive(Debug, Clone)]
pub struct SignupSettings {
    /// Keys the suppression list, which a fresh double opt-in clears of an erasure.
    pub suppression_key: Vec<u8>,
    pub confirm_ttl: Duration,
    pub credentials_ttl: Duration,
    pub max_confirmations_per_day: u32,
}

/// A validated signup.
#[derive(Clone)]
pub struct SignupRequest {
    pub email: EmailAddress,
    pub name: Option<SubscriberName>,
    /// The digest wording version the reader ticked, if they did (L-01: optional).
    pub newsletter_wording: Option<String>,
    pub evidence: Evidence,
}

/// What a signup did. The reader sees the same page for all of them (D-07).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignupOutcome {
    Created,
    ConfirmationResent,
    AlreadyConfirmed,
    /// Nothing was sent: the address had its share of emails today (D-08, D-09).
    Throttled,
}

#[derive(Clone)]
pub struct Signup {
    store: Store,
    clock: Clock,
    rules: Rules,
    writer: Writer,
}

impl Signup {
    /// `writer_store` is what the signup writer writes with
    /// (`Store::writer`: on SQLite, the one connection it shares with the delivery worker).
    pub fn new(
        store: Store,
        writer_store: Store,
        clock: Clock,
        emails: Emails,
        settings: SignupSettings,
    ) -> Self {
        let rules = Rules::new(emails, settings);
        Self {
            writer: Writer::new(writer_store, rules.clone()),
            store,
            clock,
            rules,
        }
    }

    /// Records a pending subscriber (and the digest consent, if given) and
    /// queues the right email, all at once (D-01): the signup writer writes
    /// it in one transaction with the other signups waiting, and answers
    /// once that is committed.
    pub async fn subscribe(&self, request: &SignupRequest) -> anyhow::Result<SignupOutcome> {
        let now = self.clock.now_ms();
        self.writer.write(request.clone(), now).await
    }

    /// `Some(the digest wording it also confirms, if any)` while a
    /// confirmation link can be used; changes nothing (D-06).
    pub async fn confirmation(&self, token: &Token) -> anyhow::Result<Option<Option<String>>> {
        let mut conn = self.store.pool().acquire().await?;
        let now = self.clock.now_ms();
        let Some(consent) =
            store::tokens::usable(&mut conn, &token.hash(), TokenPurpose::Confirm, now).await?
        else {
            return Ok(None);
        };
        let wording = match consent {
            Some(id) => store::consent::text(&mut conn, &id, consent::NEWSLETTER)
                .await?
                .map(|(body, _)| body),
            None => None,
        };
        Ok(Some(wording))
    }

    /// Confirms the subscriber behind `token`, records the double-opt-in
    /// evidence, creates the account and queues the credentials email.
    /// `Ok(false)` when the link is unknown, used or expired (D-04).
    pub async fn confirm(&self, token: &Token, evidence: &Evidence) -> anyhow::Result<bool> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(used) =
            store::tokens::consume(&mut tx, &token.hash(), TokenPurpose::Confirm, now).await?
        else {
            tracing::info!(
                event = "token_rejected",
                purpose = "confirm",
                "confirmation link invalid or expired"
            );
            return Ok(false);
        };
        let subscriber_id = used.subscriber_id;
        if let Some(address) =
            store::subscribers::confirm(&mut tx, &subscriber_id, used.outbox_id.as_deref(), now)
                .await?
        {
            store::subscribers::create_account(&mut tx, &subscriber_id, &address, now).await?;
            let hash = privacy::suppression_hash(&self.rules.settings.suppression_key, &address);
            store::suppressions::lift_erasure(&mut tx, &hash).await?;
            // Any other entry (a bounce, a complaint, an editor's) stays,
            // and now names this reader, whom sending skips.
            store::suppressions::link(&mut tx, &hash, &subscriber_id).await?;
            self.queue_credentials(&mut tx, &subscriber_id, &address, now)
                .await?;
            let confirmed =
                WebhookEvent::reader(EventType::SubscriberConfirmed, &subscriber_id, json!({}));
            store::webhooks::queue(&mut tx, &confirmed, now).await?;
        }
        // Only the wording this very link was sent for becomes consent (L-02).
        if let Some(wording) = used.consent_text_id {
            let source = Source::ConfirmationLink;
            consent::record_newsletter(
                &mut tx,
                &subscriber_id,
                Action::Confirmed,
                &wording,
                source,
                evidence,
                now,
            )
            .await?;
        }
        tx.commit().await?;
        crate::metrics::reader_event("confirmation");
        tracing::info!(event = "confirm", %subscriber_id, "subscriber confirmed");
        Ok(true)
    }

    /// Emails the reader a link that confirms the digest wording `wording`,
    /// unless they had their share of confirmation emails today (D-09).
    pub(crate) async fn queue_digest_confirmation(
        &self,
        conn: &mut Conn,
        subscriber_id: &str,
        wording: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let Some(profile) = store::subscribers::profile(conn, subscriber_id).await? else {
            return Ok(());
        };
        let address = profile.email_canonical;
        let earlier = Earlier::Possible(Some(self.rules.confirmations_cap(now)));
        self.rules
            .queue_confirmation(conn, subscriber_id, &address, Some(wording), now, earlier)
            .await
            .map(drop)
    }

    async fn queue_credentials(
        &self,
        conn: &mut Conn,
        subscriber_id: &str,
        username: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let email = LinkEmail {
            template: CREDENTIALS_EMAIL,
            purpose: TokenPurpose::SetPassword,
            path: "/account/password",
            ttl: self.rules.settings.credentials_ttl,
            context: json!({
                "username": username,
                "expires_days": self.rules.settings.credentials_ttl.as_secs().div_ceil(24 * 3600),
            }),
            consent_text_id: None,
        };
        self.rules
            .emails
            .send_link(conn, email, subscriber_id, username, now)
            .await
    }

    /// True if `wording_id` is a stored version of the digest wording.
    pub async fn is_known_wording(&self, wording_id: &str) -> anyhow::Result<bool> {
        let mut conn = self.store.pool().acquire().await?;
        store::consent::text_exists(&mut conn, wording_id, consent::NEWSLETTER).await
    }
}
