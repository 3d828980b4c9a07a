//! The public pages in a real headless Chromium, driven through chromedriver.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::{
    process::{Child, Command, Stdio},
    time::Duration,
};

use broadsheet::domain::LinkPurpose;
use fantoccini::{Client, ClientBuilder, Locator};
use hyper_util::client::legacy::connect::HttpConnector;
use support::{Backend, TestApp, free_port, link_path};

storage_tests!(
    a_reader_signs_up_confirms_signs_in_and_reads_in_a_real_browser,
    an_editor_publishes_previews_sends_and_watches_a_digest_finish_in_a_real_browser,
);

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

async fn a_reader_signs_up_confirms_signs_in_and_reads_in_a_real_browser(backend: Backend) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.import_article(
        "+++\ntitle = \"Night ferry\"\nteaser = \"The late ferry returns.\"\n+++\nFull story: OSPREY-3.\n",
    )
    .await;
    let page = &browser.client;
    page.goto(&app.url("/")).await.unwrap();
    // C-01: before a choice, only the strictly necessary CSRF cookie.
    assert_eq!(cookie_names(page).await, ["bs_csrf"]);
    // C-05/C-06: "Reject all" answers the banner and the page stays usable.
    page.find(Locator::Css("#cookie-banner button[value=reject_all]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_until_gone(page, "#cookie-banner").await;
    assert_eq!(cookie_names(page).await, ["bs_cookie_consent", "bs_csrf"]);
    let withdrawn = "SELECT COUNT(*) FROM consent_events WHERE subject_kind = 'browser' AND action = 'withdrawn'";
    assert_eq!(
        app.scalar(withdrawn).await,
        2,
        "C-08: one event per category"
    );
    page.goto(&app.url("/")).await.unwrap();
    assert!(
        page.find_all(Locator::Id("cookie-banner"))
            .await
            .unwrap()
            .is_empty(),
        "asked once"
    );
    page.find(Locator::Id("email"))
        .await
        .unwrap()
        .send_keys("browser@example.com")
        .await
        .unwrap();
    // The honeypot is in the page but hidden from people (D-11).
    assert!(
        !page
            .find(Locator::Id("website"))
            .await
            .unwrap()
            .is_displayed()
            .await
            .unwrap()
    );
    let checkbox = page
        .find(Locator::Css("input[name=newsletter]"))
        .await
        .unwrap();
    assert!(
        !checkbox.is_selected().await.unwrap(),
        "L-01: not pre-ticked"
    );
    checkbox.click().await.unwrap();
    page.find(Locator::Css("form.subscribe button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(page, "Check your inbox").await;
    assert_eq!(
        cookie_names(page).await,
        ["bs_cookie_consent", "bs_csrf"],
        "nothing optional"
    );

    app.drain_outbox().await;
    let path = link_path(&app.received()[0].text(), &app.base_url, "confirm");
    page.goto(&app.url(&path)).await.unwrap();
    page.find(Locator::Css("main form button"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(page, "You're confirmed").await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events WHERE action = 'confirmed'")
            .await,
        1
    );

    app.drain_outbox().await;
    let mail = app.last_mail_to("browser@example.com").text();
    page.goto(&app.url(&link_path(&mail, &app.base_url, "account/password")))
        .await
        .unwrap();
    let password = "a long and unusual passphrase";
    type_into(page, "password", password).await;
    click(page, "main form button").await;
    wait_for_heading(page, "Sign in").await;
    type_into(page, "email", "browser@example.com").await;
    type_into(page, "password", password).await;
    click(page, "main form button").await;
    wait_for_heading(page, "Your account").await;

    page.goto(&app.url("/articles/night-ferry")).await.unwrap();
    assert!(
        page.source().await.unwrap().contains("OSPREY-3"),
        "signed in: the full story"
    );
    page.goto(&app.url("/account")).await.unwrap();
    click(page, "form[action='/logout'] button").await;
    wait_for_heading(page, "Broadsheet").await;
    page.goto(&app.url("/articles/night-ferry")).await.unwrap();
    assert!(
        !page.source().await.unwrap().contains("OSPREY-3"),
        "signed out: the teaser only"
    );

    // The unsubscribe page's button withdraws the digest consent.
    let unsubscribe = app
        .reader_link("browser@example.com", LinkPurpose::Unsubscribe)
        .await;
    page.goto(&app.url(&unsubscribe)).await.unwrap();
    click(page, "main form button").await;
    wait_for_heading(page, "You're unsubscribed").await;
    let withdrawn =
        "SELECT COUNT(*) FROM consent_events WHERE purpose = 'newsletter' AND action = 'withdrawn'";
    assert_eq!(app.scalar(withdrawn).await, 1);

    browser.stop().await;
    app.stop().await;
}

async fn an_editor_publishes_previews_sends_and_watches_a_digest_finish_in_a_real_browser(
    backend: Backend,
) {
    let Some(browser) = Browser::start().await else {
        return;
    };
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("reader@example.com", true).await;
    let password = "the night editor's passphrase";
    app.editor(
        "desk@example.com",
        broadsheet::editors::Role::Editor,
        password,
    )
    .await;
    let page = &browser.client;
    // Anonymous: the console sends the browser to sign in.
    page.goto(&app.url("/admin")).await.unwrap();
    wait_for_heading(page, "Editor sign-in").await;
    type_into(page, "email", "desk@example.com").await;
    type_into(page, "password", password).await;
    click(page, "main form button").await;
    wait_for_heading(page, "Dashboard").await;

    page.goto(&app.url("/admin/articles/new")).await.unwrap();
    type_into(page, "title", "Lighthouse keeper retires").await;
    type_into(
        page,
        "body_markdown",
        "After *forty* years, KEEPER-7 hands over.",
    )
    .await;
    click(page, "button[value=preview]").await;
    page.wait()
        .for_element(Locator::Css("section.preview em"))
        .await
        .unwrap();
    click(page, "button[value=publish]").await;
    wait_for_heading(page, "Edit article").await;
    assert!(page.source().await.unwrap().contains("published"));

    page.goto(&app.url("/admin/digests")).await.unwrap();
    click(page, "form[action='/admin/digests/preview'] button").await;
    wait_for_heading(page, "Preview of the next daily digest").await;
    assert!(
        page.source()
            .await
            .unwrap()
            .contains("Lighthouse keeper retires")
    );

    page.goto(&app.url("/admin/digests")).await.unwrap();
    click(page, "form[action='/admin/digests/send'] button").await;
    // "Send now" asks first (static/console.js).
    page.accept_alert().await.unwrap();
    page.wait()
        .for_element(Locator::XPath(
            "//h1[starts-with(text(), 'Daily digest of')]",
        ))
        .await
        .unwrap();
    // The page follows the campaign by itself while the worker sends.
    app.drain_outbox().await;
    let status = page
        .find(Locator::Css("[data-field=status]"))
        .await
        .unwrap();
    for _ in 0..100 {
        if status.text().await.unwrap() == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(status.text().await.unwrap(), "done", "live progress");
    let sent = page.find(Locator::Css("[data-field=sent]")).await.unwrap();
    assert_eq!(sent.text().await.unwrap(), "1");
    assert!(
        app.last_mail_to("reader@example.com")
            .text()
            .contains("Lighthouse keeper retires")
    );

    browser.stop().await;
    app.stop().await;
}

pub(crate) async fn type_into(page: &Client, id: &str, text: &str) {
    page.find(Locator::Id(id))
        .await
        .unwrap()
        .send_keys(text)
        .await
        .unwrap();
}

async fn click(page: &Client, css: &str) {
    page.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

/// The names of the cookies the browser holds for the page, sorted.
async fn cookie_names(page: &Client) -> Vec<String> {
    let mut names: Vec<String> = page
        .get_all_cookies()
        .await
        .unwrap()
        .iter()
        .map(|c| c.name().to_owned())
        .collect();
    names.sort();
    names
}

/// Waits up to 10 s for the element matching `css` to leave the page.
async fn wait_until_gone(page: &Client, css: &str) {
    for _ in 0..100 {
        if page.find_all(Locator::Css(css)).await.unwrap().is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{css} is still on the page after 10 s");
}

/// Waits (up to fantoccini's default 30 s) for the page whose `<h1>` is `text`.
pub(crate) async fn wait_for_heading(page: &Client, text: &str) {
    let xpath = format!("//h1[text()=\"{text}\"]");
    page.wait()
        .for_element(Locator::XPath(&xpath))
        .await
        .unwrap();
}

/// chromedriver and a headless Chromium session, each test its own.
pub(crate) struct Browser {
    pub(crate) client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Browser {
    /// `None` (with a note) where chromedriver is not installed, unless
    /// `BROADSHEET_TEST_REQUIRE_BROWSER` is set, as CI does.
    pub(crate) async fn start() -> Option<Self> {
        if !support::installed(
            CHROMEDRIVER,
            "BROADSHEET_TEST_REQUIRE_BROWSER",
            "apt-get install chromium chromium-driver",
            "browser",
        ) {
            return None;
        }
        let port = free_port().await;
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut capabilities = serde_json::Map::new();
        capabilities.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", profile.path().display()),
                ],
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        for _ in 0..100 {
            let connected = ClientBuilder::new(HttpConnector::new())
                .capabilities(capabilities.clone())
                .connect(&url)
                .await;
            if let Ok(client) = connected {
                return Some(Self {
                    client,
                    driver,
                    _profile: profile,
                });
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        driver.kill().ok();
        driver.wait().ok();
        panic!("chromedriver did not start a session in 10 s");
    }

    pub(crate) async fn stop(mut self) {
        self.client.close().await.ok();
        self.driver.kill().ok();
        self.driver.wait().ok();
    }
}
