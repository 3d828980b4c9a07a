//! The integration tests, as one binary: each module is one area, run
//! against the real router, a real SMTP server and both databases
//! (`support`). One binary links the crate once instead of once per area,
//! which is most of the suite's build time. `tests/metrics.rs` stays a
//! binary of its own: its counters are per process.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

mod abuse;
mod access;
mod accounts;
mod api;
mod articles;
mod browser;
mod cli;
mod console;
mod delivery;
mod digest_articles;
mod digests;
mod emailed_links;
mod faults;
mod feeds;
mod fuzz_corpus;
mod hostile;
mod import;
mod privacy;
mod signup;
mod smtp_tls;
