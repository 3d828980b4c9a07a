//! Outgoing webhooks: events queued in `webhook_messages` (by
//! `store::webhooks::queue`, in the transaction of the change) are POSTed
//! to their endpoints as JSON, signed by the Standard Webhooks scheme
//! (`signature.rs`). The third instance of the lease queue: claimed under a
//! short lease, renewed while the batch runs, retried with the one back-off
//! policy; each endpoint gets a reader's events one after another, in order.
//! An endpoint that fails for `outgoing_webhooks.disable_after_h` is
//! turned off; its events wait for an admin to turn it on again.

mod signature;

pub use signature::{new_secret, sign};

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
};

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::{self, Clock},
    config::{DeliveryConfig, OutgoingWebhooksConfig},
    delivery::{LeaseQueue, Leases, Retry, Row},
    domain::{Reach, check_url},
    outbound_http::guarded_client,
    store::{
        self, Store,
        queue::{Finish, Queue},
        webhook_endpoints::Target,
        webhooks::ClaimedMessage,
    },
};

/// What [`WebhookSender::deliver_due`] did with one batch.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivered {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Handed back untried: their endpoint failed in the same batch.
    pub held: usize,
}

/// Sends due webhook events; one per process that runs workers.
#[derive(Clone)]
pub struct WebhookSender {
    store: Store,
    clock: Clock,
    queue: LeaseQueue,
    client: reqwest::Client,
    reach: Arc<Reach>,
    /// `outgoing_webhooks.timeout_s`, or half a lease if that is shorter.
    timeout: std::time::Duration,
    config: Arc<OutgoingWebhooksConfig>,
    poll_interval: std::time::Duration,
}

impl WebhookSender {
    pub fn new(
        store: &Store,
        clock: &Clock,
        config: &OutgoingWebhooksConfig,
        delivery: &DeliveryConfig,
    ) -> anyhow::Result<Self> {
        let reach = config.reach();
        // A request must end within its lease (renewed every third of
        // one), or another instance could send the event too.
        let timeout = config.timeout.min(delivery.lease / 2);
        // No redirects: an endpoint is where the admin said it is.
        let client = guarded_client(reach.clone(), "webhooks", timeout, 0)?;
        let owner = format!("webhooks-{}", store::new_id());
        Ok(Self {
            store: store.clone(),
            clock: clock.clone(),
            queue: LeaseQueue::new(Queue::Webhooks, store, clock, &owner, delivery),
            client,
            reach: Arc::new(reach),
            timeout,
            config: Arc::new(config.clone()),
            poll_interval: delivery.poll_interval,
        })
    }

    /// Sends due events until `cancel`; resting `delivery.poll_interval_ms`
    /// when none is due.
    pub async fn run(self, cancel: CancellationToken) {
        while !cancel.is_cancelled() {
            let rest = match self.deliver_due().await {
                Ok(done) if done.claimed > 0 => continue,
                Ok(_) => self.poll_interval,
                Err(error) => {
                    // Nothing is lost: the events stay queued.
                    tracing::warn!(
                        error = crate::telemetry::error_text(&error),
                        "webhook delivery failed"
                    );
                    self.poll_interval * 5
                }
            };
            tokio::select! {
                () = cancel.cancelled() => break,
                () = tokio::time::sleep(rest) => {}
            }
        }
        tracing::info!("webhook sender stopped");
    }

    /// Claims one batch of due events and sends them, a few at a time.
    /// After a failure of an endpoint itself (no connection, a timeout, a
    /// 5xx or 429 answer), its events not yet started are handed back and
    /// none is claimed until its retry: a dead endpoint costs a request per
    /// back-off, not one per reader, and holds up no other endpoint.
    pub async fn deliver_due(&self) -> anyhow::Result<Delivered> {
        let now = self.clock.now_ms();
        let width = self.config.concurrency as usize;
        let limit = i64::try_from(width * 4).unwrap_or(i64::MAX);
        let owner = self.queue.owner();
        let until = self.queue.lease_until(now);
        let claimed = store::webhooks::claim(&self.store, owner, now, until, limit).await?;
        let mut done = Delivered {
            claimed: claimed.len(),
            ..Delivered::default()
        };
        if claimed.is_empty() {
            return Ok(done);
        }
        let mut targets = HashMap::new();
        for message in &claimed {
            if !targets.contains_key(&message.endpoint_id) {
                let target =
                    store::webhook_endpoints::target(&self.store, &message.endpoint_id).await?;
                targets.insert(message.endpoint_id.clone(), target);
            }
        }
        let leases = self.queue.leases();
        for message in &claimed {
            leases.hold(row_of(message), until);
        }
        let down = Mutex::new(HashSet::new());
        // The futures made first, then run a few at a time: a closure in
        // the stream would make the spawned task's future not `Send` for
        // every lifetime.
        let sends: Vec<_> = claimed
            .iter()
            .map(|message| {
                let target = targets.get(&message.endpoint_id).and_then(Option::as_ref);
                self.deliver(&leases, message, target, &down)
            })
            .collect();
        let sends = futures_util::stream::iter(sends).buffer_unordered(width);
        let outcomes: Vec<anyhow::Result<Outcome>> = leases.while_renewing(sends.collect()).await;
        for outcome in outcomes {
            match outcome? {
                Outcome::Sent => done.sent += 1,
                Outcome::Retried => done.retried += 1,
                Outcome::Failed => done.failed += 1,
                Outcome::Held => done.held += 1,
                Outcome::NotOurs => {}
            }
        }
        Ok(done)
    }

    /// Sends one event and records what came of it; `down` holds the
    /// endpoints that failed in this batch, whose other events wait.
    async fn deliver(
        &self,
        leases: &Leases,
        message: &ClaimedMessage,
        target: Option<&Target>,
        down: &Mutex<HashSet<String>>,
    ) -> anyhow::Result<Outcome> {
        let row = row_of(message);
        let Some(target) = target else {
            // The endpoint was removed since the claim; the purge takes its events.
            leases.let_go(&row);
            return Ok(Outcome::NotOurs);
        };
        // A request may take the whole timeout: start it only if the lease
        // outlasts it, or another instance could send the event too.
        let timeout = clock::ms(self.timeout);
        let late = leases
            .until(&row)
            .is_none_or(|until| until - self.clock.now_ms() < timeout);
        if late || lock(down).contains(&target.id) {
            self.queue.release(&row).await?;
            leases.let_go(&row);
            return Ok(if late {
                Outcome::NotOurs
            } else {
                Outcome::Held
            });
        }
        let email = match &message.subscriber_id {
            Some(id) => store::webhooks::address(&self.store, id).await?,
            None => None,
        };
        let Ok(body) = with_address(&message.payload, email.as_deref()) else {
            // Never so written; sent again it would fail again.
            let failed = Finish::Failed("the stored event is not JSON");
            self.queue
                .finish(row.as_rows(), failed, self.clock.now_ms())
                .await?;
            leases.let_go(&row);
            return Ok(Outcome::Failed);
        };
        let result = self.post(target, message, body).await;
        leases.let_go(&row);
        let now = self.clock.now_ms();
        match result {
            Ok(()) => self.sent(&row, target, now).await,
            Err(failure) => {
                if failure.endpoint_wide {
                    lock(down).insert(target.id.clone());
                }
                self.failed(&row, message, target, &failure).await
            }
        }
    }

    /// A request answered 2xx: the event is sent, the endpoint's failures
    /// forgotten.
    async fn sent(&self, row: &Row, target: &Target, now: i64) -> anyhow::Result<Outcome> {
        let sent = Finish::Sent {
            template_version: None,
        };
        self.queue.finish(row.as_rows(), sent, now).await?;
        // No statement per message for an endpoint that was not failing;
        // one that failed in this batch is set right by its next batch.
        if target.failing_since.is_some() {
            store::webhook_endpoints::succeeded(&self.store, &target.id).await?;
        }
        crate::metrics::webhook_requests("sent");
        Ok(Outcome::Sent)
    }

    /// A failed request: retried by the back-off policy or given up, and
    /// counted against its endpoint; after a failure of the endpoint
    /// itself, none of its events is claimed before this one's retry.
    async fn failed(
        &self,
        row: &Row,
        message: &ClaimedMessage,
        target: &Target,
        failure: &Failure,
    ) -> anyhow::Result<Outcome> {
        let (now, error) = (self.clock.now_ms(), failure.error.as_str());
        tracing::info!(endpoint = %target.id, event = %message.event_id, error, "webhook request failed");
        let queued_at = message.created_at.max(target.enabled_at);
        let retry = self
            .queue
            .retry(row, message.attempts, queued_at, error)
            .await?;
        let outcome = match retry {
            None => Outcome::NotOurs,
            Some(Retry::At(_)) => {
                crate::metrics::webhook_requests("retried");
                Outcome::Retried
            }
            Some(Retry::GiveUp) => {
                let failed = Finish::Failed(error);
                self.queue.finish(row.as_rows(), failed, now).await?;
                crate::metrics::webhook_requests("failed");
                Outcome::Failed
            }
        };
        let retry_at = match retry {
            Some(Retry::At(due)) if failure.endpoint_wide => Some(due),
            _ => None,
        };
        let disable_before = now - clock::ms(self.config.disable_after);
        let endpoint = &target.id;
        let failed = (error, retry_at);
        if store::webhook_endpoints::failed(&self.store, endpoint, failed, now, disable_before)
            .await?
        {
            tracing::warn!(endpoint = %target.id, url = %target.url, "webhook endpoint turned off after a day of failures");
            crate::metrics::webhook_requests("disabled");
        }
        Ok(outcome)
    }

    /// POSTs the event, signed; any answer but a 2xx is a failure.
    async fn post(
        &self,
        target: &Target,
        message: &ClaimedMessage,
        body: String,
    ) -> Result<(), Failure> {
        let url = reqwest::Url::parse(&target.url)
            .map_err(|e| Failure::endpoint(format!("bad address: {e}")))?;
        // Checked again: the allow-list may have changed since it was registered.
        check_url(&url, &self.reach).map_err(Failure::endpoint)?;
        let timestamp = self.clock.now_ms() / 1000;
        let signature = sign(&target.secret, &message.event_id, timestamp, &body)
            .map_err(|e| Failure::endpoint(e.to_string()))?;
        let response = self
            .client
            .post(url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("webhook-id", &message.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map_err(|e| Failure::endpoint(error_chain(&e)))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let error = format!("the endpoint answered {status}");
        Err(Failure {
            error,
            // Other answers (400, 413…) are about this event only.
            endpoint_wide: status.is_server_error()
                || status == reqwest::StatusCode::TOO_MANY_REQUESTS,
        })
    }
}

/// Why a request failed, and whether the endpoint itself failed (no
/// connection, a timeout, a 5xx or 429 answer) or only this event.
struct Failure {
    error: String,
    endpoint_wide: bool,
}

impl Failure {
    fn endpoint(error: String) -> Self {
        Self {
            error,
            endpoint_wide: true,
        }
    }
}

/// A lock that a panic elsewhere does not make unusable.
fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Sent,
    Retried,
    Failed,
    /// Not tried: its endpoint failed in this batch; handed back.
    Held,
    /// Handed back, or no longer this worker's.
    NotOurs,
}

/// The payload with the reader's address in its `data`, while they exist:
/// stored without it, so an erased reader's address never goes out.
fn with_address(payload: &str, email: Option<&str>) -> anyhow::Result<String> {
    let Some(email) = email else {
        return Ok(payload.to_owned());
    };
    let mut event: serde_json::Value = serde_json::from_str(payload)?;
    if let Some(data) = event
        .get_mut("data")
        .and_then(serde_json::Value::as_object_mut)
    {
        data.insert("email".into(), serde_json::Value::from(email));
    }
    Ok(event.to_string())
}

fn row_of(message: &ClaimedMessage) -> Row {
    Row::Webhook {
        endpoint: message.endpoint_id.clone(),
        event: message.event_id.clone(),
    }
}

/// An error with its causes: reqwest's own text says little ("error
/// sending request"), the cause (a refused address, a timeout) says why.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        cause = inner.source();
    }
    text
}
