//! `/metrics` in the Prometheus text format: requests by route and status,
//! reader events, emails by kind, queue depth and campaign progress.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use broadsheet::{app::Role, digest, editors::Role as EditorRole};
use support::{Backend, TestApp, free_port};

storage_tests!(
    metrics_count_requests_reader_events_emails_and_show_campaigns,
    metrics_bind_moves_metrics_off_the_site,
);

async fn scrape(app: &TestApp, token: &str) -> reqwest::Response {
    app.client
        .get(app.url("/metrics"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
}

/// The value of the first sample line starting with `prefix`.
fn sample(text: &str, prefix: &str) -> Option<f64> {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .and_then(|line| line.rsplit(' ').next())
        .and_then(|value| value.parse().ok())
}

/// Counters are per process, and this file's tests share one: each test
/// holds this while it runs, so a test's deltas are its own.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What a counter grew by between two scrapes (a counter not yet seen is 0).
fn delta(before: &str, after: &str, counter: &str) -> f64 {
    sample(after, counter).unwrap_or(0.0) - sample(before, counter).unwrap_or(0.0)
}

async fn metrics_count_requests_reader_events_emails_and_show_campaigns(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let app = TestApp::spawn(backend).await;
    let admin = app.api_token("prometheus", EditorRole::Admin).await;
    let before = scrape(&app, &admin).await.text().await.unwrap();
    app.confirmed_reader("reader@example.com", true).await;
    app.import_article("+++\ntitle = \"Counted\"\n+++\nBody.\n")
        .await;
    let digest::Started::Campaign { id, .. } = app.send_digest_now().await else {
        panic!("a campaign");
    };
    // On the site itself, only for an admin's token.
    assert_eq!(app.get("/metrics").await.status(), 401);
    let editor = app.api_token("writer", EditorRole::Editor).await;
    assert_eq!(scrape(&app, &editor).await.status(), 401);
    let response = scrape(&app, &admin).await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    // Exactly what this test did: one signup form, one confirmation, and
    // its two emails (confirmation and credentials).
    let requests =
        r#"broadsheet_http_requests_total{route="/subscribe",method="POST",status="200"}"#;
    assert_eq!(delta(&before, &text, requests), 1.0, "{text}");
    assert!(text.contains(
        r#"broadsheet_http_request_duration_seconds_bucket{route="/subscribe",le="0.1"}"#
    ));
    for event in ["signup", "confirmation"] {
        let line = format!(r#"broadsheet_reader_events_total{{event="{event}"}}"#);
        assert_eq!(delta(&before, &text, &line), 1.0, "{event}");
    }
    let account = r#"broadsheet_emails_total{kind="account",outcome="sent"}"#;
    assert_eq!(
        delta(&before, &text, account),
        2.0,
        "confirmation and credentials"
    );
    assert_eq!(
        sample(&text, r#"broadsheet_queue_depth{queue="digest"}"#),
        Some(1.0)
    );
    let recipients =
        format!(r#"broadsheet_campaign_deliveries{{campaign="{id}",state="recipients"}}"#);
    assert_eq!(sample(&text, &recipients), Some(1.0));
    // Routes are labelled by template: no URI, and so no token, is a label.
    assert!(text.contains(r#"route="/confirm/{token}""#));
    let token = regex_lite::Regex::new("[0-9a-f]{64}").unwrap();
    assert!(!token.is_match(&text), "a token leaked into the metrics");
    app.drain_outbox().await;
    let after = scrape(&app, &admin).await.text().await.unwrap();
    assert_eq!(
        sample(&after, r#"broadsheet_queue_depth{queue="digest"}"#),
        Some(0.0)
    );
    assert!(!after.contains(&id), "a finished campaign drops out");
    let digests = r#"broadsheet_emails_total{kind="digest",outcome="sent"}"#;
    assert_eq!(delta(&text, &after, digests), 1.0);
    assert_eq!(delta(&text, &after, account), 0.0);
    app.stop().await;
}

async fn metrics_bind_moves_metrics_off_the_site(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let port = free_port().await;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.server.metrics_bind = Some(([127, 0, 0, 1], port).into());
    })
    .await;
    assert_eq!(app.get("/metrics").await.status(), 404);
    let private = reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .unwrap();
    assert_eq!(private.status(), 200);
    assert!(
        private
            .text()
            .await
            .unwrap()
            .contains("broadsheet_queue_depth")
    );
    app.stop().await;
}
