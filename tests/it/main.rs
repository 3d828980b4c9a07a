//! The integration tests, as one binary: each module is one area, run
//! against the real router, a real SMTP server and both databases
//! (`support`). One binary links the crate once instead of once per area,
//! which is most of the suite's build time. `tests/metrics.rs` stays a
//! binary of its own: its counters are per process.

#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

#[macro_use]
#[path = "../support/mod.rs"]
mod support;

/// CI sets `BROADSHEET_TEST_REQUIRE_POSTGRES`: there, PostgreSQL variants
/// compiled as ignored (no URL when the tests were built) fail the run.
#[cfg(not(postgres_tests))]
#[test]
fn postgres_variants_are_built_where_they_are_required() {
    assert!(
        std::env::var_os("BROADSHEET_TEST_REQUIRE_POSTGRES").is_none(),
        "BROADSHEET_TEST_REQUIRE_POSTGRES is set, but BROADSHEET_TEST_POSTGRES_URL was not when the tests were built"
    );
}

mod abuse;
mod access;
mod accessibility;
mod accounts;
mod api;
mod articles;
mod backup;
mod browser;
mod cli;
mod console;
mod delivery;
mod digest_articles;
mod digests;
mod emailed_links;
mod faults;
mod feedback;
mod feeds;
mod fuzz_corpus;
mod hostile;
mod import;
mod outgoing_webhooks;
mod privacy;
mod proxy;
mod relays;
mod signup;
mod signup_writer;
mod smtp_tls;
mod suppressions;
mod throttles;
mod webhooks;
