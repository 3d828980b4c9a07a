//! Durable mail delivery: queueing inside the caller's transaction, and the
//! workers that claim, render, send and record (DESIGN "Durable mail").

mod backoff;
mod digest;
mod queue;
mod worker;

pub use digest::{DigestSettings, Preview};
pub use queue::{QueuedEmail, queue_email};
pub use worker::{BatchOutcome, Worker, WorkerSettings};
