//! The JSON API with bearer tokens, against the real router: every
//! documented route refuses anonymous callers, admin-only routes refuse
//! editors, a token can do the whole story, and POSTs are idempotent.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::{audit::Actor, editors::Role, editors::tokens};
use reqwest::Method;
use serde_json::{Value, json};
use support::{Backend, TestApp};

storage_tests!(
    every_documented_route_refuses_callers_without_a_live_token,
    a_token_writes_publishes_and_sends_a_digest_and_reads_subscribers,
    a_retried_post_with_the_same_key_publishes_and_sends_once,
    bad_requests_get_json_errors_naming_the_field,
    subscribers_are_imported_from_csv_over_the_api,
    a_digest_of_chosen_articles_holds_exactly_them,
    each_token_has_its_own_request_limit,
    the_reference_page_shows_every_documented_operation_and_schema,
);

/// One API call; the answer's status and JSON body (`Null` when empty).
pub(crate) async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = app.client.request(method, app.url(path)).bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn document(app: &TestApp) -> Value {
    app.get("/api/openapi.json").await.json().await.unwrap()
}

/// `/api/docs`, drawn from the document itself: no operation or schema of
/// it missing, and nothing loaded from elsewhere.
async fn the_reference_page_shows_every_documented_operation_and_schema(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    let page = app.get("/api/docs").await;
    assert_eq!(page.status(), 200);
    // minijinja escapes "/" in text.
    let html = page.text().await.unwrap().replace("&#x2f;", "/");
    let mut operations = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            let shown = format!("<code>{} {path}</code>", method.to_uppercase());
            assert!(html.contains(&shown), "{shown} is not on the page");
            operations += 1;
        }
    }
    assert!(operations > 25, "only {operations} operations documented");
    let published_at = &doc["components"]["schemas"]["EditorArticle"]["properties"]["published_at"];
    assert_eq!(published_at["format"], "date-time", "{published_at}");
    assert!(html.contains("<a href=\"#schema-EditorArticle\"><code>EditorArticle</code></a>"));
    assert!(
        html.contains("<code>string</code> as <code>text/csv</code>"),
        "the CSV import's body"
    );
    for schema in doc["components"]["schemas"].as_object().unwrap().keys() {
        assert!(
            html.contains(&format!("id=\"schema-{schema}\"")),
            "{schema}"
        );
    }
    assert!(
        !html.contains("<script src=\"http"),
        "a script from elsewhere"
    );
    assert!(
        html.contains(&format!("Broadsheet {}", env!("CARGO_PKG_VERSION"))),
        "the console's footer gives the version"
    );
    app.stop().await;
}

async fn every_documented_route_refuses_callers_without_a_live_token(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let doc = document(&app).await;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1"),
        "{}",
        doc["openapi"]
    );
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    let paths = doc["paths"].as_object().unwrap();
    for expected in [
        "/api/v1/articles",
        "/api/v1/articles/{id}",
        "/api/v1/articles/{id}/publish",
        "/api/v1/articles/{id}/unpublish",
        "/api/v1/digests",
        "/api/v1/digests/preview",
        "/api/v1/digests/{id}",
        "/api/v1/digests/{id}/pause",
        "/api/v1/digests/{id}/resume",
        "/api/v1/digests/{id}/cancel",
        "/api/v1/subscribers",
        "/api/v1/subscribers/{id}",
        "/api/v1/subscribers/{id}/consents",
        "/api/v1/subscribers/{id}/export",
        "/api/v1/stats",
        "/api/v1/suppressions",
        "/api/v1/suppressions/{address}",
    ] {
        assert!(paths.contains_key(expected), "{expected} is documented");
    }
    let revoked = app.api_token("old", Role::Admin).await;
    tokens::revoke(&app.store, &app.clock, "old", &Actor::cli())
        .await
        .unwrap();
    let mut operations = 0;
    for (path, item) in paths {
        let path = path.replace("{id}", "0190a0a0-0000-7000-8000-000000000000");
        for method in item.as_object().unwrap().keys() {
            let method = Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            for bearer in ["", "bs_nonsense", revoked.as_str()] {
                let (status, body) = call(&app, bearer, method.clone(), &path, None).await;
                assert_eq!(status, 401, "{method} {path} with {bearer:?}");
                assert_eq!(body["error"]["code"], "unauthorized");
            }
            operations += 1;
        }
    }
    assert!(operations >= 19, "{operations} operations");
    // Admin-only routes refuse an editor's token with 403.
    app.confirmed_reader("reader@example.com", true).await;
    let id = app.subscriber_id("reader@example.com").await;
    let editor = app.api_token("writer", Role::Editor).await;
    let (status, body) = call(
        &app,
        &editor,
        Method::GET,
        &format!("/api/v1/subscribers/{id}/export"),
        None,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (403, Some("forbidden"))
    );
    let (status, _) = call(
        &app,
        &editor,
        Method::DELETE,
        &format!("/api/v1/subscribers/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    app.stop().await;
}

async fn a_token_writes_publishes_and_sends_a_digest_and_reads_subscribers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("one@example.com", true).await;
    app.confirmed_reader("two@example.com", true).await;
    app.drain_outbox().await;
    let bearer = app.api_token("newsroom", Role::Editor).await;
    let draft = json!({ "title": "Harbour reopens", "body_markdown": "The **harbour**.", "categories": ["city"], "publish": false });
    let (status, article) =
        call(&app, &bearer, Method::POST, "/api/v1/articles", Some(draft)).await;
    assert_eq!(status, 201, "{article}");
    assert_eq!(article["draft"], true);
    let id = article["id"].as_str().unwrap().to_owned();
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 404);
    let (status, published) = call(
        &app,
        &bearer,
        Method::POST,
        &format!("/api/v1/articles/{id}/publish"),
        None,
    )
    .await;
    assert_eq!((status, published["draft"].as_bool()), (200, Some(false)));
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 200);
    // Every time the API gives is RFC 3339, as it takes them.
    let dated = chrono::DateTime::parse_from_rfc3339(published["published_at"].as_str().unwrap())
        .unwrap()
        .timestamp_millis();
    let now = app.clock.now_ms();
    assert!(dated <= now && dated > now - 60_000, "dated when published");
    assert_eq!(published["categories"], json!(["city"]), "a list, as sent");
    // Taken back and published again, it keeps its date: no second digest.
    app.clock.advance(std::time::Duration::from_secs(60));
    for action in ["unpublish", "publish"] {
        let path = format!("/api/v1/articles/{id}/{action}");
        assert_eq!(call(&app, &bearer, Method::POST, &path, None).await.0, 200);
    }
    let (_, again) = call(
        &app,
        &bearer,
        Method::GET,
        &format!("/api/v1/articles/{id}"),
        None,
    )
    .await;
    assert_eq!(again["published_at"], published["published_at"]);
    let edit = json!({ "title": "Harbour reopens at last", "slug": "harbour-reopens", "body_markdown": "Edited." });
    let (status, edited) = call(
        &app,
        &bearer,
        Method::PUT,
        &format!("/api/v1/articles/{id}"),
        Some(edit),
    )
    .await;
    assert_eq!(
        (status, edited["title"].as_str()),
        (200, Some("Harbour reopens at last"))
    );
    let (_, list) = call(
        &app,
        &bearer,
        Method::GET,
        "/api/v1/articles?q=harbour",
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, preview) = call(
        &app,
        &bearer,
        Method::GET,
        "/api/v1/digests/preview?schedule=daily&reader=one%40example.com",
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        preview["text"]
            .as_str()
            .unwrap()
            .contains("Harbour reopens at last")
    );
    let (status, campaign) = call(
        &app,
        &bearer,
        Method::POST,
        "/api/v1/digests",
        Some(json!({ "schedule": "daily" })),
    )
    .await;
    assert_eq!(status, 201, "{campaign}");
    assert_eq!(campaign["recipients"], 2);
    let campaign_id = campaign["id"].as_str().unwrap().to_owned();
    app.drain_outbox().await;
    let (_, done) = call(
        &app,
        &bearer,
        Method::GET,
        &format!("/api/v1/digests/{campaign_id}"),
        None,
    )
    .await;
    assert_eq!(
        (done["status"].as_str(), done["sent"].as_i64()),
        (Some("done"), Some(2))
    );
    let (status, _) = call(
        &app,
        &bearer,
        Method::POST,
        &format!("/api/v1/digests/{campaign_id}/pause"),
        None,
    )
    .await;
    assert_eq!(status, 409, "a finished campaign cannot pause");
    // Subscribers: a page of one, then the cursor.
    let (_, first) = call(
        &app,
        &bearer,
        Method::GET,
        "/api/v1/subscribers?limit=1",
        None,
    )
    .await;
    let first = first.as_array().unwrap().clone();
    assert_eq!(first.len(), 1);
    let after = first[0]["id"].as_str().unwrap();
    let (_, second) = call(
        &app,
        &bearer,
        Method::GET,
        &format!("/api/v1/subscribers?limit=1&after={after}"),
        None,
    )
    .await;
    assert_eq!(second.as_array().unwrap().len(), 1);
    assert_ne!(second[0]["id"], first[0]["id"]);
    let reader = second[0]["id"].as_str().unwrap().to_owned();
    let (status, consents) = call(
        &app,
        &bearer,
        Method::GET,
        &format!("/api/v1/subscribers/{reader}/consents"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(
        consents
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "confirmed")
    );
    // Network evidence is for an admin's audited export only.
    let events = consents.as_array().unwrap();
    assert!(
        events
            .iter()
            .all(|e| e.get("ip").is_none() && e.get("wording").is_some())
    );
    let (_, detail) = call(
        &app,
        &bearer,
        Method::GET,
        &format!("/api/v1/subscribers/{reader}"),
        None,
    )
    .await;
    assert_eq!(detail["deliveries"][0]["status"], "sent");
    let sent_at = detail["deliveries"][0]["sent_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(sent_at).is_ok(),
        "{sent_at}"
    );
    for time in ["created_at", "finished_at"] {
        let given = done[time].as_str().unwrap();
        assert!(
            chrono::DateTime::parse_from_rfc3339(given).is_ok(),
            "{time}: {given}"
        );
    }
    assert!(done["subject"].is_null(), "the schedule sets no subject");
    let (_, stats) = call(&app, &bearer, Method::GET, "/api/v1/stats?days=7", None).await;
    assert_eq!(stats["readers"]["confirmed"], 2);
    assert_eq!(stats["days"].as_array().unwrap().len(), 7);
    // An admin token exports and erases; then the subscriber is gone.
    let admin = app.api_token("dpo", Role::Admin).await;
    let (status, export) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/subscribers/{reader}/export"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert!(export["profile"]["email"].is_string());
    let (status, _) = call(
        &app,
        &admin,
        Method::DELETE,
        &format!("/api/v1/subscribers/{reader}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &app,
        &admin,
        Method::GET,
        &format!("/api/v1/subscribers/{reader}"),
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &bearer,
        Method::DELETE,
        &format!("/api/v1/articles/{id}"),
        None,
    )
    .await;
    assert_eq!(status, 204);
    let actors = app
        .scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'token:newsroom'")
        .await;
    assert_eq!(
        actors, 7,
        "create, publish, unpublish, publish, update, send, delete"
    );
    app.stop().await;
}

async fn a_retried_post_with_the_same_key_publishes_and_sends_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("one@example.com", true).await;
    let bearer = app.api_token("retrier", Role::Editor).await;
    let post = |path: &'static str, key: &'static str, body: Value| {
        app.client
            .post(app.url(path))
            .bearer_auth(&bearer)
            .header("idempotency-key", key)
            .json(&body)
            .send()
    };
    let article = json!({ "title": "Once only", "body_markdown": "Text." });
    let first = post("/api/v1/articles", "k-1", article.clone())
        .await
        .unwrap();
    assert_eq!(first.status(), 201);
    let first: Value = first.json().await.unwrap();
    let again = post("/api/v1/articles", "k-1", article.clone())
        .await
        .unwrap();
    assert_eq!(again.status(), 201);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(
        again.json::<Value>().await.unwrap(),
        first,
        "the first answer again"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 1);
    let other = post(
        "/api/v1/articles",
        "k-1",
        json!({ "title": "Something else" }),
    )
    .await
    .unwrap();
    assert_eq!(other.status(), 422);
    // A failed request frees its key: the corrected retry runs.
    let failed = post("/api/v1/digests", "k-2", json!({ "schedule": "nope" }))
        .await
        .unwrap();
    assert_eq!(failed.status(), 422);
    let sent = post("/api/v1/digests", "k-3", json!({ "schedule": "daily" }))
        .await
        .unwrap();
    assert_eq!(sent.status(), 201);
    let resent = post("/api/v1/digests", "k-3", json!({ "schedule": "daily" }))
        .await
        .unwrap();
    assert_eq!(resent.status(), 201, "replayed, not a 409 for nothing new");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    app.drain_outbox().await;
    let digests = app
        .received()
        .iter()
        .filter(|m| m.text().contains("Once only"))
        .count();
    assert_eq!(digests, 1);
    // A revoked token gets no kept answer back.
    tokens::revoke(&app.store, &app.clock, "retrier", &Actor::cli())
        .await
        .unwrap();
    let replay = post("/api/v1/articles", "k-1", article).await.unwrap();
    assert_eq!(replay.status(), 401);
    app.stop().await;
}

async fn bad_requests_get_json_errors_naming_the_field(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bearer = app.api_token("sloppy", Role::Editor).await;
    let (status, _) = call(
        &app,
        &bearer,
        Method::POST,
        "/api/v1/digests",
        Some(json!({ "schedule": "daily" })),
    )
    .await;
    assert_eq!(status, 409, "nothing published since: nothing to send");
    let raw = app
        .client
        .post(app.url("/api/v1/articles"))
        .bearer_auth(&bearer)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: Value = raw.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_json");
    let cases = [
        (
            json!({ "title": "x", "colour": "red" }),
            422,
            "invalid_field",
            None,
        ),
        (
            json!({ "body_markdown": "no title" }),
            422,
            "invalid_field",
            None,
        ),
        (
            json!({ "title": "   " }),
            422,
            "invalid_field",
            Some("title"),
        ),
        (
            json!({ "title": "x", "slug": "Not A Slug" }),
            422,
            "invalid_field",
            Some("slug"),
        ),
    ];
    for (body, status, code, field) in cases {
        let (got, answer) = call(
            &app,
            &bearer,
            Method::POST,
            "/api/v1/articles",
            Some(body.clone()),
        )
        .await;
        assert_eq!(got, status, "{body} → {answer}");
        assert_eq!(answer["error"]["code"], code, "{body}");
        if let Some(field) = field {
            assert_eq!(answer["error"]["field"], field, "{body}");
        }
    }
    let (status, _) = call(
        &app,
        &bearer,
        Method::POST,
        "/api/v1/articles",
        Some(json!({ "title": "Twice" })),
    )
    .await;
    assert_eq!(status, 201);
    let (status, taken) = call(
        &app,
        &bearer,
        Method::POST,
        "/api/v1/articles",
        Some(json!({ "title": "Twice" })),
    )
    .await;
    assert_eq!(
        (status, taken["error"]["code"].as_str()),
        (409, Some("slug_taken"))
    );
    let (status, _) = call(&app, &bearer, Method::GET, "/api/v1/articles/nope", None).await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &app,
        &bearer,
        Method::GET,
        "/api/v1/subscribers?status=maybe",
        None,
    )
    .await;
    assert_eq!(status, 422);
    for query in [
        "/api/v1/articles?limit=abc",
        "/api/v1/stats?days=70000",
        "/api/v1/digests/preview",
    ] {
        let (status, answer) = call(&app, &bearer, Method::GET, query, None).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (400, Some("invalid_query")),
            "{query}"
        );
    }
    let comma = json!({ "title": "Commas", "categories": ["city,news"] });
    let (status, answer) = call(&app, &bearer, Method::POST, "/api/v1/articles", Some(comma)).await;
    assert_eq!(
        (status, answer["error"]["field"].as_str()),
        (422, Some("categories"))
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 1);
    app.stop().await;
}

async fn subscribers_are_imported_from_csv_over_the_api(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bearer = app.api_token("crm", Role::Editor).await;
    let send = |content_type: &'static str, body: &'static str| {
        app.client
            .post(app.url("/api/v1/subscribers/import"))
            .bearer_auth(&bearer)
            .header("content-type", content_type)
            .body(body)
            .send()
    };
    let csv = "email,name,topics,consented_at,source\n\
               ada@example.com,Ada,history,2025-03-01T09:30:00Z,fair\n\
               not-an-address,Bob,,2025-03-01T09:30:00Z,fair\n\
               erin@example.com,,,2025-05-01T00:00:00Z,fair\n";
    let first = send("text/csv", csv).await.unwrap();
    assert_eq!(first.status(), 200);
    let report: Value = first.json().await.unwrap();
    assert_eq!(
        (report["imported"].as_u64(), report["existing"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(report["invalid"][0]["line"], 3);
    let again: Value = send("text/csv", csv).await.unwrap().json().await.unwrap();
    assert_eq!(
        (again["imported"].as_u64(), again["existing"].as_u64()),
        (Some(0), Some(2))
    );
    let (_, readers) = call(
        &app,
        &bearer,
        Method::GET,
        "/api/v1/subscribers?status=confirmed",
        None,
    )
    .await;
    assert_eq!(readers.as_array().unwrap().len(), 2);
    let wrong_header = send("text/csv", "mail,name\nx@example.com,X\n")
        .await
        .unwrap();
    assert_eq!(wrong_header.status(), 422);
    let body: Value = wrong_header.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_csv");
    let not_csv = send("application/json", "{}").await.unwrap();
    assert_eq!(not_csv.status(), 415);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'subscribers.import'")
            .await,
        2
    );
    app.stop().await;
}

async fn a_digest_of_chosen_articles_holds_exactly_them(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("reader@example.com", true).await;
    let bearer = app.api_token("desk", Role::Editor).await;
    let mut ids = Vec::new();
    for (title, publish) in [
        ("Chosen story", true),
        ("Other story", true),
        ("Draft story", false),
    ] {
        let body = json!({ "title": title, "body_markdown": "Text.", "publish": publish });
        let (status, article) =
            call(&app, &bearer, Method::POST, "/api/v1/articles", Some(body)).await;
        assert_eq!(status, 201);
        ids.push(article["id"].as_str().unwrap().to_owned());
    }
    for bad in [json!([]), json!(["nope"]), json!([ids[2]])] {
        let body = json!({ "schedule": "daily", "articles": bad });
        let (status, answer) =
            call(&app, &bearer, Method::POST, "/api/v1/digests", Some(body)).await;
        assert_eq!(
            (status, answer["error"]["field"].as_str()),
            (422, Some("articles")),
            "{bad}"
        );
    }
    let body = json!({ "schedule": "daily", "articles": [ids[0]] });
    let (status, campaign) = call(&app, &bearer, Method::POST, "/api/v1/digests", Some(body)).await;
    assert_eq!(
        (status, campaign["recipients"].as_i64()),
        (201, Some(1)),
        "{campaign}"
    );
    let id = campaign["id"].as_str().unwrap().to_owned();
    // Pause, list, resume: the controls answer with the campaign.
    let (status, paused) = call(
        &app,
        &bearer,
        Method::POST,
        &format!("/api/v1/digests/{id}/pause"),
        None,
    )
    .await;
    assert_eq!((status, paused["status"].as_str()), (200, Some("paused")));
    let (_, listed) = call(&app, &bearer, Method::GET, "/api/v1/digests", None).await;
    assert_eq!(listed[0]["id"].as_str(), Some(id.as_str()));
    assert_eq!(app.drain_outbox().await.claimed, 0, "paused");
    let (status, resumed) = call(
        &app,
        &bearer,
        Method::POST,
        &format!("/api/v1/digests/{id}/resume"),
        None,
    )
    .await;
    assert_eq!((status, resumed["status"].as_str()), (200, Some("sending")));
    app.drain_outbox().await;
    let mail = app.last_mail_to("reader@example.com").text();
    assert!(
        mail.contains("Chosen story") && !mail.contains("Other story"),
        "{mail}"
    );
    // The schedule's own next digest still covers everything new.
    let (status, _) = call(
        &app,
        &bearer,
        Method::POST,
        "/api/v1/digests",
        Some(json!({ "schedule": "daily" })),
    )
    .await;
    assert_eq!(status, 201);
    app.drain_outbox().await;
    assert!(
        app.last_mail_to("reader@example.com")
            .text()
            .contains("Other story")
    );
    // A cancelled digest reaches nobody.
    let body = json!({ "schedule": "daily", "articles": [ids[1]] });
    let (_, third) = call(&app, &bearer, Method::POST, "/api/v1/digests", Some(body)).await;
    let third = third["id"].as_str().unwrap().to_owned();
    let path = format!("/api/v1/digests/{third}/cancel");
    let (status, cancelled) = call(&app, &bearer, Method::POST, &path, None).await;
    let got = (
        status,
        cancelled["status"].as_str(),
        cancelled["cancelled"].as_i64(),
    );
    assert_eq!(got, (200, Some("cancelled"), Some(1)));
    assert_eq!(app.drain_outbox().await.claimed, 0);
    app.stop().await;
}

async fn each_token_has_its_own_request_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.editors.api_requests_per_minute = 3;
    })
    .await;
    let busy = app.api_token("busy", Role::Editor).await;
    let calm = app.api_token("calm", Role::Editor).await;
    for _ in 0..3 {
        assert_eq!(
            call(&app, &busy, Method::GET, "/api/v1/stats", None)
                .await
                .0,
            200
        );
    }
    let response = app
        .client
        .get(app.url("/api/v1/stats"))
        .bearer_auth(&busy)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 429);
    assert!(
        response.headers()["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        call(&app, &calm, Method::GET, "/api/v1/stats", None)
            .await
            .0,
        200,
        "another token is not held back"
    );
    let doc = document(&app).await;
    assert!(doc["paths"]["/api/v1/stats"]["get"]["responses"]["429"].is_object());
    app.stop().await;
}
