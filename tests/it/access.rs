//! Every route of the site and console, refused without the right session
//! or role, and every state-changing form refused without its own CSRF
//! token. The table below is checked against the routes the router's
//! source declares, so a new route without a row fails the test. The JSON
//! API is checked route by route from its OpenAPI document (tests/api.rs).
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::collections::BTreeSet;

use broadsheet::{domain::LinkPurpose, editors::Role};
use support::{Backend, Browser, TestApp, hidden_field};

storage_tests!(
    every_route_refuses_callers_without_the_right_session_or_role,
    every_state_changing_form_needs_its_own_csrf_token,
    a_session_planted_before_sign_in_is_never_kept,
    over_https_every_cookie_is_secure_and_host_prefixed,
);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Guard {
    /// Anyone.
    Public,
    /// A secret in the path (emailed or signed link): a made-up one is refused.
    Link,
    /// A reader's session.
    Reader,
    /// An editor's console session, any role.
    Editor,
    /// An editor's console session with the admin role.
    Admin,
    /// An admin's API token (`/metrics`).
    AdminToken,
    /// A sending provider's signature or credentials (`webhooks.rs` tries
    /// each provider's); without them, nothing is there.
    Provider,
}

use Guard::*;

/// Method, route as declared, guard.
const ROUTES: &[(&str, &str, Guard)] = &[
    ("GET", "/", Public),
    ("GET", "/subscribe", Public),
    ("POST", "/subscribe", Public),
    ("GET", "/confirm/{token}", Link),
    ("POST", "/confirm/{token}", Link),
    ("GET", "/login", Public),
    ("POST", "/login", Public),
    ("GET", "/login/reset", Public),
    ("POST", "/login/reset", Public),
    ("GET", "/login/link", Public),
    ("POST", "/login/link", Public),
    ("GET", "/login/link/{token}", Link),
    ("POST", "/login/link/{token}", Link),
    ("POST", "/logout", Public),
    ("GET", "/account", Reader),
    ("GET", "/account/password/{token}", Link),
    ("POST", "/account/password/{token}", Link),
    ("GET", "/articles", Public),
    ("GET", "/articles/{slug}", Public),
    ("GET", "/cookies", Public),
    ("POST", "/cookies", Public),
    ("GET", "/unsubscribe/{token}", Link),
    ("POST", "/unsubscribe/{token}", Link),
    ("GET", "/preferences/{token}", Link),
    ("POST", "/preferences/{token}", Link),
    ("GET", "/account/preferences", Reader),
    ("POST", "/account/preferences", Reader),
    ("GET", "/account/export", Reader),
    ("GET", "/account/delete", Reader),
    ("POST", "/account/delete", Reader),
    ("GET", "/account/consents", Reader),
    ("GET", "/account/consents/{id}", Reader),
    ("GET", "/privacy", Public),
    ("GET", "/privacy/{version}", Public),
    ("GET", "/metrics", AdminToken),
    ("POST", "/webhooks/{provider}", Provider),
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("GET", "/static/{*path}", Public),
    ("GET", "/admin", Editor),
    ("GET", "/admin/login", Public),
    ("POST", "/admin/login", Public),
    ("POST", "/admin/logout", Editor),
    ("GET", "/admin/password/{token}", Link),
    ("POST", "/admin/password/{token}", Link),
    ("GET", "/admin/articles", Editor),
    ("POST", "/admin/articles", Editor),
    ("GET", "/admin/articles/new", Editor),
    ("GET", "/admin/articles/{id}", Editor),
    ("POST", "/admin/articles/{id}", Editor),
    ("POST", "/admin/articles/{id}/{action}", Editor),
    ("GET", "/admin/digests", Editor),
    ("POST", "/admin/digests/send", Editor),
    ("GET", "/admin/digests/preview", Editor),
    ("POST", "/admin/digests/test", Editor),
    ("GET", "/admin/campaigns/{id}", Editor),
    ("GET", "/admin/campaigns/{id}/progress", Editor),
    ("POST", "/admin/campaigns/{id}/{action}", Editor),
    ("GET", "/admin/readers", Editor),
    ("GET", "/admin/readers/{id}", Editor),
    ("GET", "/admin/readers/{id}/export", Admin),
    ("POST", "/admin/readers/{id}/erase", Admin),
    ("GET", "/admin/feeds", Editor),
    ("POST", "/admin/feeds", Editor),
    ("POST", "/admin/feeds/remove", Editor),
    ("POST", "/admin/feeds/poll", Editor),
    ("GET", "/admin/audit", Editor),
    ("GET", "/admin/editors", Admin),
    ("POST", "/admin/editors", Admin),
    ("GET", "/admin/tokens", Admin),
    ("POST", "/admin/tokens", Admin),
    ("POST", "/admin/tokens/revoke", Admin),
    ("GET", "/admin/suppressions", Admin),
    ("POST", "/admin/suppressions", Admin),
    ("POST", "/admin/suppressions/remove", Admin),
    ("GET", "/admin/webhooks", Admin),
    ("POST", "/admin/webhooks", Admin),
    ("GET", "/admin/webhooks/{id}", Admin),
    ("POST", "/admin/webhooks/{id}", Admin),
];

/// The routes the files of `src/web/` and `src/web/admin/` declare (each
/// group of pages declares its own), as (method, path):
/// `.route("/path", get(h).post(h))`.
fn declared_routes() -> BTreeSet<(String, String)> {
    let route = regex_lite::Regex::new(
        r#"\.route\(\s*"([^"]+)",\s*([a-z]+\([\w:]+\)(?:\s*\.[a-z]+\([\w:]+\))*)"#,
    )
    .unwrap();
    let method = regex_lite::Regex::new(r"([a-z]+)\(").unwrap();
    let mut routes = BTreeSet::new();
    for dir in ["src/web", "src/web/admin"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        let files = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path());
        let sources = files
            .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
            .map(|path| std::fs::read_to_string(path).unwrap());
        let source: String = sources.collect();
        for found in route.captures_iter(&source) {
            for verb in method.captures_iter(&found[2]) {
                routes.insert((verb[1].to_uppercase(), found[1].to_owned()));
            }
        }
    }
    routes
}

/// A concrete path for a declared route: made-up ids, tokens and slugs.
fn concrete(path: &str) -> String {
    path.replace("{token}", "0123456789abcdef0123456789abcdef")
        .replace("{id}", "0190f2a0-0000-7000-8000-000000000000")
        .replace("{action}", "publish")
        .replace("{slug}", "no-such-story")
        .replace("{version}", "1")
        .replace("{*path}", "style.css")
        .replace("{provider}", "mailgun")
}

async fn request(browser: &Browser, method: &str, path: &str, csrf: &str) -> reqwest::Response {
    send(browser, method, &concrete(path), csrf).await
}

async fn send(browser: &Browser, method: &str, path: &str, csrf: &str) -> reqwest::Response {
    match method {
        "GET" => browser.get(path).await,
        "POST" => browser.post_form(path, &form_fields(path, csrf)).await,
        other => panic!("no {other} routes outside the API"),
    }
}

/// Only the CSRF token (every form's other fields have defaults), and the
/// cookie banner's required choice.
fn form_fields<'a>(path: &str, csrf: &'a str) -> Vec<(&'static str, &'a str)> {
    let mut fields = vec![("csrf", csrf)];
    if path == "/cookies" {
        fields.push(("choice", "reject_all"));
    }
    fields
}

fn location(response: &reqwest::Response) -> &str {
    response
        .headers()
        .get("location")
        .map_or("", |value| value.to_str().unwrap())
}

/// A browser's own CSRF token, as its forms carry it.
async fn own_csrf(browser: &Browser) -> String {
    hidden_field(
        &browser.get("/subscribe").await.text().await.unwrap(),
        "csrf",
    )
}

async fn every_route_refuses_callers_without_the_right_session_or_role(backend: Backend) {
    let declared = declared_routes();
    let listed: BTreeSet<_> = ROUTES
        .iter()
        .map(|(method, path, _)| ((*method).to_owned(), (*path).to_owned()))
        .collect();
    assert_eq!(listed, declared, "the table lists every declared route");

    let app = TestApp::spawn(backend).await;
    let anonymous = app.new_browser();
    let anonymous_csrf = own_csrf(&anonymous).await;
    app.reader_with_password("reader@example.com", "a long reader password")
        .await;
    let reader = app.new_browser();
    assert_eq!(
        reader
            .sign_in("reader@example.com", "a long reader password")
            .await
            .status(),
        303
    );
    let reader_csrf = own_csrf(&reader).await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    let editor_csrf = own_csrf(&editor).await;

    for &(method, path, guard) in ROUTES {
        let route = format!("{method} {path}");
        match guard {
            Public => {
                let status = request(&anonymous, method, path, &anonymous_csrf)
                    .await
                    .status();
                assert!(!status.is_server_error(), "{route}: {status}");
            }
            Link => {
                // A made-up secret opens nothing and changes nothing.
                let status = request(&anonymous, method, path, &anonymous_csrf)
                    .await
                    .status();
                assert!(status.is_client_error(), "{route}: {status}");
            }
            Reader => {
                for (who, browser, csrf) in [
                    ("anonymous", &anonymous, &anonymous_csrf),
                    ("an editor", &editor, &editor_csrf),
                ] {
                    let response = request(browser, method, path, csrf).await;
                    assert_eq!(response.status(), 303, "{route} as {who}");
                    assert_eq!(location(&response), "/login", "{route} as {who}");
                }
            }
            Editor | Admin => {
                for (who, browser, csrf) in [
                    ("anonymous", &anonymous, &anonymous_csrf),
                    ("a reader", &reader, &reader_csrf),
                ] {
                    let response = request(browser, method, path, csrf).await;
                    assert_eq!(response.status(), 303, "{route} as {who}");
                    assert_eq!(location(&response), "/admin/login", "{route} as {who}");
                }
                if guard == Admin {
                    let status = request(&editor, method, path, &editor_csrf).await.status();
                    assert_eq!(status, 403, "{route} as an editor without the admin role");
                }
            }
            AdminToken => {
                for browser in [&anonymous, &reader, &editor] {
                    let status = request(browser, method, path, "").await.status();
                    assert_eq!(status, 401, "{route} without a token");
                }
            }
            Provider => {
                for browser in [&anonymous, &reader, &editor] {
                    let status = request(browser, method, path, "").await.status();
                    assert_eq!(status, 404, "{route} unconfigured, whoever asks");
                }
            }
        }
    }
    app.stop().await;
}

async fn every_state_changing_form_needs_its_own_csrf_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Signed in as a reader and as an admin, each with a CSRF cookie: a
    // forged page posts with the attacker's own valid token, or none.
    app.reader_with_password("reader@example.com", "a long reader password")
        .await;
    let reader = app.new_browser();
    reader
        .sign_in("reader@example.com", "a long reader password")
        .await;
    let admin = app.signed_in_editor("admin@example.com", Role::Admin).await;
    let attackers_token = own_csrf(&app.new_browser()).await;
    // The preferences link is checked before its form: a real one, so that
    // the refusal below is the CSRF check's. The other links' forms check
    // CSRF first.
    let preferences = app
        .reader_link("reader@example.com", LinkPurpose::Preferences)
        .await;

    for &(method, path, guard) in ROUTES {
        // One-click unsubscribe is a POST without a form (RFC 8058), and
        // providers prove their webhooks by signatures, not cookies.
        if method != "POST" || path == "/unsubscribe/{token}" || guard == Provider {
            continue;
        }
        let browser = match guard {
            Editor | Admin => &admin,
            _ => &reader,
        };
        let concrete_path = match path {
            "/preferences/{token}" => preferences.clone(),
            _ => concrete(path),
        };
        for token in [attackers_token.as_str(), ""] {
            let status = send(browser, method, &concrete_path, token).await.status();
            assert_eq!(status, 403, "POST {path} with a token of {:?}", token.len());
        }
    }
    // Still signed in: nothing above signed anyone out.
    assert_eq!(reader.get("/account").await.status(), 200);
    assert_eq!(admin.get("/admin").await.status(), 200);
    app.stop().await;
}

/// The value of the cookie `name` that a response sets, if it sets one.
fn set_cookie<'r>(response: &'r reqwest::Response, name: &str) -> Option<&'r str> {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|value| value.to_str().unwrap())
        .find(|cookie| cookie.starts_with(&format!("{name}=")))
}

fn cookie_value<'c>(set_cookie: &'c str, name: &str) -> &'c str {
    set_cookie[name.len() + 1..].split(';').next().unwrap()
}

async fn a_session_planted_before_sign_in_is_never_kept(backend: Backend) {
    const PASSWORD: &str = "a long reader password";
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("attacker@example.com", PASSWORD)
        .await;
    app.reader_with_password("victim@example.com", PASSWORD)
        .await;
    let attacker = app.new_browser();
    let signed_in = attacker.sign_in("attacker@example.com", PASSWORD).await;
    let planted =
        cookie_value(set_cookie(&signed_in, "bs_session").unwrap(), "bs_session").to_owned();

    // The victim's browser carries the attacker's session when they sign in.
    let victim = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let login = victim
        .get(app.url("/login"))
        .header("cookie", format!("bs_session={planted}"))
        .send()
        .await
        .unwrap();
    let csrf_cookie = cookie_value(set_cookie(&login, "bs_csrf").unwrap(), "bs_csrf").to_owned();
    let csrf = hidden_field(&login.text().await.unwrap(), "csrf");
    let signed_in = victim
        .post(app.url("/login"))
        .header(
            "cookie",
            format!("bs_csrf={csrf_cookie}; bs_session={planted}"),
        )
        .form(&[
            ("email", "victim@example.com"),
            ("password", PASSWORD),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let fresh = cookie_value(
        set_cookie(&signed_in, "bs_session").expect("a new session cookie"),
        "bs_session",
    )
    .to_owned();
    assert_ne!(fresh, planted, "sign-in issues a session of its own");

    let account = |session: String| {
        victim
            .get(app.url("/account"))
            .header("cookie", format!("bs_session={session}"))
            .send()
    };
    // The session the browser had ends with the new one (A-08): whoever
    // planted it is signed out, and it never becomes the victim's.
    let theirs = account(planted).await.unwrap();
    assert_eq!(theirs.status(), 303);
    assert_eq!(location(&theirs), "/login");
    let mine = account(fresh).await.unwrap().text().await.unwrap();
    assert!(mine.contains("victim@example.com"));
    app.stop().await;
}

async fn over_https_every_cookie_is_secure_and_host_prefixed(backend: Backend) {
    // Served over plain HTTP here, but configured as https, as behind a
    // TLS-terminating proxy: a client that honours `Secure` would not send
    // the cookies back, so this one sends them by hand.
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.server.base_url = "https://news.example".into();
    })
    .await;
    app.editor("ed@example.com", Role::Editor, "correct horse battery")
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let csrf_cookie = set_cookie(&page, "__Host-bs_csrf")
        .expect("a host-bound CSRF cookie")
        .to_owned();
    let csrf = hidden_field(&page.text().await.unwrap(), "csrf");
    let signed_in = client
        .post(app.url("/admin/login"))
        .header(
            "cookie",
            format!(
                "__Host-bs_csrf={}",
                cookie_value(&csrf_cookie, "__Host-bs_csrf")
            ),
        )
        .form(&[
            ("email", "ed@example.com"),
            ("password", "correct horse battery"),
            ("csrf", &csrf),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_in.status(), 303);
    let session = set_cookie(&signed_in, "__Host-bs_editor").expect("a host-bound session cookie");
    for (cookie, same_site) in [
        (csrf_cookie.as_str(), "SameSite=Lax"),
        (session, "SameSite=Strict"),
    ] {
        for attribute in ["Secure", "HttpOnly", "Path=/", same_site] {
            assert!(cookie.contains(attribute), "{attribute} in {cookie}");
        }
        assert!(!cookie.contains("Domain="), "{cookie}");
    }
    app.stop().await;
}
