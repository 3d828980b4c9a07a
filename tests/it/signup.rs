//! Double opt-in, end to end: form → email → confirm page → confirm → credentials.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::domain::content_hash;
use support::{Backend, TestApp, hidden_field, link_path};

storage_tests!(
    signup_confirm_and_credentials_tell_the_whole_story,
    the_home_page_carries_the_subscribe_form,
    the_account_never_depends_on_the_digest_consent,
    an_invalid_address_gets_422_and_the_form_again,
    a_changed_consent_wording_is_not_recorded_as_given,
    a_missing_or_forged_csrf_token_gets_403,
    a_body_over_16_kib_gets_413,
    signups_past_the_ip_limit_get_429,
    the_honeypot_drops_bots_silently,
    the_answer_is_the_same_for_new_pending_and_confirmed_addresses,
    a_pending_address_gets_at_most_three_confirmations_a_day,
    a_newer_confirmation_link_voids_the_older_one,
    used_expired_and_unknown_links_show_the_same_invalid_page,
    the_confirm_link_get_changes_nothing,
    concurrent_signups_of_one_address_create_one_subscriber,
    the_confirmation_email_holds_nothing_the_reader_typed,
    forwarded_addresses_count_only_from_trusted_proxies,
);

const INVALID_PAGE: &str = "This link is invalid or has expired";

async fn signup_confirm_and_credentials_tell_the_whole_story(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let response = app.sign_up("Reader@Example.ORG", true).await;
    assert_eq!(response.status(), 200);
    assert!(response.text().await.unwrap().contains("Check your inbox"));

    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed), (1, 0));
    let mail = &app.received()[0];
    assert_eq!(mail.to, vec!["<Reader@example.org>".to_owned()]);
    let parsed = mail.parsed();
    assert_eq!(parsed.subject(), Some("Please confirm your subscription"));
    assert!(parsed.body_html(0).is_some(), "E-15: an HTML part");
    assert_eq!(
        parsed.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-generated")
    );
    let message_id = parsed.message_id().expect("Message-ID").to_owned();
    let confirm_path = link_path(&mail.text(), &app.base_url, "confirm");

    let page = app.get(&confirm_path).await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("<button type=\"submit\">Confirm my subscription")
    );
    let confirmed = app.confirm(&confirm_path).await;
    assert_eq!(confirmed.status(), 200);
    assert!(confirmed.text().await.unwrap().contains("You're confirmed"));

    assert_eq!(app.drain_outbox().await.sent, 1);
    let credentials = &app.received()[1];
    assert_eq!(credentials.subject(), "Your login details");
    let text = credentials.text();
    assert!(text.contains("Your username: Reader@example.org"), "{text}");
    link_path(&text, &app.base_url, "account/password");
    assert!(
        !text.to_lowercase().contains("password:"),
        "A-01: no password in mail"
    );

    // D-13: the confirmation email's Message-ID and template version are kept.
    let evidence_id = app
        .text("SELECT o.message_id FROM subscribers s JOIN outbox o ON o.id = s.confirmed_via")
        .await;
    assert_eq!(
        evidence_id.as_deref(),
        Some(format!("<{message_id}>").as_str())
    );
    assert!(
        app.text("SELECT template_version FROM outbox WHERE template = 'confirm'")
            .await
            .is_some()
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM accounts WHERE username = 'Reader@example.org'")
            .await,
        1
    );
    // G-04/G-05: both consent events point at the wording version shown, with a truncated IP.
    let wording = content_hash(&format!(
        "newsletter\0{}",
        app.config.signup.newsletter_consent_text
    ));
    let events: Vec<(String, String, Option<String>)> =
        sqlx::query_as("SELECT action, text_id, ip FROM consent_events ORDER BY created_at, id")
            .fetch_all(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        events,
        vec![
            ("granted".into(), wording.clone(), Some("127.0.0.0".into())),
            ("confirmed".into(), wording, Some("127.0.0.0".into())),
        ]
    );
    // The link-bearing context is emptied once sent.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE context <> '{}'")
            .await,
        0
    );
    app.stop().await;
}

async fn the_home_page_carries_the_subscribe_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in ["/", "/subscribe"] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 200);
        let headers = response.headers().clone();
        assert!(
            headers["content-security-policy"]
                .to_str()
                .unwrap()
                .contains("default-src 'self'")
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let html = response.text().await.unwrap();
        for field in [
            "name=\"email\"",
            "name=\"name\"",
            "name=\"website\"",
            "name=\"csrf\"",
        ] {
            assert!(html.contains(field), "{path} lacks {field}");
        }
        // L-01, C-02: the digest box is there, optional and not ticked.
        let checkbox = regex_lite::Regex::new(r#"<input type="checkbox" name="newsletter"[^>]*>"#)
            .unwrap()
            .find(&html)
            .expect("a newsletter checkbox")
            .as_str()
            .to_owned();
        assert!(!checkbox.contains("checked"), "{checkbox}");
        assert!(html.contains(&app.config.signup.newsletter_consent_text));
    }
    app.stop().await;
}

async fn the_account_never_depends_on_the_digest_consent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.sign_up("no-digest@example.com", false).await.status(),
        200
    );
    app.drain_outbox().await;
    let confirm_path = link_path(&app.received()[0].text(), &app.base_url, "confirm");
    assert_eq!(app.confirm(&confirm_path).await.status(), 200);
    app.drain_outbox().await;
    assert_eq!(app.received()[1].subject(), "Your login details");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM consent_events").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM accounts").await, 1);
    app.stop().await;
}

async fn an_invalid_address_gets_422_and_the_form_again(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for bad in [
        "not-an-address",
        "",
        "a@b",
        &format!("{}@example.com", "x".repeat(65)),
    ] {
        let response = app.sign_up(bad, true).await;
        assert_eq!(response.status(), 422, "{bad:?}");
        let html = response.text().await.unwrap();
        assert!(html.contains("class=\"error\""), "{bad:?}: a message");
        assert!(html.contains("name=\"email\""), "{bad:?}: the form again");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
    app.stop().await;
}

async fn a_changed_consent_wording_is_not_recorded_as_given(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = app.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    let response = app
        .post_form(
            "/subscribe",
            &[
                ("email", "a@example.com"),
                ("csrf", &csrf),
                ("newsletter", "yes"),
                ("consent_version", "stale"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("wording of the newsletter consent has changed")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
    app.stop().await;
}

async fn a_missing_or_forged_csrf_token_gets_403(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/subscribe").await;
    let forged = "ab".repeat(32);
    for csrf in ["", forged.as_str(), "zz"] {
        let response = app
            .post_form("/subscribe", &[("email", "a@example.com"), ("csrf", csrf)])
            .await;
        assert_eq!(response.status(), 403, "{csrf:?}");
    }
    // A valid token from another browser (another cookie) does not pass either.
    let other = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    let html = other
        .get(app.url("/subscribe"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let foreign = hidden_field(&html, "csrf");
    let response = app
        .post_form(
            "/subscribe",
            &[("email", "a@example.com"), ("csrf", &foreign)],
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
    app.stop().await;
}

async fn a_body_over_16_kib_gets_413(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let huge = "x".repeat(17 * 1024);
    let response = app.post_form("/subscribe", &[("email", &huge)]).await;
    assert_eq!(response.status(), 413);
    app.stop().await;
}

async fn signups_past_the_ip_limit_get_429(backend: Backend) {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.signup.per_ip_per_hour = 2;
    })
    .await;
    assert_eq!(app.sign_up("one@example.com", false).await.status(), 200);
    assert_eq!(app.sign_up("two@example.com", false).await.status(), 200);
    let third = app.sign_up("three@example.com", false).await;
    assert_eq!(third.status(), 429);
    let retry_after: u64 = third.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after), "{retry_after}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 2);
    app.stop().await;
}

async fn the_honeypot_drops_bots_silently(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = app.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    let response = app
        .post_form(
            "/subscribe",
            &[
                ("email", "bot@example.com"),
                ("csrf", &csrf),
                ("website", "http://spam"),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    let human = app.sign_up("human@example.com", false).await;
    assert_eq!(
        response.text().await.unwrap(),
        human.text().await.unwrap(),
        "D-07"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    app.stop().await;
}

async fn the_answer_is_the_same_for_new_pending_and_confirmed_addresses(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let new = app
        .sign_up("same@example.com", false)
        .await
        .text()
        .await
        .unwrap();
    app.drain_outbox().await;
    let pending = app
        .sign_up("same@example.com", false)
        .await
        .text()
        .await
        .unwrap();
    app.drain_outbox().await;
    let confirm_path = link_path(&app.received()[1].text(), &app.base_url, "confirm");
    app.confirm(&confirm_path).await;
    app.drain_outbox().await;
    let confirmed = app
        .sign_up("same@example.com", false)
        .await
        .text()
        .await
        .unwrap();
    let again = app
        .sign_up("same@example.com", false)
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(new, pending);
    assert_eq!(new, confirmed);
    assert_eq!(new, again);
    app.drain_outbox().await;
    // D-08: a confirmed address gets one "already subscribed" email, not one per request.
    let subjects: Vec<String> = app.received().iter().map(|m| m.subject()).collect();
    assert_eq!(
        subjects,
        [
            "Please confirm your subscription",
            "Please confirm your subscription",
            "Your login details",
            "You are already subscribed"
        ]
    );
    app.stop().await;
}

async fn a_pending_address_gets_at_most_three_confirmations_a_day(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for _ in 0..5 {
        assert_eq!(app.sign_up("many@example.com", false).await.status(), 200);
    }
    assert_eq!(app.drain_outbox().await.sent, 3, "D-09");
    app.clock.advance(std::time::Duration::from_secs(25 * 3600));
    app.sign_up("many@example.com", false).await;
    assert_eq!(
        app.drain_outbox().await.sent,
        1,
        "a new day, a new confirmation"
    );
    app.stop().await;
}

async fn a_newer_confirmation_link_voids_the_older_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Drained one at a time, so the received order is the sending order.
    app.sign_up("twice@example.com", false).await;
    app.drain_outbox().await;
    app.sign_up("twice@example.com", false).await;
    app.drain_outbox().await;
    let mails = app.received();
    let old = link_path(&mails[0].text(), &app.base_url, "confirm");
    let new = link_path(&mails[1].text(), &app.base_url, "confirm");
    assert_ne!(old, new);
    assert_eq!(app.get(&old).await.status(), 404, "D-05");
    assert_eq!(app.confirm(&new).await.status(), 200);
    app.stop().await;
}

async fn used_expired_and_unknown_links_show_the_same_invalid_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("used@example.com", false).await;
    app.drain_outbox().await;
    app.sign_up("late@example.com", false).await;
    app.drain_outbox().await;
    let used = link_path(&app.received()[0].text(), &app.base_url, "confirm");
    let late = link_path(&app.received()[1].text(), &app.base_url, "confirm");
    assert_eq!(app.confirm(&used).await.status(), 200);
    app.clock
        .advance(std::time::Duration::from_secs(48 * 3600 + 1));
    let unknown = format!("/confirm/{}", "0".repeat(64));
    let mut pages = Vec::new();
    for path in [
        used.as_str(),
        late.as_str(),
        unknown.as_str(),
        "/confirm/not-a-token",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 404, "{path}");
        // The cookie banner's return address is the one part that names the path.
        let return_to = regex_lite::Regex::new(r#"name="return_to" value="[^"]*""#).unwrap();
        pages.push(
            return_to
                .replace(&response.text().await.unwrap(), "")
                .into_owned(),
        );
    }
    assert!(pages[0].contains(INVALID_PAGE) && pages[0].contains("href=\"/subscribe\""));
    assert!(
        pages.iter().all(|page| *page == pages[0]),
        "D-04: one page for all"
    );
    // The POST refuses them the same way, and the late reader stays pending.
    let form = app.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    for path in [used.as_str(), late.as_str(), unknown.as_str()] {
        let response = app.post_form(path, &[("csrf", &csrf)]).await;
        assert_eq!(response.status(), 404, "{path}");
        assert!(response.text().await.unwrap().contains(INVALID_PAGE));
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
            .await,
        1
    );
    assert_eq!(
        app.drain_outbox().await.sent,
        1,
        "one credentials email, for the used link's reader only"
    );
    app.stop().await;
}

async fn the_confirm_link_get_changes_nothing(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("scanner@example.com", false).await;
    app.drain_outbox().await;
    let path = link_path(&app.received()[0].text(), &app.base_url, "confirm");
    for _ in 0..3 {
        assert_eq!(app.get(&path).await.status(), 200);
    }
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'pending'")
            .await,
        1,
        "D-06"
    );
    // Without the page's CSRF token the POST is refused, too.
    let bare = reqwest::Client::new()
        .post(app.url(&path))
        .form(&[("csrf", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(bare.status(), 403);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'pending'")
            .await,
        1
    );
    app.stop().await;
}

async fn concurrent_signups_of_one_address_create_one_subscriber(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = app.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    let version = hidden_field(&form, "consent_version");
    let fields = [
        ("email", "race@example.com"),
        ("csrf", &csrf),
        ("consent_version", &version),
        ("newsletter", "yes"),
    ];
    let requests = (0..8).map(|_| app.post_form("/subscribe", &fields));
    for response in futures_util::future::join_all(requests).await {
        assert_eq!(response.status(), 200);
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    let confirmations = app
        .scalar("SELECT COUNT(*) FROM outbox WHERE template = 'confirm'")
        .await;
    assert!(
        (1..=3).contains(&confirmations),
        "D-09 holds under concurrency: {confirmations}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM tokens WHERE used_at IS NULL")
            .await,
        1,
        "D-05"
    );
    app.stop().await;
}

async fn the_confirmation_email_holds_nothing_the_reader_typed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = app.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    let response = app
        .post_form(
            "/subscribe",
            &[
                ("email", "named@example.com"),
                ("name", "Buy cheap watches"),
                ("csrf", &csrf),
            ],
        )
        .await;
    assert_eq!(response.status(), 200);
    app.drain_outbox().await;
    let mail = &app.received()[0];
    let raw = String::from_utf8_lossy(&mail.data);
    assert!(!raw.contains("cheap watches"), "D-12");
    assert_eq!(
        app.text("SELECT name FROM subscribers").await.as_deref(),
        Some("Buy cheap watches")
    );
    app.stop().await;
}

async fn forwarded_addresses_count_only_from_trusted_proxies(backend: Backend) {
    for (trusted, expected) in [(false, "127.0.0.0"), (true, "198.51.100.0")] {
        let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
            if trusted {
                config.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
            }
        })
        .await;
        let form = app.get("/subscribe").await.text().await.unwrap();
        let body = format!(
            "email=fwd%40example.com&newsletter=yes&csrf={}&consent_version={}",
            hidden_field(&form, "csrf"),
            hidden_field(&form, "consent_version")
        );
        let response = app
            .client
            .post(app.url("/subscribe"))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("x-forwarded-for", "203.0.113.9, 198.51.100.7")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let ip = app.text("SELECT ip FROM consent_events").await;
        assert_eq!(
            ip.as_deref(),
            Some(expected),
            "S-07 with trusted = {trusted}"
        );
        app.stop().await;
    }
}
