//! Abuse from many addresses at once: guessed links and API tokens are
//! throttled per client IP, and floods of signups and sign-ins from many
//! IPs hold every limit while other readers are still served. Client IPs
//! come from `X-Forwarded-For`, 127.0.0.1 being a trusted proxy (S-07).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::time::{Duration, Instant};

use broadsheet::{app::Role, config::Config, editors};
use support::{Backend, Browser, TestApp, hidden_field, link_path};
use tokio::task::JoinSet;

storage_tests!(
    guessed_links_are_refused_past_the_budget_and_only_from_that_address,
    wrong_api_tokens_are_refused_past_the_budget_and_only_from_that_address,
    a_signup_flood_from_many_addresses_holds_every_limit_and_readers_are_served,
    a_sign_in_flood_from_many_addresses_holds_the_account_limit,
    a_password_form_flooded_open_loop_leaves_other_readers_signing_in,
    rotating_ipv6_addresses_within_a_64_escape_no_limit,
    signups_from_many_networks_pass_the_hourly_mail_ceiling_only_in_time,
);

const GUESSER: &str = "203.0.113.66";

fn behind_a_proxy(config: &mut Config) {
    config.server.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
}

async fn guessed_links_are_refused_past_the_budget_and_only_from_that_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.server.token_misses_per_ip_per_hour = 6;
    })
    .await;
    assert_eq!(app.sign_up("reader@example.com", true).await.status(), 200);
    app.drain_outbox().await;
    let confirm = link_path(
        &app.last_mail_to("reader@example.com").text(),
        &app.base_url,
        "confirm",
    );

    let guesser = Browser::forwarded_for(&app.base_url, GUESSER);
    let made_up = "A".repeat(43);
    let routes = [
        "confirm",
        "login/link",
        "account/password",
        "unsubscribe",
        "preferences",
        "admin/password",
    ];
    for route in routes {
        let status = guesser.get(&format!("/{route}/{made_up}")).await.status();
        assert_eq!(status, 404, "/{route}: a miss within the budget");
    }
    // The seventh miss is over the budget: answered as usual, then the
    // address is refused, whatever the link, even a real one.
    assert_eq!(
        guesser.get(&format!("/confirm/{made_up}")).await.status(),
        404
    );
    for path in [confirm.as_str(), &format!("/unsubscribe/{made_up}")] {
        let refused = guesser.get(path).await;
        assert_eq!(refused.status(), 429, "{path}");
        let retry_after: u64 = refused.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse()
            .unwrap();
        // One miss comes back every 10 minutes (6 per hour).
        assert!((1..=600).contains(&retry_after), "{retry_after}");
        assert!(refused.text().await.unwrap().contains("Too many requests"));
    }
    assert_eq!(
        guesser.get("/subscribe").await.status(),
        200,
        "pages without a token are still served"
    );

    // The reader, from another address, confirms with the real link.
    assert_eq!(app.confirm(&confirm).await.status(), 200);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
            .await,
        1
    );
    app.stop().await;
}

async fn wrong_api_tokens_are_refused_past_the_budget_and_only_from_that_address(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.server.token_misses_per_ip_per_hour = 3;
    })
    .await;
    let token = app.api_token("script", editors::Role::Admin).await;
    let guesser = Browser::forwarded_for(&app.base_url, GUESSER);
    let call = |browser: &Browser, bearer: &str| {
        browser
            .client
            .get(browser.url("/api/v1/stats"))
            .bearer_auth(bearer)
            .send()
    };
    assert_eq!(call(&guesser, &token).await.unwrap().status(), 200);
    for guess in ["bs_wrong", "bs_wrong_again", "", "bs_still_wrong"] {
        assert_eq!(call(&guesser, guess).await.unwrap().status(), 401);
    }
    let refused = call(&guesser, &token).await.unwrap();
    assert_eq!(refused.status(), 429, "even the right token, from there");
    assert!(refused.headers().contains_key("retry-after"));
    let body: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");

    let elsewhere = Browser::forwarded_for(&app.base_url, "198.51.100.20");
    assert_eq!(call(&elsewhere, &token).await.unwrap().status(), 200);
    assert_eq!(call(&app, &token).await.unwrap().status(), 200);
    app.stop().await;
}

/// 30 addresses each send three signups at once (two allowed per IP), 30
/// more each sign one victim up (list-bombing from many sources), and a
/// reader signs up in the middle of it all.
async fn a_signup_flood_from_many_addresses_holds_every_limit_and_readers_are_served(
    backend: Backend,
) {
    const SOURCES: u32 = 30;
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.signup.per_ip_per_hour = 2;
    })
    .await;
    let mut flood = JoinSet::new();
    for source in 0..SOURCES {
        for n in 0..3 {
            let browser = Browser::forwarded_for(&app.base_url, &format!("198.18.0.{source}"));
            flood.spawn(async move {
                let email = format!("flood-{source}-{n}@example.net");
                browser.sign_up(&email, true).await.status().as_u16()
            });
        }
        let browser = Browser::forwarded_for(&app.base_url, &format!("198.18.1.{source}"));
        flood.spawn(async move {
            browser
                .sign_up("victim@example.org", true)
                .await
                .status()
                .as_u16()
        });
    }
    let reader = Browser::forwarded_for(&app.base_url, "192.0.2.10");
    assert_eq!(
        reader.sign_up("reader@example.com", true).await.status(),
        200,
        "a reader is served during the flood"
    );
    let statuses = flood.join_all().await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!(count(429), SOURCES as usize, "one refused per flooding IP");
    assert_eq!(
        count(200),
        3 * SOURCES as usize,
        "two per IP, one per victim signup"
    );
    assert_eq!(count(200) + count(429), statuses.len(), "{statuses:?}");

    app.drain_outbox().await;
    let to_victim = app
        .received()
        .iter()
        .filter(|mail| mail.to == ["<victim@example.org>"])
        .count();
    assert_eq!(to_victim, 3, "D-11: at most three confirmations a day");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE email_canonical LIKE 'flood-%'")
            .await,
        2 * i64::from(SOURCES)
    );
    let confirm = link_path(
        &app.last_mail_to("reader@example.com").text(),
        &app.base_url,
        "confirm",
    );
    assert_eq!(reader.confirm(&confirm).await.status(), 200);
    app.stop().await;
}

/// 20 addresses at once guess one reader's password; the account's hourly
/// budget (5) holds across them, and another reader signs in meanwhile.
async fn a_sign_in_flood_from_many_addresses_holds_the_account_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.accounts.login_per_account_per_hour = 5;
    })
    .await;
    app.reader_with_password("target@example.com", "correct horse battery")
        .await;
    app.reader_with_password("other@example.com", "another good passphrase")
        .await;
    let mut flood = JoinSet::new();
    for source in 0..20 {
        let browser = Browser::forwarded_for(&app.base_url, &format!("198.18.2.{source}"));
        flood.spawn(async move {
            let guess = format!("guess number {source}");
            browser
                .sign_in("target@example.com", &guess)
                .await
                .status()
                .as_u16()
        });
    }
    let other = Browser::forwarded_for(&app.base_url, "192.0.2.11");
    assert_eq!(
        other
            .sign_in("other@example.com", "another good passphrase")
            .await
            .status(),
        303,
        "another reader signs in during the flood"
    );
    let statuses = flood.join_all().await;
    let count = |status| statuses.iter().filter(|s| **s == status).count();
    assert_eq!((count(401), count(429)), (5, 15), "{statuses:?}");
    let owner = Browser::forwarded_for(&app.base_url, "192.0.2.12");
    assert_eq!(
        owner
            .sign_in("target@example.com", "correct horse battery")
            .await
            .status(),
        429,
        "A-07: the account waits, wherever the attempt comes from"
    );
    app.stop().await;
}

/// One signed-in reader fires `POST /account/delete` with a 16 KB wrong
/// password every 2 ms for 3 s, open-loop, hanging up 20 ms after each
/// send (the flood that once held every sign-in at 408 for a minute).
/// Another reader's sign-in in the middle of it is answered in time.
async fn a_password_form_flooded_open_loop_leaves_other_readers_signing_in(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("flooder@example.com", "correct horse battery")
        .await;
    app.reader_with_password("victim@example.com", "another good passphrase")
        .await;
    let flooder = app.new_browser();
    let signed_in = flooder
        .sign_in("flooder@example.com", "correct horse battery")
        .await;
    assert_eq!(signed_in.status(), 303);
    let page = flooder.get("/account/delete").await.text().await.unwrap();
    let fields = [
        ("password", "x".repeat(16 * 1024)),
        ("csrf", hidden_field(&page, "csrf")),
    ];
    let (client, url) = (flooder.client.clone(), flooder.url("/account/delete"));
    let flooding = tokio::spawn(async move {
        let began = Instant::now();
        let mut tick = tokio::time::interval(Duration::from_millis(2));
        let mut sent = 0;
        while began.elapsed() < Duration::from_secs(3) {
            tick.tick().await;
            let request = client.post(&url).form(&fields).send();
            tokio::spawn(tokio::time::timeout(Duration::from_millis(20), request));
            sent += 1;
        }
        sent
    });
    tokio::time::sleep(Duration::from_secs(1)).await;
    let victim = app.new_browser();
    let began = Instant::now();
    let answer = victim
        .sign_in("victim@example.com", "another good passphrase")
        .await;
    let took = began.elapsed();
    assert_eq!(answer.status(), 303);
    assert!(
        took < Duration::from_secs(1),
        "sign-in took {took:?} under the flood"
    );
    let sent = flooding.await.unwrap();
    assert!(sent > 500, "the flood was a flood: {sent} requests");
    app.stop().await;
}

/// A client holding an IPv6 /64 sends each request from another address of
/// it: signups, sign-ins and guessed links all count as one client's, while
/// a neighbour in the next /64 keeps its own budgets.
async fn rotating_ipv6_addresses_within_a_64_escape_no_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.signup.per_ip_per_hour = 2;
        config.accounts.login_per_ip_per_minute = 3;
        config.server.token_misses_per_ip_per_hour = 2;
    })
    .await;
    let from =
        |n: u32| Browser::forwarded_for(&app.base_url, &format!("2001:db8:7:1:{n:x}::{n:x}"));
    let mut statuses = Vec::new();
    for n in 0..12 {
        let email = format!("rotating-{n}@example.net");
        statuses.push(from(n).sign_up(&email, true).await.status().as_u16());
    }
    let accepted = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(accepted, 2, "signups from one /64: {statuses:?}");
    let neighbour = Browser::forwarded_for(&app.base_url, "2001:db8:7:2::1");
    let answer = neighbour.sign_up("neighbour@example.net", true).await;
    assert_eq!(answer.status(), 200, "the next /64 is another client");

    let mut statuses = Vec::new();
    for n in 20..26 {
        let answer = from(n)
            .sign_in("nobody@example.net", "a wrong password")
            .await;
        statuses.push(answer.status().as_u16());
    }
    assert_eq!(
        statuses,
        [401, 401, 401, 429, 429, 429],
        "sign-ins from one /64"
    );

    let made_up = format!("/confirm/{}", "A".repeat(43));
    let mut statuses = Vec::new();
    for n in 30..34 {
        statuses.push(from(n).get(&made_up).await.status().as_u16());
    }
    // The miss past the budget is answered as usual; the network is refused after it.
    assert_eq!(statuses, [404, 404, 404, 429], "guessed links from one /64");
    assert_eq!(neighbour.get(&made_up).await.status(), 404);
    app.stop().await;
}

/// A botnet signs strangers up from as many networks as it likes: every
/// signup is kept, but the service sends only `signup.emails_per_hour`
/// confirmations an hour; the rest wait their turn, and other mail (a
/// reader's password link) is not held up behind them.
async fn signups_from_many_networks_pass_the_hourly_mail_ceiling_only_in_time(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        behind_a_proxy(config);
        config.signup.emails_per_hour = 4;
    })
    .await;
    app.reader_with_password("reader@example.com", "correct horse battery")
        .await;
    let before = app.received().len();
    for n in 0..10 {
        let bot = Browser::forwarded_for(&app.base_url, &format!("2001:db8:{n:x}::1"));
        let answer = bot
            .sign_up(&format!("stranger-{n}@example.net"), true)
            .await;
        assert_eq!(answer.status(), 200, "every signup is accepted");
    }
    let reset = app.submit(
        "/login/reset",
        "/login/reset",
        &[("email", "reader@example.com")],
    );
    assert_eq!(reset.await.status(), 200);
    app.drain_outbox().await;
    let to_strangers = |app: &TestApp| {
        app.received()[before..]
            .iter()
            .filter(|mail| mail.to[0].starts_with("<stranger-"))
            .count()
    };
    // One confirmation went out when the reader signed up.
    assert_eq!(to_strangers(&app), 3, "the ceiling, less the reader's own");
    assert!(
        app.received()[before..]
            .iter()
            .any(|mail| mail.to == ["<reader@example.com>"])
    );
    let waiting = "SELECT COUNT(*) FROM outbox WHERE template = 'confirm' AND status = 'pending'";
    assert_eq!(app.scalar(waiting).await, 7);
    app.clock.advance(Duration::from_secs(3601));
    app.drain_outbox().await;
    assert_eq!(to_strangers(&app), 7);
    app.clock.advance(Duration::from_secs(3601));
    app.drain_outbox().await;
    assert_eq!(to_strangers(&app), 10, "nothing lost");
    assert_eq!(app.scalar(waiting).await, 0);
    app.stop().await;
}
