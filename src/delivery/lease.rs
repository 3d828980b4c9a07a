//! The leases a batch holds while it runs, kept short and renewed.
//!
//! A claimed row is reserved for `delivery.lease_s` (30 s by default): if
//! the worker dies, another takes the row when that runs out. A batch that
//! lives longer renews the leases of the rows it still holds every third of
//! a lease (a heartbeat), so a long batch keeps its rows and a killed one
//! gives them back within one lease.
//!
//! Each row's own deadline is kept here and moves only when the database
//! says its lease was extended: a row whose lease ran out and was taken by
//! another worker keeps its old deadline, so it is never sent by both.

use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
    time::Duration,
};

use crate::{
    clock::{self, Clock},
    store::{
        Store,
        queue::{self, Rows},
    },
};

/// A row of one of the queues.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Row {
    /// An account email in `outbox`, by id.
    Email(String),
    /// A reader's digest of a campaign, in `deliveries`.
    Delivery {
        campaign: String,
        subscriber: String,
    },
    /// An event for a webhook endpoint, in `webhook_messages`.
    Webhook { endpoint: String, event: String },
}

impl Row {
    pub fn email(id: &str) -> Self {
        Row::Email(id.to_owned())
    }

    pub fn delivery(campaign: &str, subscriber: &str) -> Self {
        Row::Delivery {
            campaign: campaign.to_owned(),
            subscriber: subscriber.to_owned(),
        }
    }

    /// This row alone, as the store names rows.
    pub fn as_rows(&self) -> Rows<'_> {
        match self {
            Row::Email(id) => Rows::Outbox(std::slice::from_ref(id)),
            Row::Delivery {
                campaign,
                subscriber,
            } => Rows::Deliveries {
                campaign,
                subscribers: std::slice::from_ref(subscriber),
            },
            Row::Webhook { endpoint, event } => Rows::Webhooks {
                endpoint,
                events: std::slice::from_ref(event),
            },
        }
    }

    /// The rows a statement may name together (a queue, and within it a
    /// campaign or an endpoint), and this row's id within them.
    fn group(&self) -> (Group, &str) {
        match self {
            Row::Email(id) => (Group::Emails, id),
            Row::Delivery {
                campaign,
                subscriber,
            } => (Group::Campaign(campaign.clone()), subscriber),
            Row::Webhook { endpoint, event } => (Group::Endpoint(endpoint.clone()), event),
        }
    }
}

/// Rows one statement can name: see [`Row::group`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Group {
    Emails,
    Campaign(String),
    Endpoint(String),
}

impl Group {
    fn rows<'a>(&'a self, ids: &'a [String]) -> Rows<'a> {
        match self {
            Group::Emails => Rows::Outbox(ids),
            Group::Campaign(campaign) => Rows::Deliveries {
                campaign,
                subscribers: ids,
            },
            Group::Endpoint(endpoint) => Rows::Webhooks {
                endpoint,
                events: ids,
            },
        }
    }

    fn row(&self, id: String) -> Row {
        match self {
            Group::Emails => Row::Email(id),
            Group::Campaign(campaign) => Row::Delivery {
                campaign: campaign.clone(),
                subscriber: id,
            },
            Group::Endpoint(endpoint) => Row::Webhook {
                endpoint: endpoint.clone(),
                event: id,
            },
        }
    }
}

/// The rows one batch holds, each with the moment its lease ends.
pub struct Leases {
    owner: String,
    store: Store,
    clock: Clock,
    lease: Duration,
    held: Mutex<HashMap<Row, i64>>,
}

impl Leases {
    pub fn new(owner: &str, store: &Store, clock: &Clock, lease: Duration) -> Arc<Self> {
        Arc::new(Self {
            owner: owner.to_owned(),
            store: store.clone(),
            clock: clock.clone(),
            lease,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// Takes note of a row claimed with a lease until `until`; false, and
    /// nothing changed, if the batch already holds it.
    pub fn hold(&self, row: Row, until: i64) -> bool {
        match self.rows().entry(row) {
            std::collections::hash_map::Entry::Occupied(_) => false,
            std::collections::hash_map::Entry::Vacant(entry) => {
                entry.insert(until);
                true
            }
        }
    }

    /// The row is sent, given up or handed back: no longer renewed.
    pub fn let_go(&self, row: &Row) {
        self.rows().remove(row);
    }

    /// When the row's lease ends, as far as this batch knows; `None` once
    /// let go.
    pub fn until(&self, row: &Row) -> Option<i64> {
        self.rows().get(row).copied()
    }

    fn rows(&self) -> std::sync::MutexGuard<'_, HashMap<Row, i64>> {
        // A panic elsewhere while holding the lock leaves the map usable.
        self.held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `work`, renewing the leases of the rows held meanwhile every
    /// third of a lease; returns what `work` returns.
    pub async fn while_renewing<T>(&self, work: impl Future<Output = T>) -> T {
        let every = (self.lease / 3).max(Duration::from_millis(1));
        let mut beat = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
        beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Polled side by side with the work, never instead of it: a renewal
        // waiting for the database must not hold up sends in flight.
        let heartbeat = async {
            loop {
                beat.tick().await;
                // A failed renewal changes no deadline: the rows' sends stop
                // in time and the leases run out as if we had died.
                if let Err(error) = self.renew().await {
                    tracing::warn!(
                        error = crate::telemetry::error_text(&error),
                        "leases not renewed"
                    );
                }
            }
        };
        tokio::select! {
            output = work => output,
            _ = heartbeat => unreachable!("the heartbeat never ends"),
        }
    }

    /// Extends the lease of every row held, in one statement per queue and
    /// campaign (or endpoint), and moves the deadline of each the database
    /// extended.
    async fn renew(&self) -> anyhow::Result<()> {
        let mut groups: HashMap<Group, Vec<String>> = HashMap::new();
        for row in self.rows().keys() {
            let (group, id) = row.group();
            groups.entry(group).or_default().push(id.to_owned());
        }
        let until = self.clock.now_ms() + clock::ms(self.lease);
        let mut renewed = Vec::new();
        // Each statement on its own: one that fails leaves the others' rows renewed.
        let mut failed = None;
        for (group, ids) in groups {
            match queue::renew(&self.store, &self.owner, group.rows(&ids), until).await {
                Ok(ids) => renewed.extend(ids.into_iter().map(|id| group.row(id))),
                Err(error) => failed = Some(error),
            }
        }
        let mut held = self.rows();
        for row in renewed {
            // Only rows still held: one let go meanwhile stays let go.
            if let Some(deadline) = held.get_mut(&row) {
                *deadline = until;
            }
        }
        failed.map_or(Ok(()), Err)
    }
}
