//! Durable mail delivery: the workers that claim, render, send and record
//! (DESIGN "Durable mail"); `crate::emails` queues in the caller's transaction.
//! Account mail and digests are two instances of one lease queue; outgoing
//! webhooks (the `webhooks` module) are the third.

mod claims;
mod digest;
mod lease;
mod outcome;
mod queue;
mod record;
mod refusal;
mod retry;
mod throttle;
mod worker;

pub use lease::{Leases, Row};
pub use outcome::BatchOutcome;
pub use queue::LeaseQueue;
pub use refusal::Refusals;
pub use retry::Retry;
pub use throttle::warmup_today;
pub use worker::{Intake, Worker, WorkerSettings};
