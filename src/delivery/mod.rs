//! Durable mail delivery: the workers that claim, render, send and record
//! (DESIGN "Durable mail"); `crate::emails` queues in the caller's transaction.

mod backoff;
mod digest;
mod lease;
mod shape;
mod worker;

pub use digest::{DigestSettings, NextDigest, Preview};
pub use worker::{BatchOutcome, Intake, Worker, WorkerSettings};
