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
    collections::{BTreeMap, HashMap},
    sync::Arc,
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
        queue::{Finish, Queue, Rows},
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
    /// Not tried: an event of the same endpoint before them failed.
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
                    tracing::warn!(error = format!("{error:#}"), "webhook delivery failed");
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

    /// Claims one batch of due events and sends them: each endpoint's one
    /// after another, endpoints side by side. After a failed request, the
    /// endpoint's other events of the batch wait for its retry, so a dead
    /// endpoint costs one request per back-off, not one per reader.
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
        let readers: Vec<String> = claimed
            .iter()
            .filter_map(|m| m.subscriber_id.clone())
            .collect();
        let addresses = store::webhooks::addresses(&self.store, &readers).await?;
        let mut by_endpoint: BTreeMap<&str, Vec<&ClaimedMessage>> = BTreeMap::new();
        for message in &claimed {
            by_endpoint
                .entry(&message.endpoint_id)
                .or_default()
                .push(message);
        }
        let leases = self.queue.leases();
        for message in &claimed {
            leases.hold(row_of(message), until);
        }
        let mut sends = Vec::new();
        for (endpoint, messages) in by_endpoint {
            let target = store::webhook_endpoints::target(&self.store, endpoint).await?;
            sends.push(self.deliver_to(&leases, target, messages, &addresses));
        }
        // The futures made first, then run a few at a time: a closure in
        // the stream would make the spawned task's future not `Send` for
        // every lifetime.
        let sends = futures_util::stream::iter(sends).buffer_unordered(width);
        let outcomes: Vec<anyhow::Result<Vec<Outcome>>> =
            leases.while_renewing(sends.collect()).await;
        for outcome in outcomes
            .into_iter()
            .collect::<anyhow::Result<Vec<_>>>()?
            .concat()
        {
            match outcome {
                Outcome::Sent => done.sent += 1,
                Outcome::Retried(_) => done.retried += 1,
                Outcome::Failed => done.failed += 1,
                Outcome::Held => done.held += 1,
                Outcome::NotOurs => {}
            }
        }
        Ok(done)
    }

    /// Sends one endpoint's events of a batch, in order, until one fails;
    /// the rest then wait for its retry.
    async fn deliver_to(
        &self,
        leases: &Leases,
        target: Option<Target>,
        messages: Vec<&ClaimedMessage>,
        addresses: &HashMap<String, String>,
    ) -> anyhow::Result<Vec<Outcome>> {
        let mut outcomes = Vec::new();
        let Some(target) = target else {
            // The endpoint was removed since the claim; the purge takes its events.
            messages.iter().for_each(|m| leases.let_go(&row_of(m)));
            return Ok(outcomes);
        };
        for (i, message) in messages.iter().enumerate() {
            let email = message
                .subscriber_id
                .as_ref()
                .and_then(|id| addresses.get(id));
            let outcome = self.deliver(leases, message, &target, email).await?;
            outcomes.push(outcome);
            let due = match outcome {
                Outcome::Retried(due) => due,
                Outcome::Failed => self.clock.now_ms(),
                _ => continue,
            };
            let rest: Vec<String> = messages[i + 1..]
                .iter()
                .map(|m| m.event_id.clone())
                .collect();
            let rows = Rows::Webhooks {
                endpoint: &target.id,
                events: &rest,
            };
            self.queue
                .hold(rows, due, "waiting for the endpoint's retry")
                .await?;
            for held in &messages[i + 1..] {
                leases.let_go(&row_of(held));
                outcomes.push(Outcome::Held);
            }
            break;
        }
        Ok(outcomes)
    }

    /// Sends one event and records what came of it.
    async fn deliver(
        &self,
        leases: &Leases,
        message: &ClaimedMessage,
        target: &Target,
        email: Option<&String>,
    ) -> anyhow::Result<Outcome> {
        let row = row_of(message);
        // A request may take the whole timeout: start it only if the lease
        // outlasts it, or another instance could send the event too.
        let timeout = clock::ms(self.timeout);
        if leases
            .until(&row)
            .is_none_or(|until| until - self.clock.now_ms() < timeout)
        {
            self.queue.release(&row).await?;
            leases.let_go(&row);
            return Ok(Outcome::NotOurs);
        }
        let body = with_address(&message.payload, email)?;
        let result = self.post(target, message, body).await;
        leases.let_go(&row);
        let now = self.clock.now_ms();
        match result {
            Ok(()) => {
                let sent = Finish::Sent {
                    template_version: None,
                };
                self.queue.finish(row.as_rows(), sent, now).await?;
                store::webhook_endpoints::succeeded(&self.store, &target.id).await?;
                crate::metrics::webhook_requests("sent");
                Ok(Outcome::Sent)
            }
            Err(error) => self.failed(&row, message, target, &error).await,
        }
    }

    /// A failed request: retried by the back-off policy or given up, and
    /// counted against its endpoint.
    async fn failed(
        &self,
        row: &Row,
        message: &ClaimedMessage,
        target: &Target,
        error: &str,
    ) -> anyhow::Result<Outcome> {
        let now = self.clock.now_ms();
        tracing::info!(endpoint = %target.id, event = %message.event_id, error, "webhook request failed");
        let disable_before = now - clock::ms(self.config.disable_after);
        if store::webhook_endpoints::failed(&self.store, &target.id, error, now, disable_before)
            .await?
        {
            tracing::warn!(endpoint = %target.id, url = %target.url, "webhook endpoint turned off after a day of failures");
            crate::metrics::webhook_requests("disabled");
        }
        let queued_at = message.created_at.max(target.enabled_at);
        let outcome = match self
            .queue
            .retry(row, message.attempts, queued_at, error)
            .await?
        {
            None => Outcome::NotOurs,
            Some(Retry::At(due)) => {
                crate::metrics::webhook_requests("retried");
                Outcome::Retried(due)
            }
            Some(Retry::GiveUp) => {
                let failed = Finish::Failed(error);
                self.queue.finish(row.as_rows(), failed, now).await?;
                crate::metrics::webhook_requests("failed");
                Outcome::Failed
            }
        };
        Ok(outcome)
    }

    /// POSTs the event, signed; any answer but a 2xx is an error.
    async fn post(
        &self,
        target: &Target,
        message: &ClaimedMessage,
        body: String,
    ) -> Result<(), String> {
        let url = reqwest::Url::parse(&target.url).map_err(|e| format!("bad address: {e}"))?;
        // Checked again: the allow-list may have changed since it was registered.
        check_url(&url, &self.reach)?;
        let timestamp = self.clock.now_ms() / 1000;
        let signature =
            sign(&target.secret, &message.event_id, timestamp, &body).map_err(|e| e.to_string())?;
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
            .map_err(|e| error_chain(&e))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("the endpoint answered {status}"))
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum Outcome {
    Sent,
    /// Due again at this time.
    Retried(i64),
    Failed,
    /// Not tried: waiting for the retry of an event before it.
    Held,
    /// Handed back, or no longer this worker's.
    NotOurs,
}

/// The payload with the reader's address in its `data`, while they exist:
/// stored without it, so an erased reader's address never goes out.
fn with_address(payload: &str, email: Option<&String>) -> anyhow::Result<String> {
    let Some(email) = email else {
        return Ok(payload.to_owned());
    };
    let mut event: serde_json::Value = serde_json::from_str(payload)?;
    if let Some(data) = event
        .get_mut("data")
        .and_then(serde_json::Value::as_object_mut)
    {
        data.insert("email".into(), serde_json::Value::from(email.as_str()));
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
