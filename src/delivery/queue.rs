//! One lease queue, of which account mail (`outbox`) and digests
//! (`deliveries`) are two instances: rows are claimed under a short lease,
//! renewed while the batch runs ([`Leases`]), then finished in chunks,
//! rescheduled by the one retry policy, or handed back on shutdown. Every
//! change checks that this worker still holds the row, except that a sent
//! message is recorded sent ([`queue::finish`]).

use std::{sync::Arc, time::Duration};

use super::{
    lease::{Leases, Row},
    retry::{Retry, RetryPolicy},
};
use crate::{
    clock::{self, Clock},
    config::DeliveryConfig,
    store::{
        Store,
        queue::{self, Finish, Queue, Rows},
    },
};

#[derive(Clone)]
pub struct LeaseQueue {
    queue: Queue,
    store: Store,
    clock: Clock,
    /// Names this worker's leases, so a change never touches another's rows.
    owner: String,
    lease: Duration,
    retry: RetryPolicy,
}

impl LeaseQueue {
    pub fn new(
        queue: Queue,
        store: &Store,
        clock: &Clock,
        owner: &str,
        config: &DeliveryConfig,
    ) -> Self {
        Self {
            queue,
            store: store.clone(),
            clock: clock.clone(),
            owner: owner.to_owned(),
            lease: config.lease,
            retry: RetryPolicy::new(config),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// When a lease taken at `now` ends.
    pub fn lease_until(&self, now: i64) -> i64 {
        now + clock::ms(self.lease)
    }

    /// A batch's leases, renewed while it runs.
    pub fn leases(&self) -> Arc<Leases> {
        Leases::new(&self.owner, &self.store, &self.clock, self.lease)
    }

    /// Hands a claimed row back untried: another worker, or the next batch,
    /// takes it at once.
    pub async fn release(&self, row: &Row) -> anyhow::Result<()> {
        debug_assert_eq!(row.as_rows().queue(), self.queue);
        queue::release(&self.store, &self.owner, row.as_rows()).await?;
        Ok(())
    }

    /// Hands claimed rows back untried, due again at `due` (see
    /// [`queue::hold`]); returns how many were still this worker's.
    pub async fn hold(&self, rows: Rows<'_>, due: i64, why: &str) -> anyhow::Result<i64> {
        debug_assert_eq!(rows.queue(), self.queue);
        queue::hold(&self.store, &self.owner, rows, due, why).await
    }

    /// A transient failure after `attempts` tries of a row queued at
    /// `queued_at`: rescheduled by the retry policy, or, past its limit,
    /// [`Retry::GiveUp`] for the caller to finish as failed. `None` if the
    /// row is no longer this worker's (its lease ran out and was taken).
    pub async fn retry(
        &self,
        row: &Row,
        attempts: i64,
        queued_at: i64,
        error: &str,
    ) -> anyhow::Result<Option<Retry>> {
        debug_assert_eq!(row.as_rows().queue(), self.queue);
        let retry = self.retry.after(attempts, queued_at, self.clock.now_ms());
        if let Retry::At(due) = retry {
            let rows = row.as_rows();
            if queue::reschedule(&self.store, &self.owner, rows, due, error).await? == 0 {
                return Ok(None);
            }
        }
        Ok(Some(retry))
    }

    /// Finishes rows of this queue in one statement, as of `now`; returns
    /// how many changed (see [`queue::finish`]).
    pub async fn finish(&self, rows: Rows<'_>, how: Finish<'_>, now: i64) -> anyhow::Result<i64> {
        debug_assert_eq!(rows.queue(), self.queue);
        queue::finish(&self.store, &self.owner, rows, how, now).await
    }
}
