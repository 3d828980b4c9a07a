//! Several SMTP relays: spread by weight, failover when one goes down or
//! defers, the circuit breaker and its probe, fallbacks, and account mail
//! pinned to a relay of its own. Each relay is a test SMTP server of its
//! own; the app's first server carries account mail (`accounts`), so
//! readers are signed up and confirmed as everywhere else.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::{collections::HashMap, time::Duration};

use broadsheet::{
    app::Role,
    config::{Config, RelayConfig, RelayRole, Secret, SmtpTls},
    editors::Role as EditorRole,
};
use support::{Backend, DataFault, SmtpServer, TestApp, sink::SmtpSink};

use super::digests::{advance_past, campaign_of, started_campaign, summary};

storage_tests!(
    a_relay_failing_halfway_hands_its_mail_to_the_others_and_each_reader_gets_one,
    a_fallback_stands_in_while_the_primary_is_out_and_a_probe_brings_it_back,
    account_mail_keeps_to_its_relay_and_goes_through_another_while_it_is_out,
    a_deferring_relay_passes_its_mail_on_but_an_unanswered_one_keeps_it_for_later,
    relays_share_the_mail_by_weight_and_overflow_only_takes_what_they_cannot,
    postfix_smtp_sink_as_a_relay_killed_between_campaigns_leaves_its_share_to_ours,
);

fn relay(name: &str, port: u16, role: RelayRole, weight: u32) -> RelayConfig {
    RelayConfig {
        name: name.into(),
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        ca_file: Default::default(),
        username: String::new(),
        password: Secret::new(""),
        concurrency: 2,
        rate_per_second: 0,
        weight,
        role,
    }
}

/// `relays` for digests; account mail pinned to the app's own server.
fn with_relays(config: &mut Config, relays: Vec<RelayConfig>) {
    let accounts = relay("accounts", config.smtp.port, RelayRole::Primary, 1);
    config.smtp.account_relay = "accounts".into();
    config.smtp.relays = [vec![accounts], relays].concat();
}

fn addresses(prefix: &str, n: usize) -> Vec<String> {
    (0..n).map(|i| format!("{prefix}{i}@example.com")).collect()
}

/// Digests each address received over all of `servers`.
fn per_reader(servers: &[&SmtpServer]) -> HashMap<String, usize> {
    let mut counts = HashMap::new();
    for server in servers {
        for mail in server.received() {
            for to in mail.to {
                *counts.entry(to).or_insert(0) += 1;
            }
        }
    }
    counts
}

fn each_once(servers: &[&SmtpServer], readers: &[String]) {
    let counts = per_reader(servers);
    for reader in readers {
        assert_eq!(
            counts.get(&format!("<{reader}>")),
            Some(&1),
            "{reader}: {counts:?}"
        );
    }
}

/// A new article and "send now": the next campaign.
async fn next_campaign(app: &TestApp, slug: &str) -> String {
    let published = (app.clock.now() - chrono::Duration::minutes(5)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Story {slug}\"\nslug = \"{slug}\"\npublished_at = \"{published}\"\n+++\nBody.\n"
    ))
    .await;
    started_campaign(app).await
}

/// The campaign's figures for each relay: (sent, deferred, failed).
async fn figures(app: &TestApp, id: &str) -> HashMap<String, (i64, i64, i64)> {
    summary(app, id)
        .await
        .relays
        .into_iter()
        .map(|r| (r.name, (r.sent, r.deferred, r.failed)))
        .collect()
}

async fn a_relay_failing_halfway_hands_its_mail_to_the_others_and_each_reader_gets_one(
    backend: Backend,
) {
    let (a, b, c) = (
        SmtpServer::start().await,
        SmtpServer::start().await,
        SmtpServer::start().await,
    );
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        with_relays(
            config,
            vec![
                relay("a", a.addr.port(), RelayRole::Primary, 1),
                relay("b", b.addr.port(), RelayRole::Primary, 1),
                relay("c", c.addr.port(), RelayRole::Primary, 1),
            ],
        );
        config.smtp.breaker.failures = 2;
    })
    .await;
    let readers = addresses("halfway", 30);
    campaign_of(&app, &readers).await;
    let account_mail = app.received().len();
    c.set_down_after(Some(4));
    let id = started_campaign(&app).await;

    let outcome = app.drain_outbox().await;
    assert_eq!(
        (outcome.sent, outcome.retried, outcome.failed),
        (30, 0, 0),
        "nothing waits for a retry: c's share went to a and b at once"
    );
    each_once(&[&a, &b, &c], &readers);
    assert_eq!(
        app.received().len(),
        account_mail,
        "no digest on the account relay"
    );
    let status = summary(&app, &id).await;
    assert_eq!(
        (status.campaign.status.as_str(), status.campaign.sent),
        ("done", 30)
    );
    let figures = figures(&app, &id).await;
    let (sent_a, sent_b, sent_c) = (figures["a"].0, figures["b"].0, figures["c"].0);
    // Down once it has four: a message already past MAIL may make five.
    assert_eq!(sent_c, c.received().len() as i64, "{figures:?}");
    assert!(sent_c >= 4, "{figures:?}");
    assert!(
        figures["c"].1 >= 1,
        "c deferred what it refused: {figures:?}"
    );
    assert_eq!(sent_a + sent_b + sent_c, 30, "{figures:?}");
    assert_eq!(
        (sent_a, sent_b),
        (a.received().len() as i64, b.received().len() as i64)
    );
    assert!(
        sent_a >= 5 && sent_b >= 5,
        "a and b shared the rest: {figures:?}"
    );

    // The API gives the same figures with the campaign.
    let token = app.api_token("watcher", EditorRole::Editor).await;
    let campaign: serde_json::Value = app
        .client
        .get(app.url(&format!("/api/v1/digests/{id}")))
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<(String, i64)> = campaign["relays"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap().to_owned(),
                r["sent"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("a".into(), sent_a),
            ("b".into(), sent_b),
            ("c".into(), sent_c)
        ]
    );

    // The console shows each relay's figures and c out of rotation.
    let editor = app
        .signed_in_editor("ed@lordspress.test", EditorRole::Admin)
        .await;
    let page = editor.get(&format!("/admin/campaigns/{id}")).await;
    let html = page.text().await.unwrap();
    let row = html.split("<th scope=\"row\">c</th>").nth(1).unwrap();
    let row = row.split("</tr>").next().unwrap();
    assert!(
        row.contains(&format!("<td>{sent_c}</td>")) && row.contains("out of rotation"),
        "{row}"
    );
    app.stop().await;
}

async fn a_fallback_stands_in_while_the_primary_is_out_and_a_probe_brings_it_back(
    backend: Backend,
) {
    let (primary, fallback) = (SmtpServer::start().await, SmtpServer::start().await);
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        with_relays(
            config,
            vec![
                relay("main", primary.addr.port(), RelayRole::Primary, 1),
                relay("spare", fallback.addr.port(), RelayRole::Fallback, 1),
            ],
        );
        config.smtp.breaker.failures = 1;
        config.smtp.breaker.open = Duration::from_secs(60);
    })
    .await;
    let readers = addresses("fall", 6);
    campaign_of(&app, &readers).await;
    started_campaign(&app).await;
    assert_eq!(app.drain_outbox().await.sent, 6);
    assert_eq!(
        (primary.received().len(), fallback.received().len()),
        (6, 0)
    );

    // The primary goes down: a refusal takes it out, and the fallback
    // takes that message and the rest.
    primary.set_down_after(Some(6));
    let second = next_campaign(&app, "second").await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.retried), (6, 0));
    assert_eq!(
        (primary.received().len(), fallback.received().len()),
        (6, 6)
    );
    let figures = figures(&app, &second).await;
    // Its first refusals (one per connection in use) take it out.
    let (sent, deferred, _) = figures["main"];
    assert!(sent == 0 && (1..=2).contains(&deferred), "{figures:?}");
    assert_eq!(figures["spare"], (6, 0, 0));

    // Back up, but still out of rotation until its time out ends.
    primary.set_down_after(None);
    next_campaign(&app, "third").await;
    app.drain_outbox().await;
    assert_eq!(
        (primary.received().len(), fallback.received().len()),
        (6, 12)
    );

    // Then one message probes it (the others meanwhile go to the
    // fallback), and once it is taken the primary has the mail again.
    app.clock.advance(Duration::from_secs(61));
    next_campaign(&app, "fourth").await;
    assert_eq!(app.drain_outbox().await.sent, 6);
    let probed = primary.received().len() - 6;
    assert!(probed >= 1, "the probe went to the primary");
    assert_eq!(fallback.received().len(), 12 + 6 - probed);
    next_campaign(&app, "fifth").await;
    assert_eq!(app.drain_outbox().await.sent, 6);
    assert_eq!(primary.received().len(), 6 + probed + 6);
    let counts = per_reader(&[&primary, &fallback]);
    for reader in &readers {
        assert_eq!(counts[&format!("<{reader}>")], 5, "one digest per campaign");
    }
    app.stop().await;
}

async fn account_mail_keeps_to_its_relay_and_goes_through_another_while_it_is_out(
    backend: Backend,
) {
    let bulk = SmtpServer::start().await;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        with_relays(
            config,
            vec![relay("bulk", bulk.addr.port(), RelayRole::Primary, 1)],
        );
        config.smtp.breaker.failures = 1;
    })
    .await;
    campaign_of(&app, &["early@example.com"]).await;
    started_campaign(&app).await;
    app.drain_outbox().await;
    let accounts = app.smtp.as_ref().unwrap();
    assert!(
        accounts
            .received()
            .iter()
            .all(|m| m.to == ["<early@example.com>"]),
        "the account relay carried the account mail"
    );
    assert_eq!(accounts.received().len(), 2, "confirmation and credentials");
    assert_eq!(bulk.received().len(), 1, "the digest, and nothing else");
    assert!(bulk.received()[0].text().contains("Story harbour"));

    // The account relay goes down: a sign-up's confirmation still leaves.
    accounts.set_down_after(Some(2));
    assert_eq!(app.sign_up("late@example.com", false).await.status(), 200);
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.retried), (1, 0));
    let confirmation = bulk.received().pop().unwrap();
    assert_eq!(confirmation.to, ["<late@example.com>"]);
    assert!(confirmation.text().contains("/confirm/"));
    app.stop().await;
}

async fn a_deferring_relay_passes_its_mail_on_but_an_unanswered_one_keeps_it_for_later(
    backend: Backend,
) {
    let (deferring, steady) = (SmtpServer::start().await, SmtpServer::start().await);
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        let mut first = relay("deferring", deferring.addr.port(), RelayRole::Primary, 1);
        first.concurrency = 1;
        with_relays(
            config,
            vec![
                first,
                relay("steady", steady.addr.port(), RelayRole::Primary, 1),
            ],
        );
        // Never out of rotation: every message may meet the 4xx first.
        config.smtp.breaker.failures = 1000;
        config.smtp.timeout = Duration::from_secs(1);
    })
    .await;
    let readers = addresses("defer", 8);
    campaign_of(&app, &readers).await;
    deferring.set_data_fault(Some(DataFault::Reply("451 4.3.0 try again later")));
    let id = started_campaign(&app).await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.retried), (8, 0));
    assert_eq!(
        (deferring.received().len(), steady.received().len()),
        (0, 8)
    );
    each_once(&[&deferring, &steady], &readers);
    let figures = figures(&app, &id).await;
    assert!(figures["deferring"].1 >= 1, "{figures:?}");
    assert_eq!(figures["steady"].0, 8);

    // A relay that never answers the data may have taken it: the message
    // is not handed to another relay now, but retried later.
    deferring.set_data_fault(Some(DataFault::Stall));
    let id = next_campaign(&app, "stalled").await;
    let outcome = app.drain_outbox().await;
    assert!(outcome.retried >= 1, "{outcome:?}");
    assert_eq!(outcome.sent + outcome.retried, 8, "{outcome:?}");
    assert_eq!(steady.received().len(), 8 + outcome.sent);
    deferring.set_data_fault(None);
    advance_past(
        &app,
        summary(&app, &id).await.campaign.next_retry_at.unwrap(),
    );
    app.drain_outbox().await;
    assert_eq!(summary(&app, &id).await.campaign.sent, 8);
    let counts = per_reader(&[&deferring, &steady]);
    for reader in &readers {
        assert_eq!(counts[&format!("<{reader}>")], 2, "one digest per campaign");
    }
    app.stop().await;
}

async fn relays_share_the_mail_by_weight_and_overflow_only_takes_what_they_cannot(
    backend: Backend,
) {
    let (heavy, light, overflow) = (
        SmtpServer::start().await,
        SmtpServer::start().await,
        SmtpServer::start().await,
    );
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        let mut heavy_relay = relay("heavy", heavy.addr.port(), RelayRole::Primary, 3);
        let mut light_relay = relay("light", light.addr.port(), RelayRole::Primary, 1);
        // Never more than four in flight (two batches of two): every pick
        // finds both relays with a free connection, so the weights alone
        // decide. (Busy relays pass their turn to those with room.)
        (heavy_relay.concurrency, light_relay.concurrency) = (4, 4);
        config.delivery.batch_size = 2;
        with_relays(config, vec![heavy_relay, light_relay]);
    })
    .await;
    let readers = addresses("weight", 40);
    campaign_of(&app, &readers).await;
    started_campaign(&app).await;
    assert_eq!(app.drain_outbox().await.sent, 40);
    each_once(&[&heavy, &light], &readers);
    assert_eq!((heavy.received().len(), light.received().len()), (30, 10));
    app.stop().await;

    // A primary held to 2 messages a second: the overflow relay takes
    // what it has no token for, and nothing while it has.
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        let mut own = relay("own", light.addr.port(), RelayRole::Primary, 1);
        own.rate_per_second = 2;
        let spill = relay("spill", overflow.addr.port(), RelayRole::Overflow, 1);
        with_relays(config, vec![own, spill]);
    })
    .await;
    let readers = addresses("spill", 20);
    campaign_of(&app, &readers).await;
    started_campaign(&app).await;
    assert_eq!(app.drain_outbox().await.sent, 20);
    let own = light.received().len() - 10;
    each_once(&[&light, &overflow], &readers);
    assert!(
        (1..=10).contains(&own),
        "the primary sent within its rate: {own}"
    );
    assert_eq!(overflow.received().len(), 20 - own);
    app.stop().await;
}

/// A relay that is not ours (Debian's postfix `smtp-sink`) beside our test
/// server: a campaign shared between them, then the sink killed (as a
/// crash would) and the next campaign all going to ours, the dead sink's
/// pooled connections and refused ones handing each message on. Each
/// reader has one digest of each campaign, from one relay or the other.
async fn postfix_smtp_sink_as_a_relay_killed_between_campaigns_leaves_its_share_to_ours(
    backend: Backend,
) {
    let Some(mut sink) = SmtpSink::start().await else {
        return;
    };
    let ours = SmtpServer::start().await;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        with_relays(
            config,
            vec![
                relay("sink", sink.port, RelayRole::Primary, 1),
                relay("ours", ours.addr.port(), RelayRole::Primary, 1),
            ],
        );
        config.smtp.breaker.failures = 2;
    })
    .await;
    let readers = addresses("sink", 30);
    campaign_of(&app, &readers).await;
    let first = started_campaign(&app).await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed), (30, 0), "{outcome:?}");
    let taken = sink.recipients().len();
    assert!(
        (1..30).contains(&taken),
        "both relays took a share: {taken}"
    );
    let shares = figures(&app, &first).await;
    assert_eq!(
        (shares["sink"].0, shares["ours"].0),
        (taken as i64, 30 - taken as i64)
    );

    sink.kill();
    let second = next_campaign(&app, "after-the-crash").await;
    let outcome = app.drain_outbox().await;
    assert_eq!(
        (outcome.sent, outcome.retried, outcome.failed),
        (30, 0, 0),
        "the dead sink's share went to ours at once: {outcome:?}"
    );
    let mut counts = per_reader(&[&ours]);
    for to in sink.recipients() {
        *counts.entry(to).or_insert(0) += 1;
    }
    for reader in &readers {
        let wanted = Some(&2);
        assert_eq!(
            counts.get(&format!("<{reader}>")),
            wanted,
            "{reader}: {counts:?}"
        );
    }
    assert_eq!(
        sink.recipients().len(),
        taken,
        "nothing reached the dead sink"
    );
    let figures = figures(&app, &second).await;
    assert_eq!(
        (figures["ours"].0, figures["sink"].0),
        (30, 0),
        "{figures:?}"
    );
    app.stop().await;
}
