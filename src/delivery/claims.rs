//! Claiming digest deliveries ahead of the sends, so the connections never
//! wait for a claim: each claimed delivery becomes a [`Job`] with its
//! reader, their topics and the campaign, all checked again at claim time
//! (G-10, E-26).

use std::{collections::HashMap, sync::Arc};

use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Worker,
    lease::{Leases, Row},
    throttle::{Hold, domain_of},
};
use crate::{
    digest::Campaign,
    store::{
        campaign_articles,
        campaign_figures::{self, Figures, Kind},
        campaigns,
        deliveries::{self, ClaimedDelivery, Recipient},
        queue::Rows,
    },
};

/// A claimed delivery with what sending it needs.
pub(super) struct Job {
    pub delivery: ClaimedDelivery,
    pub campaign: Option<Arc<Campaign>>,
    pub recipient: Option<Recipient>,
    pub topics: Vec<String>,
}

impl Job {
    pub fn row(&self) -> Row {
        held(&self.delivery)
    }
}

/// How a claimed delivery is known to the batch's [`Leases`].
pub(super) fn held(delivery: &ClaimedDelivery) -> Row {
    Row::delivery(&delivery.campaign_id, &delivery.subscriber_id)
}

/// Claims batches of due deliveries and hands each job on.
pub(super) struct Claims<'a> {
    worker: &'a Worker,
    leases: Arc<Leases>,
    cancel: CancellationToken,
    /// Campaigns seen by this run, loaded once.
    campaigns: HashMap<String, Option<Arc<Campaign>>>,
    /// One permit per claimed delivery not yet recorded: claiming waits for
    /// the recorder here, where waiting holds up nothing in flight.
    unrecorded: Arc<Semaphore>,
}

impl<'a> Claims<'a> {
    pub fn new(
        worker: &'a Worker,
        leases: Arc<Leases>,
        cancel: CancellationToken,
        unrecorded: Arc<Semaphore>,
    ) -> Self {
        Self {
            worker,
            leases,
            cancel,
            campaigns: HashMap::new(),
            unrecorded,
        }
    }

    /// Claims batches into `jobs` until none is due, `cancel` fires, or
    /// claiming fails (the error is the last thing sent).
    pub async fn run(mut self, jobs: mpsc::UnboundedSender<anyhow::Result<Job>>) {
        while !self.cancel.is_cancelled() {
            match self.claim().await {
                Ok(None) => return,
                Ok(Some(batch)) => {
                    for job in batch {
                        if jobs.send(Ok(job)).is_err() {
                            return; // nobody sends any more; the leases run out
                        }
                    }
                }
                Err(error) => {
                    let _ = jobs.send(Err(error));
                    return;
                }
            }
        }
    }

    /// One batch of jobs (empty if every one was held back); `None` once
    /// nothing is due.
    async fn claim(&mut self) -> anyhow::Result<Option<Vec<Job>>> {
        let worker = self.worker;
        let batch = u32::try_from(worker.digest_batch).unwrap_or(u32::MAX);
        self.unrecorded.acquire_many(batch).await?.forget();
        // After the wait: the lease runs from the claim, not from before it.
        let now = worker.clock.now_ms();
        let lease_until = worker.deliveries.lease_until(now);
        let owner = worker.deliveries.owner();
        let store = &worker.store;
        let claimed =
            deliveries::claim(store, owner, now, lease_until, worker.digest_batch).await?;
        self.unrecorded
            .add_permits((batch as usize).saturating_sub(claimed.len()));
        if claimed.is_empty() {
            campaigns::close_finished(store, now).await?;
            return Ok(None);
        }
        let ids: Vec<String> = claimed.iter().map(|d| d.subscriber_id.clone()).collect();
        let mut recipients: HashMap<String, Recipient> = deliveries::recipients(store, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let claimed = self.held_back(claimed, &recipients, now).await?;
        self.load_campaigns(&claimed).await?;
        let ids: Vec<String> = claimed.iter().map(|d| d.subscriber_id.clone()).collect();
        let mut topics: HashMap<String, Vec<String>> = HashMap::new();
        for (id, topic) in deliveries::topics(store, &ids).await? {
            topics.entry(id).or_default().push(topic);
        }
        let mut jobs = Vec::with_capacity(claimed.len());
        for delivery in claimed {
            // Claimed again while its first job still waits (its lease ran
            // out unrenewed): that job stands, no second one is made.
            if !self.leases.hold(held(&delivery), lease_until) {
                self.unrecorded.add_permits(1);
                continue;
            }
            jobs.push(Job {
                campaign: self.campaigns.get(&delivery.campaign_id).cloned().flatten(),
                recipient: recipients.remove(&delivery.subscriber_id),
                topics: topics.remove(&delivery.subscriber_id).unwrap_or_default(),
                delivery,
            });
        }
        Ok(Some(jobs))
    }

    /// Hands back the deliveries that may not go now (a domain's limit or
    /// deferral, the warm-up ceiling), noting why on their campaigns;
    /// returns the others.
    async fn held_back(
        &self,
        claimed: Vec<ClaimedDelivery>,
        recipients: &HashMap<String, Recipient>,
        now: i64,
    ) -> anyhow::Result<Vec<ClaimedDelivery>> {
        let worker = self.worker;
        let domains: Vec<Option<&str>> = claimed
            .iter()
            .map(|d| {
                let reader = recipients.get(&d.subscriber_id).filter(|r| r.eligible != 0);
                reader.map(|r| domain_of(&r.email_canonical))
            })
            .collect();
        let holds = worker.throttles.admit(&worker.store, &domains, now).await?;
        let mut waiting: HashMap<(String, i64, String), Vec<String>> = HashMap::new();
        let mut held_by_domain: HashMap<(String, &str), i64> = HashMap::new();
        let mut going = Vec::with_capacity(claimed.len());
        for ((delivery, hold), domain) in claimed.into_iter().zip(holds).zip(&domains) {
            match hold {
                None => going.push(delivery),
                Some(Hold { until, why }) => {
                    if let Some(domain) = domain.filter(|d| worker.throttles.is_limited(d)) {
                        crate::metrics::domain_message(domain, "held");
                        let key = (delivery.campaign_id.clone(), domain);
                        *held_by_domain.entry(key).or_default() += 1;
                    }
                    let key = (delivery.campaign_id, until, why);
                    waiting.entry(key).or_default().push(delivery.subscriber_id);
                }
            }
        }
        for ((campaign, domain), held) in held_by_domain {
            let figures = Figures {
                name: domain.to_owned(),
                held,
                ..Figures::default()
            };
            campaign_figures::add(&worker.store, &campaign, Kind::Domain, &figures).await?;
        }
        for ((campaign, until, why), subscribers) in waiting {
            let count = subscribers.len();
            let rows = Rows::Deliveries {
                campaign: &campaign,
                subscribers: &subscribers,
            };
            worker.deliveries.hold(rows, until, &why).await?;
            campaigns::held(&worker.store, &campaign, until, &why).await?;
            self.unrecorded.add_permits(count);
            tracing::info!(%campaign, count, until, %why, "digests held back");
        }
        Ok(going)
    }

    /// Loads the campaigns of these deliveries not seen yet by this run.
    async fn load_campaigns(&mut self, claimed: &[ClaimedDelivery]) -> anyhow::Result<()> {
        let store = &self.worker.store;
        for delivery in claimed {
            let id = &delivery.campaign_id;
            if self.campaigns.contains_key(id) {
                continue;
            }
            let campaign = match campaigns::campaign(store, id).await? {
                None => None,
                Some(row) => {
                    let articles = campaign_articles::campaign_articles(store, &row.id).await?;
                    Some(Arc::new(Campaign::new(row, articles)))
                }
            };
            self.campaigns.insert(id.clone(), campaign);
        }
        Ok(())
    }
}
