//! Broadsheet: a self-hosted newsletter and subscription service.

/// Readers' accounts: passwords, sign-in, sessions.
pub mod accounts;
/// Application state, start-up and shutdown.
pub mod app;
/// Checks of the shape ARCHITECTURE.md describes: no import cycles, no
/// file or function over its size.
#[cfg(test)]
mod architecture_rules;
/// Articles: Markdown import, sanitised HTML.
pub mod articles;
/// Files embedded in the binary.
pub mod assets;
/// The audit log of editors' actions.
pub mod audit;
/// `broadsheet backup`: a consistent copy of the database while serving.
pub mod backup_cli;
/// The command line.
pub mod cli;
/// Injected time.
pub mod clock;
/// Typed, layered configuration, every value parsed once as it is loaded.
pub mod config;
/// `broadsheet config check|show`.
pub mod config_cli;
/// Consent wording versions and evidence.
pub mod consent;
/// The console's everyday actions from a terminal.
pub mod console_cli;
/// Durable mail: the outbox queue and its workers.
pub mod delivery;
/// Digests: schedules, campaigns, recipients.
pub mod digest;
/// `broadsheet digest send`.
pub mod digest_cli;
/// Validated values: addresses, names, tokens, digest schedules, feeds.
pub mod domain;
/// `broadsheet editor …` and `broadsheet token …`.
pub mod editor_cli;
/// Editors' accounts, sessions and API tokens.
pub mod editors;
/// Queueing the emails readers get, with or without a single-use link.
pub mod emails;
/// Bounces and complaints reported after a message left.
pub mod feedback;
/// RSS and Atom feeds polled into articles, fetched SSRF-safely (S-04).
pub mod feeds;
/// The service's own health: readiness and the metrics scrape.
pub mod health;
/// Idempotent API requests: keys reserved, answers kept for retries.
pub mod idempotency;
/// Importing readers from CSV.
pub mod import;
/// Email templates, messages and transports.
pub mod mail;
/// Prometheus metrics: requests, reader events, emails, queues.
pub mod metrics;
/// Guarded HTTP clients for addresses others chose: feeds, webhook endpoints.
pub mod outbound_http;
/// The preference centre: digest on/off, frequency, topics, pause.
pub mod preferences;
/// Data rights and retention: export, erasure, purges.
pub mod privacy;
/// Readers as editors see them: search, detail, audited data-rights actions.
pub mod readers;
/// The check that docs/requirements.md explains every requirement id cited.
#[cfg(test)]
mod requirements_doc;
/// Timed jobs: digest schedules, feed polls, retention purges.
pub mod scheduler;
/// Double opt-in signup and confirmation.
pub mod signup;
/// Dashboard and API figures: readers by state, signups per day.
pub mod stats;
/// All SQL, for SQLite and PostgreSQL.
pub mod store;
/// `broadsheet subscriber …`: data-rights requests and CSV imports.
pub mod subscriber_cli;
/// `broadsheet suppression …`.
pub mod suppression_cli;
/// Logging.
pub mod telemetry;
/// The public web site.
pub mod web;
/// `broadsheet webhook …`: the outgoing webhooks' endpoints.
pub mod webhook_cli;
/// The endpoints admins register for outgoing webhooks.
pub mod webhook_endpoints;
/// Outgoing webhooks: signed events sent to endpoints through the lease queue.
pub mod webhooks;
