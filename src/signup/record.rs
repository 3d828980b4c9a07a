//! What one signup writes, in the caller's transaction: the pending
//! subscriber, the digest consent if given, and the email the day's limits
//! allow (D-01, D-07…D-09). The signup writer runs it for each signup of a
//! group, in the group's transaction.

use std::sync::Arc;

use serde_json::json;

use super::{
    ALREADY_SUBSCRIBED_EMAIL, CONFIRM_EMAIL, DAY_MS, SignupOutcome, SignupRequest, SignupSettings,
};
use crate::{
    consent::{self, Action, Source},
    domain::TokenPurpose,
    emails::{Addressee, Earlier, Emails, LinkEmail},
    store::{
        self, Conn,
        outbox::Cap,
        subscribers::{SignupTarget, SubscriberStatus},
    },
};

/// The signup emails and their limits, shared by the service and its writer.
#[derive(Clone)]
pub(super) struct Rules {
    pub(super) emails: Emails,
    pub(super) settings: Arc<SignupSettings>,
}

/// What one signup did.
#[derive(Debug)]
pub(super) struct Recorded {
    pub(super) subscriber_id: String,
    pub(super) outcome: SignupOutcome,
}

impl Recorded {
    /// Counts and logs a signup once it is committed; run in its request's span.
    pub(super) fn report(&self) {
        if matches!(self.outcome, SignupOutcome::Created) {
            crate::metrics::reader_event("signup");
        }
        // The id only: an id beside even a masked address would tie the
        // two together in logs that outlive an erasure.
        tracing::info!(
            event = "signup",
            subscriber_id = %self.subscriber_id,
            outcome = ?self.outcome,
            "signup received"
        );
    }
}

impl Rules {
    pub(super) fn new(emails: Emails, settings: SignupSettings) -> Self {
        Self {
            emails,
            settings: Arc::new(settings),
        }
    }

    /// Records a pending subscriber (and the digest consent, if given) and
    /// queues the right email. A confirmed address gets an "already
    /// subscribed" email instead.
    pub(super) async fn record(
        &self,
        conn: &mut Conn,
        request: &SignupRequest,
        now: i64,
    ) -> anyhow::Result<Recorded> {
        let target = store::subscribers::upsert_pending(
            conn,
            &store::new_id(),
            &request.email,
            request.name.as_ref(),
            now,
        )
        .await?;
        let outcome = match target.status {
            SubscriberStatus::Pending => {
                self.resubscribe_pending(conn, &target, request, now)
                    .await?
            }
            SubscriberStatus::Confirmed => {
                self.remind_confirmed(conn, &target.id, request, now)
                    .await?
            }
        };
        Ok(Recorded {
            subscriber_id: target.id,
            outcome,
        })
    }

    /// A new or still-pending address: record the consent, if given, and send
    /// a fresh confirmation unless the address had its share today (D-09).
    async fn resubscribe_pending(
        &self,
        conn: &mut Conn,
        target: &SignupTarget,
        request: &SignupRequest,
        now: i64,
    ) -> anyhow::Result<SignupOutcome> {
        if let Some(wording) = &request.newsletter_wording {
            let (id, evidence) = (&target.id, &request.evidence);
            consent::record_newsletter(
                conn,
                id,
                Action::Granted,
                wording,
                Source::SignupForm,
                evidence,
                now,
            )
            .await?;
        }
        // A reader this very signup created has had no email and holds no
        // link: there is nothing to count or void, two statements fewer.
        // (A limit of 0 still sends nothing, as the count would decide.)
        let earlier = if target.created && self.settings.max_confirmations_per_day > 0 {
            Earlier::Nothing
        } else {
            Earlier::Possible(Some(self.confirmations_cap(now)))
        };
        let consent = request.newsletter_wording.as_deref();
        let recipient = request.email.canonical();
        let queued = self
            .queue_confirmation(conn, &target.id, recipient, consent, now, earlier)
            .await?;
        Ok(match (queued, target.created) {
            (false, _) => SignupOutcome::Throttled,
            (true, true) => SignupOutcome::Created,
            (true, false) => SignupOutcome::ConfirmationResent,
        })
    }

    /// A confirmed address: at most one "already subscribed" email a day
    /// (D-08). A tick in the digest box is not taken from an unauthenticated
    /// form for a confirmed address: nobody has proven they own it.
    async fn remind_confirmed(
        &self,
        conn: &mut Conn,
        subscriber_id: &str,
        request: &SignupRequest,
        now: i64,
    ) -> anyhow::Result<SignupOutcome> {
        let context = json!({ "login_url": format!("{}/login", self.emails.base_url()) });
        let to = Addressee {
            subscriber_id,
            recipient: request.email.canonical(),
        };
        let cap = Cap {
            since: now - DAY_MS,
            max: 1,
        };
        let queued = self
            .emails
            .queue_capped(conn, ALREADY_SUBSCRIBED_EMAIL, to, context, now, cap)
            .await?;
        Ok(if queued {
            SignupOutcome::AlreadyConfirmed
        } else {
            SignupOutcome::Throttled
        })
    }

    /// At most `max_confirmations_per_day` confirmation emails to a reader
    /// in the day before `now` (D-09).
    pub(super) fn confirmations_cap(&self, now: i64) -> Cap {
        Cap {
            since: now - DAY_MS,
            max: i64::from(self.settings.max_confirmations_per_day),
        }
    }

    /// Emails a confirmation link, which also confirms `consent` (a digest
    /// wording version) if given; false if `earlier`'s cap held it back.
    pub(super) async fn queue_confirmation(
        &self,
        conn: &mut Conn,
        subscriber_id: &str,
        recipient: &str,
        consent: Option<&str>,
        now: i64,
        earlier: Earlier,
    ) -> anyhow::Result<bool> {
        // D-12: neutral, and nothing the reader typed (not even the name).
        let email = LinkEmail {
            template: CONFIRM_EMAIL,
            purpose: TokenPurpose::Confirm,
            path: "/confirm",
            ttl: self.settings.confirm_ttl,
            context: json!({ "expires_hours": self.settings.confirm_ttl.as_secs() / 3600 }),
            consent_text_id: consent,
        };
        let to = Addressee {
            subscriber_id,
            recipient,
        };
        self.emails
            .send_link_checked(conn, email, to, now, earlier)
            .await
    }
}
