//! A corpus of hostile values in every field of the public and console
//! forms and of the API's article and import bodies: each gets an answer
//! below 500, nothing with a control character is stored, and no email
//! carries a header a visitor wrote.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::editors::Role;
use support::{Backend, Browser, TestApp, hidden_field};

storage_tests!(hostile_values_in_every_field_get_4xx_and_nothing_unsafe_is_stored);

/// Values that have broken services like this one. Each is form-encoded as
/// given; `%FF%FE` is sent raw, so the field is not valid UTF-8.
fn corpus() -> Vec<String> {
    vec![
        "a".repeat(10_000),
        format!("{}@example.com", "a".repeat(300)),
        "reader@example.com\r\nBcc: victim@example.org".into(),
        "Reader\r\nSubject: injected".into(),
        "reader\n@example.com".into(),
        "nul\0byte@example.com".into(),
        "' OR '1'='1' --".into(),
        "'); DROP TABLE subscribers; --".into(),
        "{{ config }}{% for x in range(1000000) %}x{% endfor %}".into(),
        "<script>alert(1)</script>".into(),
        "\"><img src=x onerror=alert(1)>".into(),
        "\u{202e}evil\u{200b}@example.com".into(),
        "reader@exa mple.com".into(),
        "@".into(),
        String::new(),
    ]
}

/// The form posts of the public site and the console, with the fields a
/// browser sends (the CSRF token is added).
const FORMS: &[(&str, &[&str])] = &[
    (
        "/subscribe",
        &["email", "name", "consent_version", "newsletter", "website"],
    ),
    ("/login", &["email", "password"]),
    ("/login/reset", &["email"]),
    ("/login/link", &["email"]),
    ("/cookies", &["choice", "return_to", "category"]),
    ("/admin/login", &["email", "password"]),
];

fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

async fn post_raw(browser: &Browser, path: &str, body: String, content_type: &str) -> u16 {
    let oversized = body.len() > 1024 * 1024;
    // An oversized body goes on a connection of its own: the server closes
    // it after its 413, and a pooled one could then fail the next request.
    let client = if oversized {
        reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .build()
            .unwrap()
    } else {
        browser.client.clone()
    };
    let sent = client
        .post(browser.url(path))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => response.status().as_u16(),
        // The server answered 413 and closed the connection before the
        // client had written the whole of an oversized body.
        Err(error) if oversized && error.is_request() => 413,
        Err(error) => panic!("POST {path}: {error}"),
    }
}

async fn hostile_values_in_every_field_get_4xx_and_nothing_unsafe_is_stored(backend: Backend) {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.signup.per_ip_per_hour = 0;
        config.accounts.login_per_ip_per_minute = 0;
    })
    .await;
    let browser = app.new_browser();
    let form = browser.get("/subscribe").await.text().await.unwrap();
    let csrf = hidden_field(&form, "csrf");
    let version = hidden_field(&form, "consent_version");
    let plausible = |field: &str| match field {
        "email" => "reader@example.com".to_owned(),
        "consent_version" => version.clone(),
        "choice" => "save".to_owned(),
        "password" => "a long enough password".to_owned(),
        _ => String::new(),
    };

    let mut tried = 0;
    for (path, fields) in FORMS {
        for hostile_field in *fields {
            for value in corpus() {
                let mut body = format!("csrf={csrf}");
                for field in *fields {
                    let value = if field == hostile_field {
                        value.clone()
                    } else {
                        plausible(field)
                    };
                    body.push_str(&format!("&{field}={}", encode(&value)));
                }
                let status =
                    post_raw(&browser, path, body, "application/x-www-form-urlencoded").await;
                assert!(
                    status < 500,
                    "POST {path} with {hostile_field}={value:?}: {status}"
                );
                tried += 1;
            }
            // Not UTF-8, a field given twice, an unknown field: whatever each
            // form makes of them, never a server error.
            for extra in [
                format!("&{hostile_field}=%FF%FE"),
                format!("&{hostile_field}=a&{hostile_field}=b"),
                "&is_admin=1".to_owned(),
            ] {
                let body = format!("csrf={csrf}{extra}");
                let status =
                    post_raw(&browser, path, body, "application/x-www-form-urlencoded").await;
                assert!(status < 500, "POST {path} with {extra:?}: {status}");
                tried += 1;
            }
        }
        for (content_type, body) in [
            ("application/json", format!(r#"{{"csrf":"{csrf}"}}"#)),
            ("text/plain", "hello".to_owned()),
            (
                "application/x-www-form-urlencoded",
                "x".repeat(2 * 1024 * 1024),
            ),
        ] {
            let status = post_raw(&browser, path, body, content_type).await;
            assert!(
                (400..500).contains(&status),
                "POST {path} as {content_type}: {status}"
            );
            tried += 1;
        }
    }

    // The same bytes in paths and query strings.
    let editor = app.signed_in_editor("ed@example.com", Role::Admin).await;
    for path in [
        "/articles/a%00b",
        "/articles/%FF%FE",
        "/articles?page=%00",
        "/privacy/%00",
        "/confirm/%00",
        "/login/link/%00",
        "/account/password/%00",
        "/unsubscribe/%00",
        "/preferences/%00",
        "/static/%00",
        "/admin/readers?q=%00",
        "/admin/readers?q=%27%20OR%201%3D1",
        "/admin/readers/%00",
        "/admin/articles/%00",
        "/admin/campaigns/%00",
    ] {
        let status = editor.get(path).await.status();
        assert!(status.as_u16() < 500, "GET {path}: {status}");
        tried += 1;
    }

    let token = app.api_token("hostile", Role::Admin).await;
    let api = |method: reqwest::Method, path: &str| {
        app.client
            .request(method, app.url(path))
            .bearer_auth(&token)
    };
    for path in [
        "/api/v1/articles/%00",
        "/api/v1/subscribers/%00",
        "/api/v1/subscribers?q=%00",
        "/api/v1/subscribers/%00/export",
        "/api/v1/digests/%00",
        "/api/v1/articles?limit=99999999999999999999",
    ] {
        let status = api(reqwest::Method::GET, path)
            .send()
            .await
            .unwrap()
            .status();
        assert!(status.as_u16() < 500, "GET {path}: {status}");
        tried += 1;
    }
    for value in corpus() {
        for article in [
            serde_json::json!({ "title": value, "body_markdown": "Text.", "publish": true }),
            serde_json::json!({ "title": "Fine", "body_markdown": value, "publish": true }),
            serde_json::json!({ "title": "Fine", "body_markdown": "Text.", "slug": value, "publish": true }),
            serde_json::json!({ "title": "Fine", "body_markdown": "Text.", "categories": [value], "publish": true }),
        ] {
            let response = api(reqwest::Method::POST, "/api/v1/articles")
                .json(&article)
                .send()
                .await
                .unwrap();
            assert!(
                response.status().as_u16() < 500,
                "{article}: {}",
                response.status()
            );
            tried += 1;
        }
        let csv = format!(
            "email,name,topics,consented_at,source\n{},{},,2025-01-01T00:00:00Z,x\n",
            value.replace(',', ""),
            value.replace(',', "")
        );
        let response = api(reqwest::Method::POST, "/api/v1/subscribers/import")
            .header("content-type", "text/csv")
            .body(csv)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().as_u16() < 500,
            "import {value:?}: {}",
            response.status()
        );
        tried += 1;
    }
    assert!(tried >= 300, "{tried} requests");

    // Nothing stored carries a control character, and article pages show
    // no script a request put there.
    let rows: Vec<(String, Option<String>)> = sqlx::query_as("SELECT email, name FROM subscribers")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(!rows.is_empty(), "the plausible values were stored");
    for (email, name) in &rows {
        let text = format!("{email}{}", name.as_deref().unwrap_or(""));
        assert!(
            !text.chars().any(char::is_control),
            "stored {email:?} {name:?}"
        );
    }
    let titles: Vec<(String, String)> = sqlx::query_as("SELECT slug, title FROM articles")
        .fetch_all(app.store.pool())
        .await
        .unwrap();
    assert!(
        !titles.is_empty(),
        "some hostile titles were accepted, escaped"
    );
    for (slug, title) in &titles {
        assert!(!title.chars().any(char::is_control), "title {title:?}");
        let page = app
            .get(&format!("/articles/{slug}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(!page.contains("<script>alert"), "/articles/{slug}");
        assert!(!page.contains("<img src=x onerror"), "/articles/{slug}");
    }
    // Every email went out with only the headers we wrote.
    app.drain_outbox().await;
    let received = app.received();
    assert!(!received.is_empty(), "the signups' confirmations went out");
    for mail in received {
        let data = String::from_utf8_lossy(&mail.data);
        let head = data.split("\r\n\r\n").next().unwrap();
        for injected in ["\r\nBcc:", "\r\nSubject: injected"] {
            assert!(!head.contains(injected), "{head}");
        }
        assert_eq!(mail.to.len(), 1, "one recipient: {:?}", mail.to);
    }
    app.stop().await;
}
