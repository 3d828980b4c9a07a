//! A delivery worker: claims a batch under a lease, sends it with bounded
//! concurrency and an optional rate limit, and records each outcome.

use std::{sync::Arc, time::Duration};

use futures_util::{StreamExt, stream};
use lettre::message::{Mailbox, dkim::DkimConfig};
use tokio_util::sync::CancellationToken;

use super::{
    BatchOutcome, Refusals,
    lease::{Leases, Row},
    queue::LeaseQueue,
    retry::Retry,
    throttle::Throttles,
};
use crate::{
    clock::{self, Clock},
    config::DeliveryConfig,
    digest::Composer,
    mail::{
        Attempts, EmailTemplates, Envelope, Mail, ReturnPaths, SendError, Sending, Transport,
        build_message,
    },
    store::{
        Store,
        outbox::{self, ClaimedEmail},
        queue::{Finish, Queue},
    },
};

enum Delivered {
    Sent,
    Retried,
    Failed,
    Released,
}

#[derive(Clone)]
pub struct Worker {
    pub(super) store: Store,
    pub(super) clock: Clock,
    pub(super) templates: Arc<EmailTemplates>,
    pub(super) transport: Transport,
    pub(super) from: Mailbox,
    pub(super) composer: Arc<Composer>,
    pub(super) dkim: Option<Arc<DkimConfig>>,
    pub(super) config: DeliveryConfig,
    /// Digest deliveries claimed at once: `batch_size`, fewer if the
    /// relays' rates could not send that many within a lease.
    pub(super) digest_batch: i64,
    /// How long before its lease ends a claimed delivery may still start
    /// sending: a send may take `smtp.timeout_s`, and must end while the
    /// lease holds, or another worker could send the same digest.
    pub(super) send_margin_ms: i64,
    /// Account mail, and digests: two instances of one lease queue, leased
    /// under one owner name.
    pub(super) emails: LeaseQueue,
    pub(super) deliveries: LeaseQueue,
    /// Signup emails the whole service may send per hour; 0: no ceiling.
    pub(super) signup_emails_per_hour: u32,
    /// Run before each batch of account mail.
    pub(super) intake: Option<Intake>,
    /// Tags each message for the bounces and complaints about it.
    pub(super) return_paths: ReturnPaths,
    /// Where a refusal for an unknown mailbox goes, as a hard bounce.
    pub(super) refusals: Option<Refusals>,
    /// Receiving domains' limits and the warm-up, for digests.
    pub(super) throttles: Arc<Throttles>,
}

/// Work that turns requests the site kept into queued mail (password-reset
/// and sign-in-link requests), so the worker sends what it queues at once.
pub type Intake =
    Arc<dyn Fn() -> futures_util::future::BoxFuture<'static, anyhow::Result<usize>> + Send + Sync>;

/// What a worker needs besides the store and the clock.
pub struct WorkerSettings {
    pub templates: Arc<EmailTemplates>,
    pub transport: Transport,
    pub from: Mailbox,
    /// Composes digests, sharing the templates and DKIM key given here.
    pub composer: Arc<Composer>,
    pub dkim: Option<Arc<DkimConfig>>,
    pub config: DeliveryConfig,
    /// The longest an SMTP send may take (`smtp.timeout_s`).
    pub send_timeout: Duration,
    /// `signup.emails_per_hour`.
    pub signup_emails_per_hour: u32,
    pub return_paths: ReturnPaths,
}

impl Worker {
    pub fn new(store: Store, clock: Clock, settings: WorkerSettings) -> Self {
        let rate = settings.transport.rate_per_second(Mail::Digest);
        let batch = i64::from(settings.config.batch_size);
        let sendable_in_lease = settings
            .config
            .lease
            .saturating_sub(settings.send_timeout)
            .as_secs()
            .saturating_mul(u64::from(rate));
        let digest_batch = if rate == 0 {
            batch
        } else {
            i64::try_from(sendable_in_lease).map_or(batch, |sendable| batch.min(sendable).max(1))
        };
        let owner = crate::store::new_id();
        let queue = |queue| LeaseQueue::new(queue, &store, &clock, &owner, &settings.config);
        let (emails, deliveries) = (queue(Queue::Outbox), queue(Queue::Deliveries));
        Self {
            store,
            clock,
            emails,
            deliveries,
            throttles: Arc::new(Throttles::new(&settings.config)),
            digest_batch,
            send_margin_ms: clock::ms(settings.send_timeout),
            templates: settings.templates,
            transport: settings.transport,
            from: settings.from,
            composer: settings.composer,
            dkim: settings.dkim,
            config: settings.config,
            signup_emails_per_hour: settings.signup_emails_per_hour,
            intake: None,
            return_paths: settings.return_paths,
            refusals: None,
        }
    }

    /// This worker with refusals of unknown mailboxes sent to `refusals`.
    #[must_use]
    pub fn with_refusals(self, refusals: Refusals) -> Self {
        Self {
            refusals: Some(refusals),
            ..self
        }
    }

    /// This worker with `intake` run before each batch of account mail.
    #[must_use]
    pub fn with_intake(self, intake: Intake) -> Self {
        Self {
            intake: Some(intake),
            ..self
        }
    }

    /// How many signup emails the next batch may carry: what is left of the
    /// hour's ceiling, counted over every instance's sends.
    async fn signup_emails_left(&self, now: i64) -> anyhow::Result<i64> {
        let batch = i64::from(self.config.batch_size);
        if self.signup_emails_per_hour == 0 {
            return Ok(batch);
        }
        let hour_ago = now - clock::ms(Duration::from_secs(3600));
        let sent = outbox::signup_emails_sent_since(&self.store, hour_ago, now).await?;
        Ok(i64::from(self.signup_emails_per_hour) - sent)
    }

    /// Claims and sends one batch. Rows claimed after `cancel` fired are
    /// handed back untouched, so shutdown never strands a lease.
    pub async fn deliver_batch(&self, cancel: &CancellationToken) -> anyhow::Result<BatchOutcome> {
        // A request that cannot be handled must not hold up account mail.
        if let Some(intake) = &self.intake
            && let Err(error) = intake().await
        {
            tracing::warn!(
                error = crate::telemetry::error_text(&error),
                "link requests not handled"
            );
        }
        let now = self.clock.now_ms();
        let limits = (
            i64::from(self.config.batch_size),
            self.signup_emails_left(now).await?,
        );
        let lease_until = self.emails.lease_until(now);
        let owner = self.emails.owner();
        let rows = outbox::claim(&self.store, owner, now, lease_until, limits).await?;
        let mut outcome = BatchOutcome {
            claimed: rows.len(),
            ..BatchOutcome::default()
        };
        let leases = self.emails.leases();
        for row in &rows {
            leases.hold(Row::email(&row.id), lease_until);
        }
        let sends = stream::iter(rows)
            .map(|row| self.deliver_one(row, &leases, cancel))
            .buffer_unordered(self.transport.concurrency(Mail::Account))
            .collect::<Vec<anyhow::Result<Delivered>>>();
        let results = leases.while_renewing(sends).await;
        for result in results {
            match result? {
                Delivered::Sent => outcome.sent += 1,
                Delivered::Retried => outcome.retried += 1,
                Delivered::Failed => outcome.failed += 1,
                Delivered::Released => outcome.released += 1,
            }
        }
        outcome.count("account");
        Ok(outcome)
    }

    /// Sends account mail and digests until `cancel` fires, resting when
    /// nothing is due. The two run side by side, so a long campaign never
    /// holds up a confirmation email; they share the SMTP connections.
    pub async fn run(self, cancel: CancellationToken) {
        tokio::join!(
            self.run_loop("account mail", &cancel, || self.deliver_batch(&cancel)),
            self.run_loop("digests", &cancel, || self.deliver_digests(&cancel)),
        );
        tracing::info!("delivery worker stopped");
    }

    async fn run_loop<F, Fut>(&self, what: &str, cancel: &CancellationToken, mut deliver: F)
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = anyhow::Result<BatchOutcome>>,
    {
        let idle = self.config.poll_interval;
        while !cancel.is_cancelled() {
            let rest = match deliver().await {
                Ok(outcome) if outcome.claimed > 0 => {
                    tracing::debug!(?outcome, what, "delivered");
                    continue;
                }
                Ok(_) => idle,
                Err(error) => {
                    // The database may be away for a while; nothing is lost,
                    // the rows stay queued.
                    tracing::warn!(
                        error = crate::telemetry::error_text(&error),
                        what,
                        "delivery failed"
                    );
                    idle * 5
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(rest) => {}
            }
        }
    }

    /// Whether a send may start now and still end within the row's lease
    /// (a send may take `smtp.timeout_s`); if not, another worker could
    /// take the row while it is being sent.
    pub(super) fn may_send(&self, leases: &Leases, row: &Row) -> bool {
        leases
            .until(row)
            .is_some_and(|until| self.clock.now_ms() <= until - self.send_margin_ms)
    }

    /// Sends through the relays, each attempt starting only while it can
    /// still end within the row's lease.
    pub(super) async fn send_within_lease(
        &self,
        message: &lettre::Message,
        mail: Mail,
        leases: &Leases,
        row: &Row,
    ) -> Sending {
        let may_start = || self.may_send(leases, row);
        self.transport.send(message, mail, may_start).await
    }

    async fn deliver_one(
        &self,
        row: ClaimedEmail,
        leases: &Leases,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Delivered> {
        let held = Row::email(&row.id);
        let delivered = self.deliver_held(row, &held, leases, cancel).await;
        leases.let_go(&held);
        delivered
    }

    async fn deliver_held(
        &self,
        row: ClaimedEmail,
        held: &Row,
        leases: &Leases,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Delivered> {
        // Shutting down, or too late to finish within the lease: hand it back.
        if cancel.is_cancelled() || !self.may_send(leases, held) {
            self.emails.release(held).await?;
            return Ok(Delivered::Released);
        }
        let prepared = self.account_message(&row);
        let (message, template_version) = match prepared {
            Ok(prepared) => prepared,
            // A template fixed by the operator may render later: retry.
            Err(error) => {
                return self
                    .retry_or_give_up(&row, held, &crate::telemetry::error_text(&error))
                    .await;
            }
        };
        let attempts = match self
            .send_within_lease(&message, Mail::Account, leases, held)
            .await
        {
            Sending::TooLate => {
                self.emails.release(held).await?;
                return Ok(Delivered::Released);
            }
            Sending::Done(Attempts { result, .. }) => result,
        };
        match attempts {
            Ok(()) => {
                let template_version = Some(template_version.as_str());
                let sent = Finish::Sent { template_version };
                let now = self.clock.now_ms();
                self.emails.finish(held.as_rows(), sent, now).await?;
                tracing::info!(outbox_id = %row.id, template = %row.template, "email sent");
                Ok(Delivered::Sent)
            }
            Err(SendError::Permanent(error)) => {
                tracing::warn!(outbox_id = %row.id, %error, "email refused for good");
                let tag = self.return_paths.account_tag(&row.id);
                self.report_refusal(&error, &row.recipient, &tag, &row.id)
                    .await;
                self.fail(held, &error).await
            }
            Err(SendError::Transient(error)) => self.retry_or_give_up(&row, held, &error).await,
        }
    }

    /// The account email of `row`, rendered and built, with its template's version.
    fn account_message(&self, row: &ClaimedEmail) -> anyhow::Result<(lettre::Message, String)> {
        let context = serde_json::from_str(&row.context)?;
        let rendered = self.templates.render(&row.template, &context)?;
        let tag = self.return_paths.account_tag(&row.id);
        let envelope = Envelope {
            from: &self.from,
            to: &row.recipient,
            message_id: &row.message_id,
            date: self.clock.now().into(),
            extra: &[],
            dkim: self.dkim.as_deref(),
            eight_bit_mime: self.transport.eight_bit_mime(),
            bounce: self.return_paths.bounce_tag(&tag),
        };
        let message = build_message(&envelope, &rendered)?;
        Ok((message, rendered.template_version))
    }

    async fn retry_or_give_up(
        &self,
        row: &ClaimedEmail,
        held: &Row,
        error: &str,
    ) -> anyhow::Result<Delivered> {
        let retry = self.emails.retry(held, row.attempts, row.created_at, error);
        match retry.await? {
            Some(Retry::At(due)) => {
                tracing::info!(outbox_id = %row.id, attempts = row.attempts, due, %error, "email will be retried");
                Ok(Delivered::Retried)
            }
            Some(Retry::GiveUp) => {
                tracing::warn!(outbox_id = %row.id, %error, "email given up after retries");
                self.fail(held, &format!("gave up: {error}")).await
            }
            // Its lease ran out and another worker has it.
            None => Ok(Delivered::Released),
        }
    }

    /// Records a failure, unless the row is no longer this worker's.
    async fn fail(&self, held: &Row, error: &str) -> anyhow::Result<Delivered> {
        let failed = Finish::Failed(error);
        let changed = self
            .emails
            .finish(held.as_rows(), failed, self.clock.now_ms());
        Ok(if changed.await? == 0 {
            Delivered::Released
        } else {
            Delivered::Failed
        })
    }
}
