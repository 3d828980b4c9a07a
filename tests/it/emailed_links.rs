//! The links a reader actually received, taken from the delivered message
//! (its `List-Unsubscribe` header and both bodies), act for that reader and
//! no other. No test here builds a link with the app's signer.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::digest::Started;
use support::{Backend, ReceivedMail, TestApp, hidden_field, link_path};

storage_tests!(
    the_list_unsubscribe_header_unsubscribes_its_reader_and_no_other,
    the_body_links_of_a_digest_lead_to_its_readers_own_pages,
    account_email_links_act_for_their_reader_only,
);

const A: &str = "ann@example.com";
const B: &str = "bob@example.com";

/// Two digest readers, an article, and a digest delivered to both.
async fn two_readers_with_a_digest(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    let published = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Tide tables\"\npublished_at = \"{published}\"\n+++\nBody.\n"
    ))
    .await;
    for reader in [A, B] {
        app.digest_reader(reader, "daily", &[], false).await;
    }
    app.drain_outbox().await;
    let started = app.send_digest_now().await;
    assert!(
        matches!(started, Started::Campaign { recipients: 2, .. }),
        "{started:?}"
    );
    assert_eq!(app.drain_outbox().await.sent, 2);
    app
}

/// The digest `address` received: the newest message to them with `List-Id`.
fn digest_to(app: &TestApp, address: &str) -> ReceivedMail {
    let wanted = format!("<{address}>");
    app.received()
        .into_iter()
        .rev()
        .find(|mail| mail.to.contains(&wanted) && mail.parsed().header_raw("List-Id").is_some())
        .unwrap_or_else(|| panic!("no digest to {address}"))
}

/// The one HTTP(S) URI of a message's `List-Unsubscribe` header, parsed as
/// RFC 2369 lists them: `<uri>` entries separated by commas.
fn list_unsubscribe_url(mail: &ReceivedMail) -> String {
    let parsed = mail.parsed();
    let header = parsed.header_raw("List-Unsubscribe").expect("E-01").trim();
    let uris: Vec<&str> = header
        .split(',')
        .map(|entry| {
            let entry = entry.trim();
            entry
                .strip_prefix('<')
                .and_then(|e| e.strip_suffix('>'))
                .unwrap_or_else(|| panic!("not an RFC 2369 entry: {entry}"))
        })
        .filter(|uri| uri.starts_with("http://") || uri.starts_with("https://"))
        .collect();
    assert_eq!(uris.len(), 1, "E-01: exactly one web URI in {header}");
    uris[0].to_owned()
}

/// Every link in the text part and every `href` in the HTML part.
fn body_links(mail: &ReceivedMail) -> (Vec<String>, Vec<String>) {
    let parsed = mail.parsed();
    let url = regex_lite::Regex::new(r"https?://[^\s<>]+").unwrap();
    let text = url
        .find_iter(&parsed.body_text(0).unwrap())
        .map(|m| m.as_str().to_owned())
        .collect();
    let href = regex_lite::Regex::new(r#"href="([^"]*)""#).unwrap();
    let html = parsed.body_html(0).unwrap();
    let html = href.captures_iter(&html).map(|c| unescape(&c[1])).collect();
    (text, html)
}

/// Undoes the HTML escaping minijinja applies to attribute values.
fn unescape(value: &str) -> String {
    value
        .replace("&#x2f;", "/")
        .replace("&#x27;", "'")
        .replace("&quot;", "\"")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The one link among `links` to `{base_url}/{prefix}/`.
fn only_link(links: &[String], base_url: &str, prefix: &str) -> String {
    let start = format!("{base_url}/{prefix}/");
    let found: Vec<&String> = links.iter().filter(|l| l.starts_with(&start)).collect();
    assert_eq!(found.len(), 1, "one /{prefix}/ link in {links:?}");
    found[0].clone()
}

fn path_of(app: &TestApp, url: &str) -> String {
    url.strip_prefix(&app.base_url)
        .unwrap_or_else(|| panic!("{url} is not on {}", app.base_url))
        .to_owned()
}

/// The action of the reader's latest digest consent event.
async fn digest_consent(app: &TestApp, address: &str) -> String {
    app.text(&format!(
        "SELECT e.action FROM consent_events e JOIN subscribers s ON s.id = e.subject
         WHERE s.email_canonical = '{address}' AND e.purpose = 'newsletter'
         ORDER BY e.created_at DESC, e.id DESC LIMIT 1"
    ))
    .await
    .unwrap()
}

async fn paused(app: &TestApp, address: &str) -> i64 {
    app.scalar(&format!(
        "SELECT COALESCE(MAX(p.paused), 0)
         FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id
         WHERE s.email_canonical = '{address}'"
    ))
    .await
}

async fn the_list_unsubscribe_header_unsubscribes_its_reader_and_no_other(backend: Backend) {
    let app = two_readers_with_a_digest(backend).await;
    let (a, b) = (digest_to(&app, A), digest_to(&app, B));
    let a_url = list_unsubscribe_url(&a);
    assert_ne!(a_url, list_unsubscribe_url(&b), "each reader has their own");
    assert_eq!(
        digest_consent(&app, A).await,
        "confirmed",
        "nothing happened yet"
    );

    // RFC 8058: what a mailbox provider sends, with no cookie and no CSRF token.
    let response = reqwest::Client::new()
        .post(&a_url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("List-Unsubscribe=One-Click")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "E-03");
    assert_eq!(digest_consent(&app, A).await, "withdrawn");
    assert_eq!(
        digest_consent(&app, B).await,
        "confirmed",
        "another reader's link"
    );

    // The header's link is the one the bodies show (E-07).
    let (text, html) = body_links(&a);
    assert_eq!(only_link(&text, &app.base_url, "unsubscribe"), a_url);
    assert_eq!(only_link(&html, &app.base_url, "unsubscribe"), a_url);
    app.stop().await;
}

async fn the_body_links_of_a_digest_lead_to_its_readers_own_pages(backend: Backend) {
    let app = two_readers_with_a_digest(backend).await;
    let b = digest_to(&app, B);
    let (text, html) = body_links(&b);
    let preferences = only_link(&text, &app.base_url, "preferences");
    assert_eq!(only_link(&html, &app.base_url, "preferences"), preferences);
    let unsubscribe = only_link(&text, &app.base_url, "unsubscribe");
    assert_eq!(only_link(&html, &app.base_url, "unsubscribe"), unsubscribe);

    // The preference centre it opens is Bob's: pausing there pauses him alone.
    let browser = app.new_browser();
    let preferences = path_of(&app, &preferences);
    let page = browser.get(&preferences).await.text().await.unwrap();
    let version = hidden_field(&page, "consent_version");
    let fields = [
        ("digest", "on"),
        ("frequency", "daily"),
        ("paused", "on"),
        ("consent_version", version.as_str()),
    ];
    let saved = browser.submit(&preferences, &preferences, &fields).await;
    assert_eq!(saved.status(), 200);
    assert_eq!((paused(&app, B).await, paused(&app, A).await), (1, 0));

    // The unsubscribe page only shows a button (E-05); its form unsubscribes Bob alone.
    let unsubscribe = path_of(&app, &unsubscribe);
    let page = browser.get(&unsubscribe).await.text().await.unwrap();
    assert_eq!(digest_consent(&app, B).await, "confirmed", "E-05: a GET");
    let fields = [
        ("List-Unsubscribe", hidden_field(&page, "List-Unsubscribe")),
        ("from", hidden_field(&page, "from")),
    ];
    let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    assert_eq!(browser.post_form(&unsubscribe, &fields).await.status(), 200);
    assert_eq!(digest_consent(&app, B).await, "withdrawn");
    assert_eq!(digest_consent(&app, A).await, "confirmed");
    app.stop().await;
}

/// Confirmation, credentials and reset emails: each link, taken from the
/// message, acts on the reader it was sent to.
async fn account_email_links_act_for_their_reader_only(backend: Backend) {
    const PASSWORD: &str = "a long unusual passphrase";
    let app = TestApp::spawn(backend).await;
    for reader in [A, B] {
        assert_eq!(app.sign_up(reader, true).await.status(), 200);
    }
    app.drain_outbox().await;
    let status = |address: &str| {
        format!("SELECT status FROM subscribers WHERE email_canonical = '{address}'")
    };
    let confirm = link_path(&app.last_mail_to(B).text(), &app.base_url, "confirm");
    assert_eq!(app.new_browser().confirm(&confirm).await.status(), 200);
    assert_eq!(app.text(&status(B)).await.as_deref(), Some("confirmed"));
    assert_eq!(app.text(&status(A)).await.as_deref(), Some("pending"));

    app.drain_outbox().await;
    let credentials = app.last_mail_to(B);
    assert!(
        credentials
            .parsed()
            .header_raw("List-Unsubscribe")
            .is_none(),
        "account mail is not list mail"
    );
    let set = link_path(&credentials.text(), &app.base_url, "account/password");
    let browser = app.new_browser();
    let saved = browser.submit(&set, &set, &[("password", PASSWORD)]).await;
    assert_eq!(saved.status(), 303);
    assert_eq!(app.new_browser().sign_in(B, PASSWORD).await.status(), 303);
    assert_eq!(app.new_browser().sign_in(A, PASSWORD).await.status(), 401);

    // Ann confirms too and sets her own password; Bob's reset link changes only his.
    let confirm = link_path(&app.last_mail_to(A).text(), &app.base_url, "confirm");
    assert_eq!(app.new_browser().confirm(&confirm).await.status(), 200);
    app.drain_outbox().await;
    let set = link_path(
        &app.last_mail_to(A).text(),
        &app.base_url,
        "account/password",
    );
    let ann = app.new_browser();
    let saved = ann.submit(&set, &set, &[("password", PASSWORD)]).await;
    assert_eq!(saved.status(), 303);
    app.drain_outbox().await;
    let requested = app
        .new_browser()
        .submit("/login/reset", "/login/reset", &[("email", B)])
        .await;
    assert_eq!(requested.status(), 200);
    app.drain_outbox().await;
    let reset = link_path(
        &app.last_mail_to(B).text(),
        &app.base_url,
        "account/password",
    );
    let renewed = "another long unusual passphrase";
    let browser = app.new_browser();
    let saved = browser
        .submit(&reset, &reset, &[("password", renewed)])
        .await;
    assert_eq!(saved.status(), 303);
    assert_eq!(app.new_browser().sign_in(B, renewed).await.status(), 303);
    assert_eq!(app.new_browser().sign_in(A, PASSWORD).await.status(), 303);
    assert_eq!(app.new_browser().sign_in(A, renewed).await.status(), 401);
    app.stop().await;
}
