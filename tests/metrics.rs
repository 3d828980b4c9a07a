//! `/metrics` in the Prometheus text format: requests by route and status,
//! reader events, emails by kind, queue depth and campaign progress.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

mod support;

use broadsheet::{app::Role, digest, editors::Role as EditorRole};
use support::{Backend, TestApp, free_port};

storage_tests!(
    metrics_count_requests_reader_events_emails_and_show_campaigns,
    metrics_bind_moves_metrics_off_the_site,
    metrics_show_each_relays_messages_and_breaker_and_limited_domains,
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
    let through_smtp = r#"broadsheet_relay_messages_total{relay="smtp",outcome="sent"}"#;
    assert_eq!(
        delta(&text, &after, through_smtp),
        1.0,
        "[smtp] is one relay"
    );
    app.stop().await;
}

/// Two relays, one with nothing listening: its refusal takes it out of
/// rotation (`failures = 1`) and the other sends; a limited domain's
/// digests are counted by name, the others are not.
async fn metrics_show_each_relays_messages_and_breaker_and_limited_domains(backend: Backend) {
    let _alone = ONE_AT_A_TIME.lock().await;
    let dead = free_port().await;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        let mut relays = config.smtp.relays();
        relays[0].name = "live".into();
        let mut down = relays[0].clone();
        (down.name, down.port, down.weight) = ("down".into(), dead, 100);
        config.smtp.relays = vec![relays[0].clone(), down];
        config.smtp.breaker.failures = 1;
        config.delivery.domain_limits = vec![broadsheet::config::DomainLimit {
            domain: "limited.example".into(),
            per_minute: 0,
            connections: 0,
        }];
    })
    .await;
    let admin = app.api_token("prometheus", EditorRole::Admin).await;
    let before = scrape(&app, &admin).await.text().await.unwrap();
    app.confirmed_reader("one@limited.example", true).await;
    app.confirmed_reader("two@example.com", true).await;
    app.import_article("+++\ntitle = \"Counted\"\n+++\nBody.\n")
        .await;
    app.send_digest_now().await;
    app.drain_outbox().await;
    let after = scrape(&app, &admin).await.text().await.unwrap();
    let messages = |relay: &str, outcome: &str| {
        let line =
            format!(r#"broadsheet_relay_messages_total{{relay="{relay}",outcome="{outcome}"}}"#);
        delta(&before, &after, &line)
    };
    assert_eq!(messages("down", "deferred"), 1.0, "{after}");
    assert_eq!(
        messages("live", "sent"),
        6.0,
        "two readers' account mail and digests"
    );
    assert_eq!(
        sample(&after, r#"broadsheet_relay_breaker_state{relay="down"}"#),
        Some(1.0)
    );
    assert_eq!(
        sample(&after, r#"broadsheet_relay_breaker_state{relay="live"}"#),
        Some(0.0)
    );
    let limited = r#"broadsheet_domain_messages_total{domain="limited.example",outcome="sent"}"#;
    assert_eq!(delta(&before, &after, limited), 1.0);
    assert!(
        !after.contains(r#"domain="example.com""#),
        "unlisted domains are not named"
    );
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
