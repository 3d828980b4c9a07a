//! Prometheus metrics: HTTP requests by route and status with a latency
//! histogram, the readers' key events, emails by kind and outcome, and, read
//! from the database at each scrape, queue depth and campaign progress.
//!
//! Counters live in the `metrics` crate's global recorder (one per process);
//! `/metrics` renders them in the Prometheus text format.

use std::{sync::OnceLock, time::Instant};

use axum::{
    extract::{MatchedPath, Request},
    middleware::Next,
    response::Response,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::store::Store;

const HTTP_REQUESTS: &str = "broadsheet_http_requests_total";
const HTTP_DURATION: &str = "broadsheet_http_request_duration_seconds";

/// The process's recorder, installed on first use.
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full(HTTP_DURATION.into()),
                &[
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
                ],
            )
            .expect("the bucket list is not empty");
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        // Another recorder may be installed already (an embedding program):
        // then ours still renders what was recorded through it, i.e. nothing.
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!("a metrics recorder was installed already; /metrics will be empty");
        }
        handle
    })
}

/// Counts each request by route template (never the URI: URIs carry
/// tokens) and status, and times it.
pub async fn track_requests(request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    // Made-up methods would each make a new series.
    let method = match request.method().as_str() {
        m @ ("GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS") => m.to_owned(),
        _ => "OTHER".to_owned(),
    };
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!(HTTP_REQUESTS, "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!(HTTP_DURATION, "route" => route).record(started.elapsed().as_secs_f64());
    response
}

/// Folds recorded samples into the histograms; without it they pile up
/// between scrapes. Run every few seconds.
pub fn upkeep() {
    handle().run_upkeep();
}

/// A reader signed up, confirmed, or withdrew newsletter consent.
pub fn reader_event(event: &'static str) {
    metrics::counter!("broadsheet_reader_events_total", "event" => event).increment(1);
}

/// A bounce or complaint report by its source, its kind and what became
/// of it (`stored`, `duplicate`, or `unmatched`: no reader could be found).
pub fn feedback(source: &'static str, kind: &'static str, outcome: &'static str) {
    metrics::counter!(
        "broadsheet_feedback_total",
        "source" => source,
        "kind" => kind,
        "outcome" => outcome
    )
    .increment(1);
}

/// Emails of `kind` ("account" or "digest") by what became of them.
pub fn emails(kind: &'static str, outcomes: &[(&'static str, usize)]) {
    for &(result, count) in outcomes {
        if count > 0 {
            metrics::counter!("broadsheet_emails_total", "kind" => kind, "outcome" => result)
                .increment(u64::try_from(count).unwrap_or(u64::MAX));
        }
    }
}

/// Messages one SMTP relay sent, deferred (they may go through another)
/// or refused for good.
/// Registered once per relay and outcome: the handle is kept, since a
/// lookup by labels per message cost more than the rest of the choice.
pub fn relay_messages(relay: &str, outcome: &'static str) -> metrics::Counter {
    metrics::counter!("broadsheet_relay_messages_total", "relay" => relay.to_owned(), "outcome" => outcome)
}

/// A digest to a domain with limits (`delivery.domain_limits`; others are
/// not named, so the series stay few): sent, deferred by the domain
/// (4.7.x), or held back by its limit, its deferral or the warm-up.
pub fn domain_message(domain: &str, outcome: &'static str) {
    metrics::counter!("broadsheet_domain_messages_total", "domain" => domain.to_owned(), "outcome" => outcome)
        .increment(1);
}

/// A relay's circuit breaker: 0 closed (in rotation), 1 open (out of
/// rotation), 2 probing (one message is testing it).
pub fn relay_state(relay: &str, state: &'static str) {
    let value = match state {
        "open" => 1.0,
        "probing" => 2.0,
        _ => 0.0,
    };
    metrics::gauge!("broadsheet_relay_breaker_state", "relay" => relay.to_owned()).set(value);
}

/// The text `/metrics` serves: the counters, plus gauges read from the
/// database now. The gauges are written here rather than recorded, so a
/// finished campaign drops out instead of keeping its last values.
pub async fn render(store: &Store) -> anyhow::Result<String> {
    use std::fmt::Write as _;
    let depth = crate::store::stats::queue_depth(store.pool()).await?;
    let mut text = handle().render();
    text.push_str("# HELP broadsheet_queue_depth Messages waiting to be sent.\n");
    text.push_str("# TYPE broadsheet_queue_depth gauge\n");
    writeln!(
        text,
        "broadsheet_queue_depth{{queue=\"account\"}} {}",
        depth.outbox
    )?;
    writeln!(
        text,
        "broadsheet_queue_depth{{queue=\"digest\"}} {}",
        depth.deliveries
    )?;
    text.push_str(
        "# HELP broadsheet_campaign_deliveries Deliveries of each running campaign by state.\n",
    );
    text.push_str("# TYPE broadsheet_campaign_deliveries gauge\n");
    // Campaign ids are UUIDs: nothing in them needs escaping.
    for c in crate::store::campaigns::running(store).await? {
        for (state, value) in [
            ("recipients", c.recipients),
            ("sent", c.sent),
            ("failed", c.failed),
            ("cancelled", c.cancelled),
        ] {
            writeln!(
                text,
                "broadsheet_campaign_deliveries{{campaign=\"{}\",state=\"{state}\"}} {value}",
                c.id
            )?;
        }
    }
    Ok(text)
}

/// Requests to webhook endpoints: `sent` (a 2xx answer), `retried`,
/// `failed` (given up), `disabled` (an endpoint turned off after a day of
/// failures).
pub fn webhook_requests(outcome: &'static str) {
    metrics::counter!("broadsheet_webhook_requests_total", "outcome" => outcome).increment(1);
}
