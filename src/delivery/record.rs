//! Recording digest outcomes as they arrive: a few at a time, one statement
//! per campaign and outcome, and the campaign's counts moved on once.

use std::{collections::HashMap, sync::Arc, time::Duration};

use tokio::sync::{Semaphore, mpsc};

use super::{
    Worker,
    claims::held,
    lease::{Leases, Row},
    outcome::BatchOutcome,
};
use crate::store::{
    campaign_figures::{self, Figures, Kind},
    campaigns::{self, BatchCounts},
    deliveries::ClaimedDelivery,
    queue::{Finish, Rows},
};

/// Results recorded in one go, unless waiting for them takes longer than
/// `RECORD_WAIT`: together they bound what a crash leaves sent but unrecorded.
const RECORD_AT_LEAST: usize = 100;
const RECORD_WAIT: Duration = Duration::from_millis(50);

/// What became of one claimed delivery.
pub(super) enum Outcome {
    Sent,
    /// Put back until `due` after a transient `error`.
    Retried {
        due: i64,
        error: String,
    },
    Failed(String),
    /// No longer eligible, or nothing left in their topics.
    Cancelled,
    Released,
}

/// The relays a digest went through: the last one tried, and those that
/// deferred it before; and its reader's domain, if it has limits.
#[derive(Default)]
pub(super) struct Trail {
    pub last: Option<Arc<str>>,
    pub deferred_by: Vec<Arc<str>>,
    pub domain: Option<Arc<str>>,
}

/// A sender's result for one job: its delivery and what became of it, or
/// the error that stopped claiming.
pub(super) type Sent = anyhow::Result<(ClaimedDelivery, anyhow::Result<(Outcome, Trail)>)>;

pub(super) struct Recorder<'a> {
    worker: &'a Worker,
    leases: Arc<Leases>,
    /// Returned here as results are recorded, so claiming may go on.
    unrecorded: Arc<Semaphore>,
    batch: usize,
}

/// One chunk's finished deliveries, by campaign.
#[derive(Default)]
struct Finished {
    sent: HashMap<String, Vec<String>>,
    cancelled: HashMap<String, Vec<String>>,
    failed: Vec<(String, String, String)>,
    counts: HashMap<String, BatchCounts>,
    /// By campaign, then relay or limited domain.
    figures: HashMap<String, HashMap<(Kind, Arc<str>), Figures>>,
}

impl<'a> Recorder<'a> {
    pub fn new(
        worker: &'a Worker,
        leases: Arc<Leases>,
        unrecorded: Arc<Semaphore>,
        batch: usize,
    ) -> Self {
        Self {
            worker,
            leases,
            unrecorded,
            batch,
        }
    }

    /// Records results until the senders are done; what was recorded.
    pub async fn run(
        self,
        mut arrived: mpsc::UnboundedReceiver<Sent>,
    ) -> anyhow::Result<BatchOutcome> {
        let mut outcome = BatchOutcome::default();
        let mut chunk = Vec::new();
        let limit = self.batch;
        let enough = limit.min(RECORD_AT_LEAST);
        while arrived.recv_many(&mut chunk, limit).await > 0 {
            // A few larger writes cost far less than one per result:
            // wait a moment for more (recv_many is cancel-safe).
            let gather = async {
                while chunk.len() < enough {
                    let room = limit - chunk.len();
                    if arrived.recv_many(&mut chunk, room).await == 0 {
                        break;
                    }
                }
            };
            let _ = tokio::time::timeout(RECORD_WAIT, gather).await;
            let taken = std::mem::take(&mut chunk);
            let recorded = taken.len();
            // Renewed until recorded: a sent row still pending must not
            // be taken by another worker meanwhile.
            let rows: Vec<Row> = taken.iter().flatten().map(|(d, _)| held(d)).collect();
            let mut recorded_now = BatchOutcome {
                claimed: recorded,
                ..BatchOutcome::default()
            };
            if let Err(error) = self.record(taken, &mut recorded_now).await {
                // Claiming must not wait for permits nobody will return.
                self.unrecorded.close();
                return Err(error);
            }
            for row in &rows {
                self.leases.let_go(row);
            }
            recorded_now.count("digest");
            outcome.add(recorded_now);
            self.unrecorded.add_permits(recorded);
        }
        Ok(outcome)
    }

    /// Records final outcomes and counts what changed: a reader who
    /// withdrew meanwhile is already `cancelled` and is not counted again.
    async fn record(&self, results: Vec<Sent>, outcome: &mut BatchOutcome) -> anyhow::Result<()> {
        let mut finished = Finished::default();
        let mut first_error = None;
        for result in results {
            // Record everyone else's outcome first: sent mail must not stay
            // pending and go out again.
            match result {
                Ok((delivery, Ok((result, trail)))) => {
                    finished.add_trail(&delivery.campaign_id, &result, trail);
                    finished.add(delivery, result, outcome);
                }
                Ok((_, Err(error))) | Err(error) => {
                    first_error.get_or_insert(error);
                }
            }
        }
        self.write(finished).await?;
        first_error.map_or(Ok(()), Err)
    }

    /// One statement per campaign and outcome (one per failure: each has
    /// its own error), then each campaign's counts.
    async fn write(&self, finished: Finished) -> anyhow::Result<()> {
        let queue = &self.worker.deliveries;
        let now = self.worker.clock.now_ms();
        let rows = |campaign, subscribers| Rows::Deliveries {
            campaign,
            subscribers,
        };
        let mut counts = finished.counts;
        for (campaign, subscriber, error) in &finished.failed {
            let failed = rows(campaign, std::slice::from_ref(subscriber));
            let changed = queue.finish(failed, Finish::Failed(error), now).await?;
            counts.entry(campaign.clone()).or_default().failed += changed;
        }
        let sent = Finish::Sent {
            template_version: None,
        };
        for (campaign, ids) in &finished.sent {
            let changed = queue.finish(rows(campaign, ids), sent, now).await?;
            counts.entry(campaign.clone()).or_default().sent += changed;
        }
        for (campaign, ids) in &finished.cancelled {
            let cancelled = rows(campaign, ids);
            let changed = queue.finish(cancelled, Finish::Cancelled, now).await?;
            counts.entry(campaign.clone()).or_default().cancelled += changed;
        }
        let store = &self.worker.store;
        for (campaign, counts) in counts {
            campaigns::add_counts(store, &campaign, counts, now).await?;
        }
        for (campaign, figures) in finished.figures {
            for ((kind, _), figures) in &figures {
                campaign_figures::add(store, &campaign, *kind, figures).await?;
            }
        }
        Ok(())
    }
}

impl Finished {
    /// Counts what each relay, and the reader's domain if it has limits,
    /// did with this delivery.
    fn add_trail(&mut self, campaign: &str, result: &Outcome, trail: Trail) {
        for name in trail.deferred_by {
            self.figures(campaign, Kind::Relay, &name).deferred += 1;
        }
        let last = trail.last.map(|name| (Kind::Relay, name));
        for (kind, name) in last
            .into_iter()
            .chain(trail.domain.map(|d| (Kind::Domain, d)))
        {
            let figures = self.figures(campaign, kind, &name);
            match result {
                Outcome::Sent => figures.sent += 1,
                Outcome::Failed(_) => figures.failed += 1,
                Outcome::Retried { .. } | Outcome::Released => figures.deferred += 1,
                Outcome::Cancelled => {}
            }
        }
    }

    /// Looked up before it is made: one allocation per campaign and
    /// name, not per message.
    fn figures(&mut self, campaign: &str, kind: Kind, name: &Arc<str>) -> &mut Figures {
        if !self.figures.contains_key(campaign) {
            self.figures.insert(campaign.to_owned(), HashMap::new());
        }
        let by_name = self.figures.get_mut(campaign).expect("inserted above");
        by_name
            .entry((kind, name.clone()))
            .or_insert_with(|| Figures {
                name: name.to_string(),
                ..Figures::default()
            })
    }

    fn add(&mut self, delivery: ClaimedDelivery, result: Outcome, outcome: &mut BatchOutcome) {
        let (campaign, subscriber) = (delivery.campaign_id, delivery.subscriber_id);
        match result {
            Outcome::Sent => {
                outcome.sent += 1;
                self.sent.entry(campaign).or_default().push(subscriber);
            }
            Outcome::Cancelled => {
                outcome.cancelled += 1;
                self.cancelled.entry(campaign).or_default().push(subscriber);
            }
            Outcome::Failed(error) => {
                outcome.failed += 1;
                self.failed.push((campaign, subscriber, error));
            }
            Outcome::Retried { due, error } => {
                outcome.retried += 1;
                self.counts
                    .entry(campaign)
                    .or_default()
                    .add_retry(due, error);
            }
            Outcome::Released => outcome.released += 1,
        }
    }
}
