//! Sending digests: claimed ahead ([`Claims`]), composed and sent by one
//! task per connection, and recorded as they arrive, a few at a time.

use std::sync::Arc;

use tokio::sync::{Mutex, Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Worker,
    claims::{Claims, Job},
    lease::Leases,
    outcome::BatchOutcome,
    record::{Outcome, Recorder, Sent, Trail},
    retry::Retry,
    throttle::domain_of,
};
use crate::{
    digest::Campaign,
    mail::{Attempts, Mail, SendError, Sending},
    store::deliveries::Recipient,
};

/// How long a digest waits when its domain's connections are all busy.
const IN_FLIGHT_WAIT_MS: i64 = 1_000;

impl Worker {
    /// Sends digest deliveries until none is due, or `cancel` fires. The next
    /// batch is claimed while the last one's messages are still going out,
    /// and results are recorded as they arrive, a few at a time, so the
    /// connections never wait for the database and a crash leaves only the
    /// messages in flight unrecorded (they are sent again after the lease).
    pub async fn deliver_digests(
        &self,
        cancel: &CancellationToken,
    ) -> anyhow::Result<BatchOutcome> {
        // At most two batches claimed and not yet recorded: one going out,
        // one claimed ahead. This bounds what a crash leaves sent but
        // unrecorded, without ever blocking the sends themselves (a send side
        // waiting on the recorder stops polling replies that are in flight).
        let batch = usize::try_from(self.digest_batch).unwrap_or(usize::MAX);
        let unrecorded = Arc::new(Semaphore::new(batch.saturating_mul(2)));
        let leases = self.deliveries.leases();
        let (jobs, claimed) = mpsc::unbounded_channel();
        let claim = Claims::new(self, leases.clone(), cancel.clone(), unrecorded.clone()).run(jobs);
        let (results, arrived) = mpsc::unbounded_channel();
        let mut senders = self.spawn_senders(claimed, &results, &leases, cancel);
        drop(results); // the senders hold the others: recording ends with them
        let send = async move {
            while let Some(ended) = senders.join_next().await {
                if let Err(error) = ended {
                    tracing::error!(%error, "a digest sender stopped");
                }
            }
        };
        let recorder = Recorder::new(self, leases.clone(), unrecorded, batch);
        let ((), (), outcome) = leases
            .while_renewing(async { tokio::join!(claim, send, recorder.run(arrived)) })
            .await;
        outcome
    }

    /// One task per connection, so rendering and sending spread over the
    /// runtime's threads; each takes the next claimed job when it is free.
    /// (One task per message cost more than it saved: BENCHMARKS.md.)
    /// Dropped with the batch (an error, a shutdown), the tasks stop.
    fn spawn_senders(
        &self,
        claimed: mpsc::UnboundedReceiver<anyhow::Result<Job>>,
        results: &mpsc::UnboundedSender<Sent>,
        leases: &Arc<Leases>,
        cancel: &CancellationToken,
    ) -> tokio::task::JoinSet<()> {
        let claimed = Arc::new(Mutex::new(claimed));
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..self.transport.concurrency(Mail::Digest) {
            let (worker, cancel, leases) = (self.clone(), cancel.clone(), leases.clone());
            let (claimed, results) = (claimed.clone(), results.clone());
            senders.spawn(async move {
                loop {
                    // Its own statement: the lock is let go before sending.
                    let next = claimed.lock().await.recv().await;
                    let Some(job) = next else { break };
                    let result = match job {
                        Ok(job) => {
                            let result = worker.deliver_digest(&job, &leases, &cancel).await;
                            Ok((job.delivery, result))
                        }
                        Err(error) => Err(error),
                    };
                    if results.send(result).is_err() {
                        break; // recording failed: stop; the leases run out
                    }
                }
            });
        }
        senders
    }

    /// Composes and sends one digest; what became of it and the relays it
    /// went through.
    async fn deliver_digest(
        &self,
        job: &Job,
        leases: &Leases,
        cancel: &CancellationToken,
    ) -> anyhow::Result<(Outcome, Trail)> {
        let untried = |outcome| Ok((outcome, Trail::default()));
        let row = job.row();
        // Shutting down, or too late to finish within the lease (a slow
        // server, a rate limit): hand it back untouched.
        if cancel.is_cancelled() || !self.may_send(leases, &row) {
            self.deliveries.release(&row).await?;
            self.not_sent(job.recipient.as_ref()).await?;
            return untried(Outcome::Released);
        }
        let (Some(campaign), Some(recipient)) = (&job.campaign, &job.recipient) else {
            return untried(Outcome::Cancelled);
        };
        if recipient.eligible == 0 {
            return untried(Outcome::Cancelled);
        }
        let date = self.clock.now().into();
        let message = match self.composer.digest(campaign, recipient, &job.topics, date) {
            Ok(Some((_, message))) => message,
            Ok(None) => {
                self.not_sent(Some(recipient)).await?;
                return untried(Outcome::Cancelled);
            }
            Err(error) => {
                let error = crate::telemetry::error_text(&error);
                return untried(self.retry_digest(job, campaign, &error).await?);
            }
        };
        self.send_digest(job, (campaign, recipient), &message, leases)
            .await
    }

    /// Sends a composed digest through the relays, within the domain's
    /// connections on this instance; what became of it.
    async fn send_digest(
        &self,
        job: &Job,
        (campaign, recipient): (&Campaign, &Recipient),
        message: &lettre::Message,
        leases: &Leases,
    ) -> anyhow::Result<(Outcome, Trail)> {
        let untried = |outcome| Ok((outcome, Trail::default()));
        let row = job.row();
        let domain = domain_of(&recipient.email_canonical);
        // A domain's connections on this instance: when all are busy, the
        // digest waits a moment, and this sender takes the next one.
        let _in_flight = match self.throttles.in_flight(domain) {
            None => None,
            Some(permits) => match permits.clone().try_acquire_owned() {
                Ok(permit) => Some(permit),
                Err(_) => {
                    let why = format!("{domain}: its connections are busy");
                    let soon = self.clock.now_ms() + IN_FLIGHT_WAIT_MS;
                    self.deliveries.hold(row.as_rows(), soon, &why).await?;
                    self.not_sent(Some(recipient)).await?;
                    return untried(Outcome::Released);
                }
            },
        };
        let attempts = match self
            .send_within_lease(message, Mail::Digest, leases, &row)
            .await
        {
            Sending::TooLate => {
                self.deliveries.release(&row).await?;
                self.not_sent(Some(recipient)).await?;
                return untried(Outcome::Released);
            }
            Sending::Done(attempts) => attempts,
        };
        self.count_for_domain(domain, &attempts).await?;
        let trail = Trail {
            last: attempts.relay,
            deferred_by: attempts.deferred_by,
            domain: self.throttles.limited(domain),
        };
        let outcome = match attempts.result {
            Ok(()) => Outcome::Sent,
            Err(SendError::Permanent(error)) => {
                // E-24: an unknown mailbox is suppressed (feedback::smtp).
                let tag = self
                    .return_paths
                    .digest_tag(&campaign.row.id, &recipient.id);
                let message = format!("{}/{}", campaign.row.id, recipient.id);
                let to = &recipient.email_canonical;
                self.report_refusal(&error, to, &tag, &message).await;
                Outcome::Failed(error)
            }
            Err(SendError::Transient(error)) => self.retry_digest(job, campaign, &error).await?,
        };
        Ok((outcome, trail))
    }

    /// A digest admitted at claim but not sent: what it took of the
    /// domain's minute and the warm-up's day goes back.
    async fn not_sent(&self, recipient: Option<&Recipient>) -> anyhow::Result<()> {
        let Some(recipient) = recipient.filter(|r| r.eligible != 0) else {
            return Ok(()); // not admitted: it took nothing
        };
        let domain = domain_of(&recipient.email_canonical);
        let now = self.clock.now_ms();
        self.throttles.give_back(&self.store, domain, now).await
    }

    /// A domain's deferral (4.7.x) holds its other digests back; a limited
    /// domain's outcomes are counted by name.
    async fn count_for_domain(&self, domain: &str, attempts: &Attempts) -> anyhow::Result<()> {
        // Held only where the operator listed the domain: a relay's own
        // policy replies (4.7.x too) cannot be told from the domain's.
        if attempts.domain_deferred
            && self.throttles.is_limited(domain)
            && let Err(SendError::Transient(reply)) = &attempts.result
        {
            let now = self.clock.now_ms();
            self.throttles
                .deferred(&self.store, domain, now, reply)
                .await?;
        }
        if self.throttles.is_limited(domain) {
            let outcome = match (&attempts.result, attempts.domain_deferred) {
                (Ok(()), _) => "sent",
                (Err(_), true) => "deferred",
                (Err(_), false) => "not_sent",
            };
            crate::metrics::domain_message(domain, outcome);
        }
        Ok(())
    }

    /// A transient failure: retried by the queue's policy, counted from
    /// when the campaign started, or given up (recorded with the batch).
    async fn retry_digest(
        &self,
        job: &Job,
        campaign: &Campaign,
        error: &str,
    ) -> anyhow::Result<Outcome> {
        let attempts = job.delivery.attempts;
        let started = campaign.row.retries_from;
        let row = job.row();
        let retry = self.deliveries.retry(&row, attempts, started, error);
        Ok(match retry.await? {
            Some(Retry::At(due)) => Outcome::Retried {
                due,
                error: error.to_owned(),
            },
            Some(Retry::GiveUp) => Outcome::Failed(format!("gave up: {error}")),
            // Its lease ran out and another worker has it.
            None => Outcome::Released,
        })
    }
}
