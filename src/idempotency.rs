//! Idempotent API requests (`Idempotency-Key`): a key is reserved while its
//! request runs, then keeps the answer for a day (the retention purge drops
//! it) or is let go if the request failed, so a retry runs again.

use std::time::Duration;

use crate::{
    clock::{self, Clock},
    store::{
        Store,
        audit::{self, KeptAnswer},
    },
};

/// The keys of idempotent requests, per caller.
#[derive(Clone)]
pub struct Idempotency {
    store: Store,
    clock: Clock,
    /// A reservation older than this was left by a request that died.
    stale_after: Duration,
}

impl Idempotency {
    /// `request_timeout`: the longest any request may run.
    pub fn new(store: Store, clock: Clock, request_timeout: Duration) -> Self {
        Self {
            store,
            clock,
            stale_after: request_timeout.saturating_mul(2),
        }
    }

    /// Claims `key` for `actor`'s request about to run; `false` if it is
    /// taken. A reservation older than any request may run was left by one
    /// that died (timeout, crash): it is taken over rather than blocking
    /// retries.
    pub async fn reserve(
        &self,
        actor: &str,
        key: &str,
        request_hash: &str,
    ) -> anyhow::Result<bool> {
        let now = self.clock.now_ms();
        let stale_before = now - clock::ms(self.stale_after);
        let pool = self.store.pool();
        audit::reserve(pool, actor, key, request_hash, now, stale_before).await
    }

    /// Keeps the answer to a reserved key.
    pub async fn complete(
        &self,
        actor: &str,
        key: &str,
        status: i64,
        body: &str,
    ) -> anyhow::Result<()> {
        audit::complete(self.store.pool(), actor, key, status, body).await
    }

    /// Lets a key go whose request failed, so a retry runs again.
    pub async fn release(&self, actor: &str, key: &str) -> anyhow::Result<()> {
        audit::release(self.store.pool(), actor, key).await
    }

    /// The answer kept for a key seen before, or its reservation.
    pub async fn kept_answer(&self, actor: &str, key: &str) -> anyhow::Result<Option<KeptAnswer>> {
        audit::kept_answer(self.store.pool(), actor, key).await
    }
}
