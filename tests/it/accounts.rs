//! Credentials: set a password, sign in and out, sessions, reset, sign-in links.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::time::Duration;

use broadsheet::app::Role;
use support::{Backend, TestApp, link_path};

storage_tests!(
    a_reader_goes_from_signup_to_a_full_article_and_signs_out,
    wrong_password_and_unknown_address_get_the_same_answer,
    sign_in_without_a_csrf_token_is_refused,
    set_password_links_work_once_and_expire,
    a_weak_password_is_refused_and_the_link_stays_usable,
    signing_out_revokes_the_session_on_the_server,
    a_password_change_revokes_every_other_session,
    sign_in_is_throttled_per_account,
    sign_in_is_throttled_per_ip,
    reset_answers_the_same_for_every_address_and_links_last_an_hour,
    a_sign_in_link_works_once_for_ten_minutes,
    sessions_end_when_idle_too_long,
    a_reset_leaves_the_welcome_link_working,
);

const PASSWORD: &str = "a long and unusual passphrase";

async fn a_reader_goes_from_signup_to_a_full_article_and_signs_out(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.import_article(
        "+++\ntitle = \"Budget talks resume\"\nteaser = \"Talks resumed.\"\n+++\nThe secret clause reads: ZEBRA-42.\n",
    )
    .await;
    let anonymous = app
        .get("/articles/budget-talks-resume")
        .await
        .text()
        .await
        .unwrap();
    assert!(anonymous.contains("Talks resumed.") && !anonymous.contains("ZEBRA-42"));

    let path = app.confirmed_reader("Story@Example.com", true).await;
    let form = app.get(&path).await;
    assert_eq!(form.status(), 200);
    assert!(form.text().await.unwrap().contains("name=\"password\""));
    let set = app.submit(&path, &path, &[("password", PASSWORD)]).await;
    assert_eq!(set.status(), 303);
    assert_eq!(set.headers()["location"], "/login");
    app.drain_outbox().await;
    assert_eq!(
        app.last_mail_to("Story@example.com").subject(),
        "Your password was set",
        "A-03"
    );

    let signed_in = app.sign_in("story@example.com", PASSWORD).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(signed_in.headers()["location"], "/account");
    let cookie = signed_in.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["bs_session=", "HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(cookie.contains(attribute), "A-08: {attribute} in {cookie}");
    }
    let account = app.get("/account").await.text().await.unwrap();
    assert!(account.contains("Story@example.com"));
    assert!(
        account.contains("<dt>Daily digest</dt><dd>On</dd>"),
        "{account}"
    );
    let article = app
        .get("/articles/budget-talks-resume")
        .await
        .text()
        .await
        .unwrap();
    assert!(
        article.contains("ZEBRA-42"),
        "signed-in readers get the full body"
    );

    let out = app.submit("/account", "/logout", &[]).await;
    assert_eq!(out.status(), 303);
    assert_eq!(app.get("/account").await.headers()["location"], "/login");
    let after = app
        .get("/articles/budget-talks-resume")
        .await
        .text()
        .await
        .unwrap();
    assert!(!after.contains("ZEBRA-42"));
    app.stop().await;
}

async fn wrong_password_and_unknown_address_get_the_same_answer(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("known@example.com", PASSWORD)
        .await;
    let mut answers = Vec::new();
    for (email, password) in [
        ("known@example.com", "not the password"),
        ("unknown@example.com", PASSWORD),
        ("not-an-address", PASSWORD),
    ] {
        let response = app.sign_in(email, password).await;
        assert_eq!(response.status(), 401, "{email}");
        let body = response.text().await.unwrap().replace(email, "EMAIL");
        assert!(body.contains("Invalid email or password"));
        answers.push(body);
    }
    assert!(answers.iter().all(|a| *a == answers[0]), "A-06: one answer");
    app.stop().await;
}

async fn sign_in_without_a_csrf_token_is_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("csrf@example.com", PASSWORD).await;
    let fresh = app.new_browser();
    let response = fresh
        .post_form(
            "/login",
            &[("email", "csrf@example.com"), ("password", PASSWORD)],
        )
        .await;
    assert_eq!(response.status(), 403, "A-09");
    let cookies: Vec<_> = response.headers().get_all("set-cookie").iter().collect();
    assert!(
        cookies
            .iter()
            .all(|c| !c.to_str().unwrap().contains("bs_session")),
        "{cookies:?}"
    );
    app.stop().await;
}

async fn set_password_links_work_once_and_expire(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let used = app.confirmed_reader("once@example.com", false).await;
    let late = app.confirmed_reader("late@example.com", false).await;
    assert_eq!(
        app.submit(&used, &used, &[("password", PASSWORD)])
            .await
            .status(),
        303
    );
    assert_eq!(app.get(&used).await.status(), 404, "used");
    app.clock.advance(Duration::from_secs(7 * 24 * 3600 + 60));
    assert_eq!(
        app.get(&late).await.status(),
        404,
        "A-01: welcome links last 7 days"
    );
    let form = app.get("/login").await.text().await.unwrap();
    let csrf = support::hidden_field(&form, "csrf");
    let response = app
        .post_form(&late, &[("password", PASSWORD), ("csrf", &csrf)])
        .await;
    assert_eq!(response.status(), 404);
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("invalid or has expired")
    );
    assert_eq!(
        app.sign_in("late@example.com", PASSWORD).await.status(),
        401
    );
    app.stop().await;
}

async fn a_weak_password_is_refused_and_the_link_stays_usable(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let path = app.confirmed_reader("weak@example.com", false).await;
    for weak in ["short", "password123"] {
        let response = app.submit(&path, &path, &[("password", weak)]).await;
        assert_eq!(response.status(), 422, "{weak}");
        assert!(response.text().await.unwrap().contains("class=\"error\""));
    }
    assert_eq!(app.get(&path).await.status(), 200);
    assert_eq!(
        app.submit(&path, &path, &[("password", PASSWORD)])
            .await
            .status(),
        303
    );
    app.stop().await;
}

async fn signing_out_revokes_the_session_on_the_server(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("out@example.com", PASSWORD).await;
    let response = app.sign_in("out@example.com", PASSWORD).await;
    let cookie = response.headers()["set-cookie"].to_str().unwrap();
    let session = cookie.split(';').next().unwrap().to_owned();
    let replay = || async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(app.url("/account"))
            .header("cookie", &session)
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(
        replay().await,
        200,
        "the copied cookie works while signed in"
    );
    app.submit("/account", "/logout", &[]).await;
    assert_eq!(
        replay().await,
        303,
        "the copied cookie is dead after sign-out"
    );
    app.stop().await;
}

async fn a_password_change_revokes_every_other_session(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("two@example.com", PASSWORD).await;
    let other = app.new_browser();
    assert_eq!(app.sign_in("two@example.com", PASSWORD).await.status(), 303);
    assert_eq!(
        other.sign_in("two@example.com", PASSWORD).await.status(),
        303
    );
    assert_eq!(other.get("/account").await.status(), 200);

    app.submit(
        "/login/reset",
        "/login/reset",
        &[("email", "two@example.com")],
    )
    .await;
    app.drain_outbox().await;
    let reset = link_path(
        &app.last_mail_to("two@example.com").text(),
        &app.base_url,
        "account/password",
    );
    let new_password = "another long unusual passphrase";
    assert_eq!(
        app.submit(&reset, &reset, &[("password", new_password)])
            .await
            .status(),
        303
    );

    assert_eq!(
        app.get("/account").await.status(),
        200,
        "this browser stays signed in"
    );
    assert_eq!(
        other.get("/account").await.status(),
        303,
        "the other one is signed out"
    );
    assert_eq!(
        other.sign_in("two@example.com", PASSWORD).await.status(),
        401
    );
    assert_eq!(
        other
            .sign_in("two@example.com", new_password)
            .await
            .status(),
        303
    );
    app.stop().await;
}

async fn sign_in_is_throttled_per_account(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.accounts.login_per_account_per_hour = 3;
    })
    .await;
    app.reader_with_password("target@example.com", PASSWORD)
        .await;
    for _ in 0..3 {
        assert_eq!(
            app.sign_in("target@example.com", "guess").await.status(),
            401
        );
    }
    let blocked = app.sign_in("target@example.com", PASSWORD).await;
    assert_eq!(blocked.status(), 429, "A-07");
    let retry_after: u64 = blocked.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=3600).contains(&retry_after));
    // Another account from the same address is not affected.
    assert_eq!(
        app.sign_in("someone-else@example.com", "guess")
            .await
            .status(),
        401
    );
    app.stop().await;
}

async fn sign_in_is_throttled_per_ip(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.accounts.login_per_ip_per_minute = 2;
    })
    .await;
    assert_eq!(app.sign_in("a@example.com", "guess").await.status(), 401);
    assert_eq!(app.sign_in("b@example.com", "guess").await.status(), 401);
    assert_eq!(app.sign_in("c@example.com", "guess").await.status(), 429);
    app.stop().await;
}

async fn reset_answers_the_same_for_every_address_and_links_last_an_hour(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("reset@example.com", PASSWORD)
        .await;
    let before = app.received().len();
    let known = app
        .submit(
            "/login/reset",
            "/login/reset",
            &[("email", "reset@example.com")],
        )
        .await;
    let unknown = app
        .submit(
            "/login/reset",
            "/login/reset",
            &[("email", "nobody@example.com")],
        )
        .await;
    assert_eq!(
        (known.status().as_u16(), unknown.status().as_u16()),
        (200, 200)
    );
    assert_eq!(
        known.text().await.unwrap(),
        unknown.text().await.unwrap(),
        "A-06"
    );
    // Each request did the same work, one row kept, whoever the address
    // belongs to: no timing can tell them apart. The worker does the rest.
    assert_eq!(app.scalar("SELECT COUNT(*) FROM link_requests").await, 2);
    let links = "SELECT COUNT(*) FROM tokens t JOIN subscribers s ON s.id = t.subscriber_id
                 WHERE s.email_canonical = 'reset@example.com' AND t.purpose = 'reset_password'";
    assert_eq!(app.scalar(links).await, 0, "no link made in the request");
    app.drain_outbox().await;
    assert_eq!(app.scalar("SELECT COUNT(*) FROM link_requests").await, 0);
    assert_eq!(app.scalar(links).await, 1);
    assert_eq!(
        app.received().len(),
        before + 1,
        "only the known address gets mail"
    );
    let mail = app.last_mail_to("reset@example.com");
    assert_eq!(mail.subject(), "Reset your password");
    let link = link_path(&mail.text(), &app.base_url, "account/password");
    assert_eq!(app.get(&link).await.status(), 200);
    app.clock.advance(Duration::from_secs(61 * 60));
    assert_eq!(
        app.get(&link).await.status(),
        404,
        "A-01: reset links last an hour"
    );
    app.stop().await;
}

async fn a_sign_in_link_works_once_for_ten_minutes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("link@example.com", PASSWORD).await;
    let request = || {
        app.submit(
            "/login/link",
            "/login/link",
            &[("email", "link@example.com")],
        )
    };
    assert_eq!(request().await.status(), 200);
    app.drain_outbox().await;
    let link = link_path(
        &app.last_mail_to("link@example.com").text(),
        &app.base_url,
        "login/link",
    );
    let page = app.get(&link).await;
    assert_eq!(page.status(), 200, "D-06: a page with a button");
    assert_eq!(
        app.get("/account").await.status(),
        303,
        "the GET signed nobody in"
    );
    let signed_in = app.submit(&link, &link, &[]).await;
    assert_eq!(signed_in.status(), 303);
    assert_eq!(app.get("/account").await.status(), 200);
    assert_eq!(app.get(&link).await.status(), 404, "single use");

    request().await;
    app.drain_outbox().await;
    let late = link_path(
        &app.last_mail_to("link@example.com").text(),
        &app.base_url,
        "login/link",
    );
    app.clock.advance(Duration::from_secs(10 * 60 + 1));
    assert_eq!(app.get(&late).await.status(), 404, "A-10: ten minutes");
    app.stop().await;
}

async fn sessions_end_when_idle_too_long(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("idle@example.com", PASSWORD).await;
    app.sign_in("idle@example.com", PASSWORD).await;
    app.clock.advance(Duration::from_secs(13 * 24 * 3600));
    assert_eq!(
        app.get("/account").await.status(),
        200,
        "used within the idle window"
    );
    app.clock.advance(Duration::from_secs(13 * 24 * 3600));
    assert_eq!(
        app.get("/account").await.status(),
        200,
        "each use restarts the idle window"
    );
    app.clock.advance(Duration::from_secs(5 * 24 * 3600));
    assert_eq!(
        app.get("/account").await.status(),
        303,
        "A-08: 30 days at most"
    );
    app.stop().await;
}

async fn a_reset_leaves_the_welcome_link_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let welcome = app.confirmed_reader("both@example.com", false).await;
    app.submit(
        "/login/reset",
        "/login/reset",
        &[("email", "both@example.com")],
    )
    .await;
    app.drain_outbox().await;
    let reset = link_path(
        &app.last_mail_to("both@example.com").text(),
        &app.base_url,
        "account/password",
    );
    assert_ne!(reset, welcome);
    assert_eq!(
        app.get(&welcome).await.status(),
        200,
        "D-04: a reset is a purpose of its own"
    );
    assert_eq!(app.get(&reset).await.status(), 200);
    assert_eq!(
        app.submit(&reset, &reset, &[("password", PASSWORD)])
            .await
            .status(),
        303
    );
    assert_eq!(
        app.get(&welcome).await.status(),
        404,
        "A-02: setting a password voids every link"
    );
    app.stop().await;
}
