//! Every public and console page in headless Chromium: axe-core finds no
//! serious or critical violation, at 390 px wide no page scrolls sideways
//! and no table hides a column, and a reader signs up and signs in with
//! the keyboard alone.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::time::Duration;

use broadsheet::{domain::LinkPurpose, editors::Role};
use fantoccini::{
    Client, Locator,
    actions::{InputSource, KeyAction, KeyActions},
    key::Key,
};

use crate::{
    browser::{Browser, type_into, wait_for_heading},
    support::{self, Backend, TestApp},
};

storage_tests!(
    every_page_passes_axe_and_fits_a_phone,
    a_reader_signs_up_and_signs_in_by_keyboard_alone,
);

/// axe-core's script, from npm (.ci/run installs it): `BROADSHEET_TEST_AXE`,
/// or where .ci/run puts it.
fn axe_source() -> Option<String> {
    let path = std::env::var("BROADSHEET_TEST_AXE").unwrap_or_else(|_| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/target/axe/node_modules/axe-core/axe.min.js"
        )
        .into()
    });
    support::installed(
        &path,
        "BROADSHEET_TEST_REQUIRE_AXE",
        "npm install --prefix target/axe axe-core@4.11.0",
        "accessibility",
    )
    .then(|| std::fs::read_to_string(&path).unwrap())
}

const PHONE_WIDTH: u32 = 390;

async fn every_page_passes_axe_and_fits_a_phone(backend: Backend) {
    let Some(axe) = axe_source() else { return };
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.import_article(
        "+++\ntitle = \"Harbour lights\"\nslug = \"harbour-lights\"\ncategories = [\"Town\"]\n+++\nThe harbour, lit.\n\nA second paragraph.\n",
    )
    .await;
    app.reader_with_password("reader@example.com", "a reader's passphrase")
        .await;
    app.editor("desk@example.com", Role::Admin, "the desk's passphrase")
        .await;
    let page = &browser.client;
    page.set_window_size(PHONE_WIDTH, 844).await.unwrap();

    // The pages of the links in every digest, as a reader opens them.
    let unsubscribe = app
        .reader_link("reader@example.com", LinkPurpose::Unsubscribe)
        .await;
    let preferences = app
        .reader_link("reader@example.com", LinkPurpose::Preferences)
        .await;
    let public = [
        "/",
        "/articles",
        "/articles/harbour-lights",
        &unsubscribe,
        &preferences,
        "/subscribe",
        "/login",
        "/login/link",
        "/login/reset",
        "/privacy",
        "/cookies",
        "/no-such-page",
    ];
    let mut findings = Vec::new();
    for path in public {
        findings.extend(check(page, &app.url(path), &axe).await);
    }
    sign_in(
        page,
        &app.url("/login"),
        "reader@example.com",
        "a reader's passphrase",
    )
    .await;
    for path in [
        "/account",
        "/account/preferences",
        "/account/consents",
        "/account/delete",
        "/articles/harbour-lights",
    ] {
        findings.extend(check(page, &app.url(path), &axe).await);
    }

    findings.extend(check(page, &app.url("/admin/login"), &axe).await);
    page.goto(&app.url("/admin/login")).await.unwrap();
    type_into(page, "email", "desk@example.com").await;
    type_into(page, "password", "the desk's passphrase").await;
    page.find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(page, "Dashboard").await;
    let reader = app.subscriber_id("reader@example.com").await;
    let broadsheet::digest::Started::Campaign { id: campaign, .. } = app.send_digest_now().await
    else {
        panic!("no campaign started")
    };
    let article = format!(
        "/admin/articles/{}",
        app.text("SELECT id FROM articles WHERE slug = 'harbour-lights'")
            .await
            .unwrap()
    );
    let (reader, campaign) = (
        format!("/admin/readers/{reader}"),
        format!("/admin/campaigns/{campaign}"),
    );
    let console = [
        "/admin",
        &reader,
        &campaign,
        "/admin/articles",
        "/admin/articles/new",
        &article,
        "/admin/digests/preview",
        "/admin/digests",
        "/admin/readers",
        "/admin/feeds",
        "/admin/audit",
        "/admin/suppressions",
        "/admin/webhooks",
        "/admin/editors",
        "/admin/tokens",
        "/api/docs",
    ];
    for path in console {
        findings.extend(check(page, &app.url(path), &axe).await);
    }
    // The account emails (confirmation, credentials) as a phone shows them.
    for mail in app.received() {
        let html = mail.parsed().body_html(0).unwrap().into_owned();
        let file = tempfile::Builder::new().suffix(".html").tempfile().unwrap();
        std::fs::write(file.path(), html).unwrap();
        let shown = format!("file://{}", file.path().display());
        page.goto(&shown).await.unwrap();
        let overflow = page
            .execute(
                "return document.documentElement.scrollWidth - window.innerWidth;",
                vec![],
            )
            .await
            .unwrap();
        if overflow.as_i64().unwrap() > 0 {
            findings.push(format!(
                "the email \"{}\" scrolls sideways by {overflow} px",
                mail.subject()
            ));
        }
    }
    assert!(findings.is_empty(), "{findings:#?}");
    browser.stop().await;
    app.stop().await;
}

/// What is wrong with the page at `url`: axe's serious and critical
/// violations, sideways scrolling, hidden table cells.
async fn check(page: &Client, url: &str, axe: &str) -> Vec<String> {
    page.goto(url).await.unwrap();
    // The page itself, not a sign-in page it sent the browser to, nor the
    // 404 (checked once, on purpose).
    assert_eq!(page.current_url().await.unwrap().as_str(), url);
    let title = page.title().await.unwrap();
    assert!(
        !title.starts_with("Page not found") || url.ends_with("/no-such-page"),
        "{url} is not found"
    );
    page.execute(axe, vec![]).await.unwrap();
    let violations = page
        .execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, { resultTypes: ['violations'] }).then(result => done(
               result.violations
                 .filter(v => v.impact === 'serious' || v.impact === 'critical')
                 .map(v => v.impact + ' ' + v.id + ': ' + v.help + ' at ' +
                   v.nodes.map(n => n.target.join(' ')).join(', '))));",
            vec![],
        )
        .await
        .unwrap();
    let mut found: Vec<String> = violations
        .as_array()
        .unwrap()
        .iter()
        .map(|v| format!("{url}: {}", v.as_str().unwrap()))
        .collect();
    let layout = page
        .execute(
            "return {
               overflow: document.documentElement.scrollWidth - window.innerWidth,
               hidden: [...document.querySelectorAll('th, td')]
                 .filter(cell => getComputedStyle(cell).display === 'none').length,
             };",
            vec![],
        )
        .await
        .unwrap();
    if layout["overflow"].as_i64().unwrap() > 0 {
        found.push(format!(
            "{url}: scrolls sideways by {} px at {PHONE_WIDTH} px",
            layout["overflow"]
        ));
    }
    if layout["hidden"].as_i64().unwrap() > 0 {
        found.push(format!(
            "{url}: {} table cells hidden at {PHONE_WIDTH} px",
            layout["hidden"]
        ));
    }
    found
}

async fn sign_in(page: &Client, url: &str, email: &str, password: &str) {
    page.goto(url).await.unwrap();
    type_into(page, "email", email).await;
    type_into(page, "password", password).await;
    page.find(Locator::Css("main form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(page, "Your account").await;
}

async fn a_reader_signs_up_and_signs_in_by_keyboard_alone(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    let page = &browser.client;

    page.goto(&app.url("/subscribe")).await.unwrap();
    tab_to(page, "#email").await;
    press(page, "keys@example.com").await;
    tab_to(page, "input[name=newsletter]").await;
    press(page, " ").await;
    tab_to(page, "main form button[type=submit]").await;
    press(page, &Key::Enter.to_string()).await;
    wait_for_heading(page, "Check your inbox").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events WHERE action = 'granted' AND purpose = 'newsletter'")
            .await,
        1,
        "the box ticked by the space bar"
    );

    app.reader_with_password("reader@example.com", "typed, never clicked")
        .await;
    page.goto(&app.url("/login")).await.unwrap();
    tab_to(page, "#email").await;
    press(page, "reader@example.com").await;
    tab_to(page, "#password").await;
    press(page, "typed, never clicked").await;
    press(page, &Key::Enter.to_string()).await;
    wait_for_heading(page, "Your account").await;
    browser.stop().await;
    app.stop().await;
}

/// Presses Tab until the element matching `css` has the focus (at most 40
/// times: a page whose tab order never reaches it fails).
async fn tab_to(page: &Client, css: &str) {
    let script = format!(
        "return document.activeElement !== null && document.activeElement.matches({css:?});"
    );
    for _ in 0..40 {
        if page.execute(&script, vec![]).await.unwrap().as_bool() == Some(true) {
            return;
        }
        press(page, &Key::Tab.to_string()).await;
    }
    panic!("Tab never reaches {css}");
}

/// Keys sent to whatever has the focus, as a person types them.
async fn press(page: &Client, keys: &str) {
    let actions = KeyActions::new("keyboard".into());
    let actions = keys.chars().fold(actions, |actions, key| {
        actions
            .then(KeyAction::Down { value: key })
            .then(KeyAction::Up { value: key })
    });
    page.perform_actions(actions).await.unwrap();
    tokio::time::sleep(Duration::from_millis(20)).await;
}
