//! Outgoing webhooks end to end, against a real HTTP receiver on loopback
//! (`support::hooks`): endpoints registered through the API, events queued
//! by real signups, unsubscribes, reports, erasures and campaigns, sent by
//! the real sender (one or two instances), retried while the receiver is
//! down, in order per reader, each accepted once, signed as the Standard
//! Webhooks specification says (checked with the test's own HMAC).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{collections::HashMap, time::Duration};

use broadsheet::{
    app::Role,
    config::Config,
    domain::LinkPurpose,
    editors::Role as EditorRole,
    feedback::{Feedback, Kind, Source},
    webhooks::WebhookSender,
};
use reqwest::Method;
use serde_json::{Value, json};

use crate::{api::call, privacy::one_click_post, support};
use support::{
    Backend, TestApp,
    hooks::{Mode, Receiver},
};

storage_tests!(
    a_receiver_that_fails_then_recovers_gets_every_event_once_in_order_and_signed,
    endpoints_are_checked_like_feeds_and_a_name_is_checked_after_dns,
    an_endpoint_failing_for_a_day_is_turned_off_and_admins_are_told,
    an_erasure_takes_the_readers_address_out_of_queued_events,
    a_hanging_endpoint_holds_up_no_request,
    admins_manage_endpoints_in_the_console,
);

fn allow_loopback(config: &mut Config) {
    config.outgoing_webhooks.allow_addresses = vec!["127.0.0.1".parse().unwrap()];
}

async fn admin_token(app: &TestApp) -> String {
    let id = broadsheet::store::new_id();
    let name = format!("hooks-{}", &id[id.len() - 12..]);
    app.api_token(&name, EditorRole::Admin).await
}

/// Registers `url` for `events` through the API; its id and secret.
async fn register(app: &TestApp, url: &str, events: Value) -> (String, String) {
    let token = admin_token(app).await;
    let body = json!({ "url": url, "events": events, "description": "the CRM" });
    let (status, added) = call(app, &token, Method::POST, "/api/v1/webhooks", Some(body)).await;
    assert_eq!(status, 201, "{added}");
    let secret = added["secret"].as_str().unwrap().to_owned();
    (added["id"].as_str().unwrap().to_owned(), secret)
}

/// Runs every sender's batches, side by side, until none claims anything.
async fn send_all(senders: &[&WebhookSender]) {
    loop {
        let rounds = futures_util::future::join_all(senders.iter().map(|s| s.deliver_due())).await;
        if rounds
            .into_iter()
            .map(|r| r.unwrap().claimed)
            .sum::<usize>()
            == 0
        {
            break;
        }
    }
}

/// A report of `kind` about `email`, from a provider that names the address.
fn report(kind: Kind, email: &str, id: &str) -> Feedback {
    Feedback {
        kind,
        source: Source::Postmark,
        recipient: Some(email.to_owned()),
        return_path: None,
        status: "5.1.1".into(),
        detail: format!("550 5.1.1 <{email}>: no such user"),
        event_id: Some(id.to_owned()),
        occurred_at: None,
    }
}

async fn one_click(app: &TestApp, email: &str) {
    let link = app.reader_link(email, LinkPurpose::Unsubscribe).await;
    let response = one_click_post(app, &link, "List-Unsubscribe=One-Click").await;
    assert_eq!(response.status(), 200);
}

/// The events as each reader (or campaign) heard them: type and, for a
/// consent change, its action.
fn by_subject(hooks: &[support::hooks::Hook]) -> HashMap<String, Vec<String>> {
    let mut chains: HashMap<String, Vec<String>> = HashMap::new();
    for hook in hooks {
        let data = &hook.json["data"];
        let subject = data["subscriber_id"]
            .as_str()
            .or(data["campaign_id"].as_str())
            .unwrap()
            .to_owned();
        let name = match data["action"].as_str() {
            Some(action) => format!("{}:{action}", hook.kind()),
            None => hook.kind().to_owned(),
        };
        chains.entry(subject).or_default().push(name);
    }
    chains
}

async fn a_receiver_that_fails_then_recovers_gets_every_event_once_in_order_and_signed(
    backend: Backend,
) {
    let receiver = Receiver::start(Mode::Down).await;
    let app = TestApp::spawn_with(backend, Role::Web, allow_loopback).await;
    let (_, secret) = register(&app, &receiver.url(), json!([])).await;
    let readers = ["ann@example.com", "bob@example.com", "cat@example.com"];
    for email in readers {
        app.confirmed_reader(email, true).await;
    }
    one_click(&app, readers[0]).await;
    let feedbacks = &app.feedbacks;
    feedbacks
        .apply(&report(Kind::HardBounce, readers[1], "b-1"))
        .await
        .unwrap();
    feedbacks
        .apply(&report(Kind::Complaint, readers[2], "c-1"))
        .await
        .unwrap();
    app.import_article("+++\ntitle = \"Hooked\"\n+++\nBody.\n")
        .await;
    app.send_digest_now().await;
    app.drain_outbox().await;
    let queued = app.scalar("SELECT COUNT(*) FROM webhook_messages").await;

    // Down: only the head of each reader's and the campaign's events is
    // claimed. Those begun before the first failure fail too; the others
    // are handed back, and none is claimed before the endpoint's retry.
    let first = app.webhooks.deliver_due().await.unwrap();
    assert_eq!(first.claimed, 4, "{first:?}");
    assert_eq!(first.retried + first.held, 4, "{first:?}");
    assert_eq!(receiver.hooks().len(), first.retried);
    assert!(receiver.accepted().is_empty());
    let again = app.webhooks.deliver_due().await.unwrap();
    assert_eq!(
        again.claimed, 0,
        "the endpoint waits for its retry: {again:?}"
    );

    // Up again, and a second instance sends beside the first.
    receiver.set(Mode::Up);
    app.clock.advance(Duration::from_secs(3600));
    let other = app.another_instance_webhook_sender().await;
    send_all(&[&app.webhooks, &other]).await;

    let accepted = receiver.accepted();
    assert_eq!(accepted.len() as i64, queued, "every event accepted");
    let mut ids: Vec<&str> = accepted.iter().map(|h| h.id.as_str()).collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), accepted.len(), "each event accepted once");
    for hook in receiver.hooks() {
        assert!(hook.signed_by(&secret), "a valid signature: {hook:?}");
        assert!(!hook.signed_by("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"));
        assert!((hook.timestamp - app.clock.now_ms() / 1000).abs() <= 3600 + 60);
    }
    let chains = by_subject(&accepted);
    let id = |i: usize| app.subscriber_id(readers[i]);
    let confirmed = [
        "consent.changed:granted",
        "subscriber.confirmed",
        "consent.changed:confirmed",
    ];
    let then = |more: &[&str]| -> Vec<String> {
        confirmed
            .iter()
            .chain(more)
            .map(|s| (*s).to_owned())
            .collect()
    };
    assert_eq!(
        chains[&id(0).await],
        then(&["consent.changed:withdrawn", "subscriber.unsubscribed"])
    );
    assert_eq!(chains[&id(1).await], then(&["delivery.bounced"]));
    assert_eq!(
        chains[&id(2).await],
        then(&[
            "delivery.complained",
            "consent.changed:withdrawn",
            "subscriber.unsubscribed"
        ])
    );
    let bounced = accepted
        .iter()
        .find(|h| h.kind() == "delivery.bounced")
        .unwrap();
    assert_eq!(bounced.json["data"]["bounce"], "hard");
    assert_eq!(bounced.json["data"]["email"], readers[1]);
    assert!(
        !bounced.body.contains(&format!("<{}>", readers[1])),
        "the server's words are masked"
    );
    let campaign = chains
        .values()
        .find(|events| events[0].starts_with("campaign."));
    assert_eq!(
        campaign.unwrap(),
        &["campaign.started", "campaign.finished"]
    );
    let finished = accepted
        .iter()
        .find(|h| h.kind() == "campaign.finished")
        .unwrap();
    assert_eq!(finished.json["data"]["status"], "done");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_messages WHERE status = 'sent'")
            .await,
        queued
    );
    app.stop().await;
}

async fn endpoints_are_checked_like_feeds_and_a_name_is_checked_after_dns(backend: Backend) {
    let receiver = Receiver::start(Mode::Up).await;
    let app = TestApp::spawn(backend).await;
    let token = admin_token(&app).await;
    let port = receiver.addr.port();
    for url in [
        format!("http://127.0.0.1:{port}/hooks"),
        "http://169.254.169.254/latest/meta-data".into(),
        "http://[::1]/hooks".into(),
        "http://[::ffff:10.0.0.1]/hooks".into(),
        "http://10.1.2.3/hooks".into(),
        "ftp://example.com/hooks".into(),
        "not an address".into(),
    ] {
        let body = json!({ "url": url });
        let (status, error) =
            call(&app, &token, Method::POST, "/api/v1/webhooks", Some(body)).await;
        assert_eq!(
            (status, error["error"]["field"].as_str()),
            (422, Some("url")),
            "{url}: {error}"
        );
    }
    let body = json!({ "url": "https://crm.example.com/hooks", "events": ["subscriber.created"] });
    let (status, error) = call(&app, &token, Method::POST, "/api/v1/webhooks", Some(body)).await;
    assert_eq!(
        (status, error["error"]["field"].as_str()),
        (422, Some("events")),
        "{error}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_endpoints").await,
        0
    );

    // A name is taken, and refused at each request once resolved.
    let (id, _) = register(&app, &format!("http://localhost:{port}/hooks"), json!([])).await;
    app.confirmed_reader("dns@example.com", false).await;
    let done = app.webhooks.deliver_due().await.unwrap();
    assert_eq!(done.retried, 1, "{done:?}");
    assert!(
        receiver.hooks().is_empty(),
        "nothing reached the loopback receiver"
    );
    let (status, endpoint) = call(
        &app,
        &token,
        Method::GET,
        &format!("/api/v1/webhooks/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    let error = endpoint["recent_events"][0]["last_error"].as_str().unwrap();
    assert!(error.contains("resolves to no public address"), "{error}");
    assert!(endpoint["failing_since"].is_string(), "{endpoint}");
    app.stop().await;
}

async fn an_endpoint_failing_for_a_day_is_turned_off_and_admins_are_told(backend: Backend) {
    let receiver = Receiver::start(Mode::Down).await;
    let app = TestApp::spawn_with(backend, Role::Web, allow_loopback).await;
    let (id, secret) = register(&app, &receiver.url(), json!(["subscriber.confirmed"])).await;
    app.confirmed_reader("first@example.com", false).await;
    let endpoint_path = format!("/api/v1/webhooks/{id}");
    let token = admin_token(&app).await;
    let enabled = |endpoint: &Value| endpoint["enabled"].as_bool().unwrap();
    // Retries for a day; the first failure after it turns the endpoint off.
    for _ in 0..30 {
        app.webhooks.deliver_due().await.unwrap();
        app.clock.advance(Duration::from_secs(3600));
    }
    let (_, endpoint) = call(&app, &token, Method::GET, &endpoint_path, None).await;
    assert!(!enabled(&endpoint), "{endpoint}");
    assert!(
        endpoint["disabled_reason"]
            .as_str()
            .unwrap()
            .contains("failed for a day")
    );
    assert_eq!(endpoint["pending"], 1, "its event still waits: {endpoint}");
    let tries = receiver.hooks().len();
    assert!((20..=30).contains(&tries), "retried with back-off: {tries}");
    app.webhooks.deliver_due().await.unwrap();
    assert_eq!(
        receiver.hooks().len(),
        tries,
        "nothing is sent to an endpoint that is off"
    );

    // The dashboard tells admins.
    let admin = app
        .signed_in_editor("boss@example.com", EditorRole::Admin)
        .await;
    let page = admin.get("/admin").await.text().await.unwrap();
    assert!(page.contains("Webhook endpoints turned off"), "{page}");
    assert!(page.contains(&receiver.addr.to_string()), "{page}");
    // New events are not queued for it while it is off.
    app.confirmed_reader("second@example.com", false).await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM webhook_messages").await, 1);

    // Turned on again, what waited is sent at once.
    receiver.set(Mode::Up);
    let (status, endpoint) = call(
        &app,
        &token,
        Method::POST,
        &format!("{endpoint_path}/enable"),
        None,
    )
    .await;
    assert_eq!((status, enabled(&endpoint)), (200, true), "{endpoint}");
    send_all(&[&app.webhooks]).await;
    let accepted = receiver.accepted();
    assert_eq!(accepted.len(), 1);
    assert!(accepted[0].signed_by(&secret));
    assert_eq!(accepted[0].kind(), "subscriber.confirmed");
    let page = admin.get("/admin").await.text().await.unwrap();
    assert!(!page.contains("Webhook endpoints turned off"));
    app.stop().await;
}

async fn an_erasure_takes_the_readers_address_out_of_queued_events(backend: Backend) {
    let receiver = Receiver::start(Mode::Down).await;
    let app = TestApp::spawn_with(backend, Role::Web, allow_loopback).await;
    register(&app, &receiver.url(), json!([])).await;
    let email = "forget.me@example.com";
    app.confirmed_reader(email, true).await;
    app.confirmed_reader("stays@example.com", true).await;
    let id = app.subscriber_id(email).await;
    let queued = "SELECT COUNT(*) FROM webhook_messages WHERE payload LIKE '%@example.com%'";
    assert_eq!(app.scalar(queued).await, 0, "queued without addresses");
    app.webhooks.deliver_due().await.unwrap();
    let tried = receiver.hooks();
    assert!(!tried.is_empty());
    for hook in &tried {
        let sent_with = hook.json["data"]["email"].as_str().unwrap();
        assert!(
            sent_with.ends_with("@example.com"),
            "added as it is sent: {sent_with}"
        );
    }

    let token = admin_token(&app).await;
    let path = format!("/api/v1/subscribers/{id}");
    let (status, _) = call(&app, &token, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    receiver.set(Mode::Up);
    app.clock.advance(Duration::from_secs(3600));
    send_all(&[&app.webhooks]).await;
    let accepted = receiver.accepted();
    let (theirs, others): (Vec<_>, Vec<_>) = accepted
        .iter()
        .partition(|h| h.json["data"]["subscriber_id"] == id.as_str());
    let kinds: Vec<&str> = theirs.iter().map(|h| h.kind()).collect();
    let told = [
        "consent.changed",
        "subscriber.confirmed",
        "consent.changed",
        "subscriber.erased",
    ];
    assert_eq!(kinds, told, "their events, and the erasure, in order");
    assert!(
        theirs
            .iter()
            .all(|h| !h.body.contains("forget.me") && h.json["data"].get("email").is_none()),
        "G-13: no copy of the address leaves after the erasure"
    );
    assert_eq!(others.len(), 3);
    assert!(
        others
            .iter()
            .all(|h| h.json["data"]["email"] == "stays@example.com")
    );
    app.stop().await;
}

async fn a_hanging_endpoint_holds_up_no_request(backend: Backend) {
    let receiver = Receiver::start(Mode::Hanging).await;
    let app = TestApp::spawn_with(backend, Role::Web, allow_loopback).await;
    register(&app, &receiver.url(), json!([])).await;
    app.confirmed_reader("first@example.com", true).await;
    let sender = app.webhooks.clone();
    let sending = tokio::spawn(async move { sender.deliver_due().await });
    while receiver.in_flight() == 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // While the sender waits on the endpoint, readers go on.
    app.confirmed_reader("second@example.com", true).await;
    one_click(&app, "second@example.com").await;
    assert_eq!(receiver.in_flight(), 1, "the first request still hangs");
    assert!(!sending.is_finished());
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_messages WHERE status = 'pending'")
            .await,
        8,
        "the second reader's events (three, then two) queued beside the first's three"
    );
    sending.abort();
    app.stop().await;
}

async fn admins_manage_endpoints_in_the_console(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app
        .signed_in_editor("boss@example.com", EditorRole::Admin)
        .await;
    let path = "/admin/webhooks";
    let refused = admin
        .submit(path, path, &[("url", "http://10.0.0.7/hooks")])
        .await;
    assert_eq!(refused.status(), 422);
    assert!(
        refused
            .text()
            .await
            .unwrap()
            .contains("is a private address")
    );
    let fields = [
        ("url", "https://crm.example.com/hooks"),
        ("events", "subscriber.confirmed"),
        ("events", "consent.changed"),
        ("description", "the CRM"),
    ];
    let added = admin.submit(path, path, &fields).await;
    assert_eq!(added.status(), 200);
    let page = added.text().await.unwrap();
    let secret = regex_lite::Regex::new("whsec_[A-Za-z0-9+/=]+").unwrap();
    assert!(secret.is_match(&page), "the secret, once: {page}");
    let list = admin.get(path).await.text().await.unwrap();
    assert!(!secret.is_match(&list), "never again");
    assert!(
        list.contains("subscriber.confirmed consent.changed"),
        "{list}"
    );
    let id = app.text("SELECT id FROM webhook_endpoints").await.unwrap();
    let endpoint = format!("{path}/{id}");
    let off = admin
        .submit(&endpoint, &endpoint, &[("action", "disable")])
        .await;
    assert_eq!(off.status(), 303);
    let page = admin.get(&endpoint).await.text().await.unwrap();
    assert!(
        page.contains("turned off by editor:boss@example.com"),
        "{page}"
    );
    let actions = "SELECT action FROM audit_log WHERE action LIKE 'webhook.%' ORDER BY at, id";
    let audited: Vec<String> = sqlx::query_scalar(actions)
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert_eq!(audited, ["webhook.add", "webhook.disable"]);
    let removed = admin
        .submit(&endpoint, &endpoint, &[("action", "remove")])
        .await;
    assert_eq!(removed.status(), 303);
    assert_eq!(admin.get(&endpoint).await.status(), 404);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM webhook_endpoints").await,
        0
    );
    app.stop().await;
}
