//! What a batch of sends did, counted for the caller and for `/metrics`.

/// What one call of [`Worker::deliver_batch`] did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct BatchOutcome {
    pub claimed: usize,
    pub sent: usize,
    pub retried: usize,
    pub failed: usize,
    /// Digests not sent because the reader no longer qualifies.
    pub cancelled: usize,
    pub released: usize,
}

impl BatchOutcome {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: BatchOutcome) {
        self.claimed += other.claimed;
        self.sent += other.sent;
        self.retried += other.retried;
        self.failed += other.failed;
        self.cancelled += other.cancelled;
        self.released += other.released;
    }

    /// Adds these outcomes to the `kind` ("account" or "digest") counters.
    pub fn count(&self, kind: &'static str) {
        crate::metrics::emails(
            kind,
            &[
                ("sent", self.sent),
                ("failed", self.failed),
                ("retried", self.retried),
                ("cancelled", self.cancelled),
            ],
        );
    }
}
