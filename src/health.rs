//! The service's own health, for probes and scrapes: whether the database
//! answers, and the metrics text with the figures read from it.

use crate::store::Store;

/// Readiness and metrics for handlers.
#[derive(Clone)]
pub struct Health {
    store: Store,
}

impl Health {
    pub fn new(store: Store) -> Self {
        Self { store }
    }

    /// The process can serve: its database answers.
    pub async fn ready(&self) -> bool {
        self.store.is_reachable().await
    }

    /// `/metrics` in the Prometheus text format, with queue depths and
    /// campaign progress read from the database.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        crate::metrics::render(&self.store).await
    }
}
