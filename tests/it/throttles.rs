//! Receiving domains' limits, a domain's own deferral (4.7.x) and the
//! warm-up's daily ceiling: each holds over two instances on one database
//! (two workers, each with its own app, draining at once), holds back
//! only what it names, and shows in the campaign's status.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::{collections::HashMap, time::Duration};

use broadsheet::{
    app::Role, config::DomainLimit, delivery::BatchOutcome, editors::Role as EditorRole,
};
use support::{Backend, TestApp, drain};

use super::digests::{campaign_of, started_campaign, summary};

storage_tests!(
    a_domains_limit_per_minute_holds_over_two_instances_and_other_readers_go_on,
    a_domain_that_defers_with_4_7_x_holds_back_its_own_readers_only,
    the_warm_up_ceiling_sends_what_it_may_and_the_rest_the_next_day,
    a_domains_connections_cap_what_is_in_flight_and_the_rest_waits_a_moment,
);

/// `n` addresses at `domain`.
fn at(domain: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("reader{i}@{domain}")).collect()
}

/// Digests received by domain, since the first `skip` messages.
fn by_domain(app: &TestApp, skip: usize) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for mail in &app.received()[skip..] {
        let to = mail.to[0].trim_matches(|c| c == '<' || c == '>');
        let domain = to.rsplit_once('@').unwrap().1.to_owned();
        *counts.entry(domain).or_insert(0) += 1;
    }
    counts
}

/// Both instances drain at once.
async fn drain_both(app: &TestApp, second: &broadsheet::delivery::Worker) -> BatchOutcome {
    let (mut first, other) =
        Box::pin(async { tokio::join!(app.drain_outbox(), drain(second)) }).await;
    first.add(other);
    first
}

/// Moves the clock to a second past the next minute's start, so a test
/// has most of a minute before the limits' next minute begins.
fn to_the_next_minute(app: &TestApp) {
    let into = app.clock.now_ms().rem_euclid(60_000);
    app.clock
        .advance(Duration::from_millis(u64::try_from(61_000 - into).unwrap()));
}

fn each_once(app: &TestApp, skip: usize, readers: &[String]) {
    for reader in readers {
        let wanted = format!("<{reader}>");
        let got = app.received()[skip..]
            .iter()
            .filter(|m| m.to.contains(&wanted))
            .count();
        assert_eq!(got, 1, "{reader}");
    }
}

async fn a_domains_limit_per_minute_holds_over_two_instances_and_other_readers_go_on(
    backend: Backend,
) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.delivery.domain_limits = vec![DomainLimit {
            domain: "slow.example".into(),
            per_minute: 3,
            connections: 0,
        }];
        config.delivery.batch_size = 4;
    })
    .await;
    let second = app.another_instance_worker().await;
    let readers = [at("slow.example", 7), at("example.com", 5)].concat();
    campaign_of(&app, &readers).await;
    let before = app.received().len();
    to_the_next_minute(&app);
    let id = started_campaign(&app).await;

    let outcome = drain_both(&app, &second).await;
    assert_eq!(outcome.sent, 8, "{outcome:?}");
    let counts = by_domain(&app, before);
    assert_eq!(
        (counts["slow.example"], counts["example.com"]),
        (3, 5),
        "three a minute to slow.example, over both instances; the rest all"
    );
    let status = summary(&app, &id).await;
    assert_eq!(status.pending, 4);
    assert_eq!(
        status.campaign.held_by.as_deref(),
        Some("slow.example: 3 a minute")
    );
    assert_eq!(status.campaign.retries, 0, "waiting is not a failure");

    for expected in [6, 7] {
        app.clock.advance(Duration::from_secs(60));
        drain_both(&app, &second).await;
        assert_eq!(by_domain(&app, before)["slow.example"], expected);
    }
    each_once(&app, before, &readers);
    let status = summary(&app, &id).await;
    assert_eq!(
        (status.campaign.status.as_str(), status.campaign.sent),
        ("done", 12)
    );
    // Its figures: the limited domain only, by name.
    let [figures] = &status.domains[..] else {
        panic!("one limited domain: {:?}", status.domains);
    };
    assert_eq!((figures.name.as_str(), figures.sent), ("slow.example", 7));
    assert!(figures.held >= 4, "held at claim, each time: {figures:?}");
    let editor = app
        .signed_in_editor("ed@lordspress.test", EditorRole::Admin)
        .await;
    let page = editor.get(&format!("/admin/campaigns/{id}")).await;
    let html = page.text().await.unwrap();
    assert!(
        html.contains("<th scope=\"row\">slow.example</th><td>7</td>"),
        "{html}"
    );
    app.stop().await;
}

async fn a_domain_that_defers_with_4_7_x_holds_back_its_own_readers_only(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.delivery.domain_hold = Duration::from_secs(300);
        // Listed, so its 4.7.x replies are taken as its own (a relay's
        // policy replies to other domains hold nobody back).
        config.delivery.domain_limits = vec![DomainLimit {
            domain: "picky.example".into(),
            per_minute: 0,
            connections: 0,
        }];
        // One message at a time, claimed one at a time (two ahead at most):
        // the first deferral holds back every picky reader claimed after it.
        config.smtp.concurrency = 1;
        config.delivery.batch_size = 1;
    })
    .await;
    let readers = [at("picky.example", 6), at("example.com", 4)].concat();
    campaign_of(&app, &readers).await;
    let before = app.received().len();
    let smtp = app.smtp.as_ref().unwrap();
    smtp.refuse_recipients(
        "picky.example",
        "421 4.7.28 Our system has detected an unusual rate of mail",
    );
    let id = started_campaign(&app).await;

    let outcome = app.drain_outbox().await;
    let counts = by_domain(&app, before);
    assert_eq!(counts.get("picky.example"), None);
    assert_eq!(counts["example.com"], 4, "the others go on");
    assert!(
        (1..=3).contains(&outcome.retried),
        "one deferral (three if two claims were ahead of it), then held: {outcome:?}"
    );
    let status = summary(&app, &id).await;
    let held_by = status.campaign.held_by.unwrap();
    assert!(
        held_by.starts_with("picky.example deferred our mail"),
        "{held_by}"
    );
    assert!(held_by.contains("4.7.28"), "{held_by}");
    let editor = app
        .signed_in_editor("ed@lordspress.test", EditorRole::Admin)
        .await;
    let dashboard = editor.get("/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("Digests to picky.example wait until"),
        "{dashboard}"
    );
    assert!(
        dashboard.contains("in rotation"),
        "the relay stays in: {dashboard}"
    );
    // The relay answered: it stays in rotation for everyone else.
    assert_eq!(app.sign_up("new@example.com", false).await.status(), 200);
    assert_eq!(app.drain_outbox().await.sent, 1);

    smtp.accept_all_recipients();
    app.clock.advance(Duration::from_secs(301));
    app.drain_outbox().await;
    each_once(&app, before, &readers);
    assert_eq!(summary(&app, &id).await.campaign.status, "done");
    app.stop().await;
}

async fn the_warm_up_ceiling_sends_what_it_may_and_the_rest_the_next_day(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        // The schedule starts today: 5 digests, then 10 tomorrow.
        config.delivery.warmup.start = Some(chrono::Utc::now().date_naive());
        config.delivery.warmup.daily = vec![5, 10];
        config.delivery.batch_size = 3;
    })
    .await;
    let second = app.another_instance_worker().await;
    let readers = at("example.com", 12);
    campaign_of(&app, &readers).await;
    let before = app.received().len();
    assert_eq!(before, 24, "account mail knows no ceiling");
    let id = started_campaign(&app).await;

    assert_eq!(drain_both(&app, &second).await.sent, 5);
    let status = summary(&app, &id).await;
    assert_eq!(
        (status.campaign.status.as_str(), status.pending),
        ("sending", 7)
    );
    assert_eq!(
        status.campaign.held_by.as_deref(),
        Some("warm-up: 5 a day today")
    );
    let editor = app
        .signed_in_editor("ed@lordspress.test", EditorRole::Admin)
        .await;
    let dashboard = editor.get("/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("Warm-up: 5 of today's 5 digests sent."),
        "{dashboard}"
    );
    let tomorrow = status.campaign.held_until.unwrap();
    assert_eq!(tomorrow % (24 * 3_600_000), 0, "held until midnight UTC");

    app.clock.advance(Duration::from_millis(
        u64::try_from(tomorrow - app.clock.now_ms()).unwrap() + 1,
    ));
    assert_eq!(drain_both(&app, &second).await.sent, 7);
    each_once(&app, before, &readers);
    let status = summary(&app, &id).await;
    assert_eq!(status.campaign.status, "done");
    assert_eq!(status.campaign.held_by, None, "a passed hold is not shown");
    app.stop().await;
}

async fn a_domains_connections_cap_what_is_in_flight_and_the_rest_waits_a_moment(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.delivery.domain_limits = vec![DomainLimit {
            domain: "narrow.example".into(),
            per_minute: 0,
            connections: 1,
        }];
        config.smtp.concurrency = 4;
    })
    .await;
    let readers = at("narrow.example", 4);
    campaign_of(&app, &readers).await;
    let before = app.received().len();
    // Each message takes a while: four senders would send all four at once.
    app.smtp
        .as_ref()
        .unwrap()
        .set_data_delay(Duration::from_millis(200));
    let id = started_campaign(&app).await;

    let first = app.drain_outbox().await;
    assert!(first.released >= 1 && first.sent < 4, "{first:?}");
    let waited = "SELECT COUNT(*) FROM deliveries WHERE last_error LIKE '%connections are busy%'";
    assert!(app.scalar(waited).await >= 1);
    for _ in 0..4 {
        app.clock.advance(Duration::from_secs(2));
        app.drain_outbox().await;
    }
    each_once(&app, before, &readers);
    assert_eq!(summary(&app, &id).await.campaign.status, "done");
    app.stop().await;
}
