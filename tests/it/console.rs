//! The editors' console: sign-in, roles, pages, articles, digests and the
//! audit log, through a real HTTP client against the real router.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::editors::Role;
use support::{Backend, Browser, TestApp};

storage_tests!(
    anonymous_visitors_are_sent_to_sign_in_and_editors_see_every_page,
    editor_sign_in_is_guarded_like_readers,
    an_editor_writes_previews_publishes_and_sends_a_digest,
    campaigns_can_be_paused_resumed_and_cancelled,
    admins_manage_tokens_and_editors_and_every_action_is_audited,
    editors_add_and_remove_feeds_but_not_the_operators,
    only_a_signed_in_editors_article_may_be_larger_than_a_form,
    test_digests_are_limited_per_editor_and_counted_in_the_audit_log,
);

fn location(response: &reqwest::Response) -> String {
    response.headers()["location"].to_str().unwrap().to_owned()
}

async fn anonymous_visitors_are_sent_to_sign_in_and_editors_see_every_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/admin",
        "/admin/articles",
        "/admin/digests",
        "/admin/audit",
        "/admin/readers",
    ] {
        let response = app.get(path).await;
        assert_eq!(response.status(), 303, "{path}");
        assert_eq!(location(&response), "/admin/login", "{path}");
    }
    app.confirmed_reader("reader@example.com", true).await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    for path in [
        "/admin",
        "/admin/articles",
        "/admin/articles/new",
        "/admin/digests",
        "/admin/readers?q=reader",
        "/admin/feeds",
        "/admin/audit",
    ] {
        let response = editor.get(path).await;
        assert_eq!(response.status(), 200, "{path}");
        let page = response.text().await.unwrap();
        assert!(page.contains("ed@example.com"), "{path} names the editor");
    }
    let dashboard = editor.get("/admin").await.text().await.unwrap();
    assert!(
        dashboard.contains("<svg class=\"chart\""),
        "the chart is drawn"
    );
    // Two confirmed readers are counted: the one above… and none other.
    assert!(
        dashboard.contains("id=\"count-confirmed\">1<"),
        "{dashboard}"
    );
    let readers = editor
        .get("/admin/readers?q=reader")
        .await
        .text()
        .await
        .unwrap();
    let id = app.subscriber_id("reader@example.com").await;
    assert!(readers.contains(&format!("/admin/readers/{id}")));
    let detail = editor.get(&format!("/admin/readers/{id}")).await;
    assert_eq!(detail.status(), 200);
    assert!(detail.text().await.unwrap().contains("confirmed"));
    // Admin-only pages and actions are refused to editors.
    for path in [
        "/admin/editors",
        "/admin/tokens",
        &format!("/admin/readers/{id}/export"),
    ] {
        assert_eq!(editor.get(path).await.status(), 403, "{path}");
    }
    let erase = editor
        .submit("/admin", &format!("/admin/readers/{id}/erase"), &[])
        .await;
    assert_eq!(erase.status(), 403);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    app.stop().await;
}

async fn editor_sign_in_is_guarded_like_readers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.editor("ed@example.com", Role::Editor, "correct horse battery")
        .await;
    let browser = app.new_browser();
    let wrong = browser
        .submit(
            "/admin/login",
            "/admin/login",
            &[("email", "ed@example.com"), ("password", "wrong")],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let unknown = browser
        .submit(
            "/admin/login",
            "/admin/login",
            &[("email", "nobody@example.com"), ("password", "x")],
        )
        .await;
    assert_eq!(unknown.status(), 401);
    assert!(
        unknown
            .text()
            .await
            .unwrap()
            .contains("Invalid email or password")
    );
    // Without the page's CSRF token the form is refused.
    let forged = browser
        .post_form(
            "/admin/login",
            &[
                ("email", "ed@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(forged.status(), 403);
    // A reader's account does not open the console.
    app.reader_with_password("reader@example.com", "another good password")
        .await;
    let reader = browser
        .submit(
            "/admin/login",
            "/admin/login",
            &[
                ("email", "reader@example.com"),
                ("password", "another good password"),
            ],
        )
        .await;
    assert_eq!(reader.status(), 401);
    // Sign-in, then sign-out ends the session server-side.
    let ok = browser
        .submit(
            "/admin/login",
            "/admin/login",
            &[
                ("email", "ed@EXAMPLE.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(ok.status(), 303);
    assert_eq!(browser.get("/admin").await.status(), 200);
    // Signing in again in the same browser replaces the session.
    let again = browser
        .submit(
            "/admin/login",
            "/admin/login",
            &[
                ("email", "ed@example.com"),
                ("password", "correct horse battery"),
            ],
        )
        .await;
    assert_eq!(again.status(), 303);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM editor_sessions").await, 1);
    assert_eq!(
        browser
            .submit("/admin", "/admin/logout", &[])
            .await
            .status(),
        303
    );
    assert_eq!(browser.get("/admin").await.status(), 303);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM editor_sessions").await, 0);
    app.stop().await;
}

/// Creates an article through the console form; returns its console path.
async fn write_article(editor: &Browser, title: &str, intent: &str) -> String {
    let fields = [
        ("title", title),
        ("categories", "city, news"),
        (
            "body_markdown",
            "The **harbour** reopens.\n\n<script>alert(1)</script>",
        ),
        ("intent", intent),
    ];
    let response = editor
        .submit("/admin/articles/new", "/admin/articles", &fields)
        .await;
    assert_eq!(response.status(), 303, "creating {title}");
    location(&response)
}

async fn an_editor_writes_previews_publishes_and_sends_a_digest(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("reader@example.com", true).await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    // Preview renders sanitised Markdown and stores nothing.
    let fields = [
        ("title", "Harbour reopens"),
        (
            "body_markdown",
            "The **harbour** reopens.<script>alert(1)</script>",
        ),
        ("intent", "preview"),
    ];
    let preview = editor
        .submit("/admin/articles/new", "/admin/articles", &fields)
        .await;
    assert_eq!(preview.status(), 200);
    let page = preview.text().await.unwrap();
    assert!(page.contains("<strong>harbour</strong>"), "{page}");
    assert!(!page.contains("<script>alert"), "sanitised");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 0);
    // An invalid article is refused with the reason.
    let bad = editor
        .submit(
            "/admin/articles/new",
            "/admin/articles",
            &[("title", ""), ("intent", "publish")],
        )
        .await;
    assert_eq!(bad.status(), 422);
    // A draft is invisible to readers until published.
    let path = write_article(&editor, "Harbour reopens", "draft").await;
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 404);
    let publish = editor.submit(&path, &format!("{path}/publish"), &[]).await;
    assert_eq!(publish.status(), 303);
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 200);
    // The same address twice is refused.
    let fields = [
        ("title", "Harbour reopens"),
        ("body_markdown", "x"),
        ("intent", "publish"),
    ];
    let taken = editor
        .submit("/admin/articles/new", "/admin/articles", &fields)
        .await;
    assert_eq!(taken.status(), 422);
    // Preview the digest as the reader would get it, then send it.
    let preview = editor
        .get("/admin/digests/preview?schedule=daily&reader=reader%40example.com")
        .await;
    assert_eq!(preview.status(), 200);
    // Email templates are inline styles: the preview's frame may use them.
    let policy = preview.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        policy.contains("style-src 'self' 'unsafe-inline'") && !policy.contains("script-src"),
        "{policy}"
    );
    assert!(preview.text().await.unwrap().contains("Harbour reopens"));
    let send = editor
        .submit(
            "/admin/digests",
            "/admin/digests/send",
            &[("schedule", "daily")],
        )
        .await;
    assert_eq!(send.status(), 303);
    let campaign = location(&send);
    assert!(
        editor
            .get(&campaign)
            .await
            .text()
            .await
            .unwrap()
            .contains("data-progress-url")
    );
    app.drain_outbox().await;
    let progress: serde_json::Value = editor
        .get(&format!("{campaign}/progress"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(progress["status"], "done", "{progress}");
    assert_eq!(progress["sent"], 1);
    assert_eq!(progress["pending"], 0);
    let digest = app.last_mail_to("reader@example.com");
    assert!(digest.text().contains("Harbour reopens"));
    // Nothing new: a second "Send now" says so.
    let again = editor
        .submit(
            "/admin/digests",
            "/admin/digests/send",
            &[("schedule", "daily")],
        )
        .await;
    assert_eq!(again.status(), 409);
    // A test send reaches any address and leaves no campaign.
    write_article(&editor, "Second story", "publish").await;
    let test = editor
        .submit(
            "/admin/digests",
            "/admin/digests/test",
            &[("schedule", "daily"), ("to", "desk@example.com")],
        )
        .await;
    assert_eq!(test.status(), 200);
    assert!(
        app.last_mail_to("desk@example.com")
            .text()
            .contains("Second story")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    // Editing keeps the article's state; deleting removes it.
    let fields = [
        ("title", "Harbour reopens at last"),
        ("slug", "harbour-reopens"),
        ("body_markdown", "Edited."),
        ("intent", "save"),
    ];
    assert_eq!(editor.submit(&path, &path, &fields).await.status(), 303);
    let page = app
        .get("/articles/harbour-reopens")
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Harbour reopens at last"));
    assert_eq!(
        editor
            .submit(&path, &format!("{path}/delete"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 404);
    assert_eq!(editor.get(&path).await.status(), 404);
    let audit = editor.get("/admin/audit").await.text().await.unwrap();
    for action in [
        "article.create",
        "article.publish",
        "article.update",
        "article.delete",
        "digest.send_now",
        "digest.test",
    ] {
        assert!(audit.contains(action), "{action} is audited");
    }
    assert!(audit.contains("editor:ed@example.com"));
    app.stop().await;
}

async fn campaigns_can_be_paused_resumed_and_cancelled(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("one@example.com", true).await;
    app.confirmed_reader("two@example.com", true).await;
    app.drain_outbox().await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    write_article(&editor, "First", "publish").await;
    let send = editor
        .submit(
            "/admin/digests",
            "/admin/digests/send",
            &[("schedule", "daily")],
        )
        .await;
    let campaign = location(&send);
    assert_eq!(
        editor
            .submit(&campaign, &format!("{campaign}/pause"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(
        app.drain_outbox().await.claimed,
        0,
        "a paused campaign sends nothing"
    );
    // The page offers what applies now, under a readable title.
    let page = editor.get(&campaign).await.text().await.unwrap();
    let offers = |page: &str, action: &str| page.contains(&format!("{campaign}/{action}\""));
    assert!(offers(&page, "resume") && offers(&page, "cancel") && !offers(&page, "pause"));
    assert!(page.contains("<h1>Daily digest of "), "{page}");
    // Pausing twice is a conflict, not an error.
    assert_eq!(
        editor
            .submit(&campaign, &format!("{campaign}/pause"), &[])
            .await
            .status(),
        409
    );
    assert_eq!(
        editor
            .submit(&campaign, &format!("{campaign}/resume"), &[])
            .await
            .status(),
        303
    );
    app.drain_outbox().await;
    let done: serde_json::Value = editor
        .get(&format!("{campaign}/progress"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (done["status"].as_str(), done["sent"].as_i64()),
        (Some("done"), Some(2))
    );
    let page = editor.get(&campaign).await.text().await.unwrap();
    let offered: Vec<_> = ["pause", "resume", "cancel"]
        .into_iter()
        .filter(|action| offers(&page, action))
        .collect();
    assert!(offered.is_empty(), "a finished campaign offers {offered:?}");
    assert_eq!(
        editor
            .submit(&campaign, &format!("{campaign}/cancel"), &[])
            .await
            .status(),
        409
    );
    // A cancelled campaign's readers get nothing.
    write_article(&editor, "Second", "publish").await;
    let send = editor
        .submit(
            "/admin/digests",
            "/admin/digests/send",
            &[("schedule", "daily")],
        )
        .await;
    let second = location(&send);
    assert_eq!(
        editor
            .submit(&second, &format!("{second}/cancel"), &[])
            .await
            .status(),
        303
    );
    assert_eq!(app.drain_outbox().await.claimed, 0);
    let cancelled: serde_json::Value = editor
        .get(&format!("{second}/progress"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(cancelled["status"], "cancelled");
    assert_eq!(cancelled["cancelled"], 2);
    assert_eq!(
        editor.get("/admin/campaigns/nope/progress").await.status(),
        404
    );
    assert_eq!(
        editor
            .submit(&second, "/admin/campaigns/nope/pause", &[])
            .await
            .status(),
        404
    );
    app.stop().await;
}

async fn admins_manage_tokens_and_editors_and_every_action_is_audited(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let admin = app.signed_in_editor("boss@example.com", Role::Admin).await;
    let created = admin
        .submit(
            "/admin/tokens",
            "/admin/tokens",
            &[("name", "deploy-bot"), ("role", "editor")],
        )
        .await;
    assert_eq!(created.status(), 200);
    let page = created.text().await.unwrap();
    let secret = regex_lite::Regex::new(r#"id="token-secret">(bs_[0-9a-f]{64})<"#)
        .unwrap()
        .captures(&page)
        .expect("the secret is shown once")[1]
        .to_owned();
    assert!(
        !admin
            .get("/admin/tokens")
            .await
            .text()
            .await
            .unwrap()
            .contains(&secret),
        "only once"
    );
    let stored = app.text("SELECT token_hash FROM api_tokens").await.unwrap();
    assert_ne!(stored, secret, "stored hashed");
    let twice = admin
        .submit("/admin/tokens", "/admin/tokens", &[("name", "deploy-bot")])
        .await;
    assert_eq!(twice.status(), 422);
    assert_eq!(
        admin
            .submit(
                "/admin/tokens",
                "/admin/tokens/revoke",
                &[("name", "deploy-bot")]
            )
            .await
            .status(),
        303
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM api_tokens WHERE revoked_at IS NOT NULL")
            .await,
        1
    );
    // A new editor gets a single-use link.
    let added = admin
        .submit(
            "/admin/editors",
            "/admin/editors",
            &[("email", "new@example.com"), ("role", "editor")],
        )
        .await;
    assert_eq!(added.status(), 200);
    let page = added.text().await.unwrap();
    // minijinja escapes `/` in HTML.
    let page = page.replace("&#x2f;", "/");
    let link = support::link_path(&page, &app.base_url, "admin/password");
    let newcomer = app.new_browser();
    let set = newcomer
        .submit(&link, &link, &[("password", "a fine new password")])
        .await;
    assert_eq!(set.status(), 303);
    let reuse = newcomer.get(&link).await;
    assert_eq!(reuse.status(), 404, "the link works once");
    let signed_in = newcomer
        .submit(
            "/admin/login",
            "/admin/login",
            &[
                ("email", "new@example.com"),
                ("password", "a fine new password"),
            ],
        )
        .await;
    assert_eq!(signed_in.status(), 303);
    let audit = admin.get("/admin/audit").await.text().await.unwrap();
    for action in [
        "token.create",
        "token.revoke",
        "editor.add",
        "editor.password_set",
    ] {
        assert!(audit.contains(action), "{action} is audited");
    }
    // An admin exports and erases a reader.
    app.confirmed_reader("leaving@example.com", true).await;
    let id = app.subscriber_id("leaving@example.com").await;
    let export = admin.get(&format!("/admin/readers/{id}/export")).await;
    assert_eq!(export.status(), 200);
    let data: serde_json::Value = export.json().await.unwrap();
    assert_eq!(data["profile"]["email"], "leaving@example.com");
    let erased = admin
        .submit(
            &format!("/admin/readers/{id}"),
            &format!("/admin/readers/{id}/erase"),
            &[],
        )
        .await;
    assert_eq!(erased.status(), 303);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
    let audit = admin.get("/admin/audit").await.text().await.unwrap();
    assert!(audit.contains("reader.export") && audit.contains("reader.erase"));
    assert!(
        !audit.contains("leaving@example.com"),
        "the log keeps no erased address"
    );
    app.stop().await;
}

async fn editors_add_and_remove_feeds_but_not_the_operators(backend: Backend) {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        let operators = broadsheet::domain::FeedConfig {
            url: "https://operator.example/feed.xml".into(),
            poll: "*/15 * * * *".into(),
            categories: vec![],
            allow_private: false,
        };
        config
            .feeds
            .push(broadsheet::domain::Feed::parse(&operators).unwrap());
    })
    .await;
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    // S-04: no private, loopback or non-http address, whoever asks.
    for url in [
        "http://127.0.0.1/feed",
        "http://[64:ff9b::7f00:1]/feed",
        "http://[2002:7f00:1::]/feed",
        "https://user:secret@news.example/rss",
        "file:///etc/passwd",
        "not a url",
    ] {
        let refused = editor
            .submit("/admin/feeds", "/admin/feeds", &[("url", url)])
            .await;
        assert_eq!(refused.status(), 422, "{url}");
    }
    let fields = [
        ("url", "https://news.example/rss"),
        ("categories", "world, briefs"),
    ];
    let added = editor.submit("/admin/feeds", "/admin/feeds", &fields).await;
    assert_eq!(added.status(), 303);
    let twice = editor.submit("/admin/feeds", "/admin/feeds", &fields).await;
    assert_eq!(twice.status(), 422);
    let operators = editor
        .submit(
            "/admin/feeds",
            "/admin/feeds",
            &[("url", "https://operator.example/feed.xml")],
        )
        .await;
    assert_eq!(operators.status(), 422, "polled already");
    let page = editor.get("/admin/feeds").await.text().await.unwrap();
    let page = page.replace("&#x2f;", "/"); // minijinja escapes `/`
    assert!(page.contains("https://news.example/rss") && page.contains("world, briefs"));
    assert_eq!(
        page.matches("action=\"/admin/feeds/remove\"").count(),
        1,
        "only the editor's feed can be removed"
    );
    for (url, status) in [
        ("https://operator.example/feed.xml", 404),
        ("https://news.example/rss", 303),
        ("https://news.example/rss", 404),
    ] {
        let removed = editor
            .submit("/admin/feeds", "/admin/feeds/remove", &[("url", url)])
            .await;
        assert_eq!(removed.status(), status, "{url}");
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM editor_feeds").await, 0);
    let audit = editor.get("/admin/audit").await.text().await.unwrap();
    assert!(audit.contains("feed.add") && audit.contains("feed.remove"));
    app.stop().await;
}

/// The status of a POST of `body` to `path`; a request the server cut off
/// after answering 413 (before the whole body was written) counts as 413.
async fn post_body(browser: &Browser, path: &str, body: String) -> u16 {
    let sent = browser
        .client
        .post(browser.url(path))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await;
    match sent {
        Ok(response) => response.status().as_u16(),
        // Only if the server is still there: a crash is no 413.
        Err(error) if error.is_request() => {
            assert_eq!(browser.get("/healthz").await.status(), 200, "{error}");
            413
        }
        Err(error) => panic!("POST {path}: {error}"),
    }
}

async fn only_a_signed_in_editors_article_may_be_larger_than_a_form(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let filler = "x".repeat(100 * 1024);
    // Nobody signed in: refused by size before anything else is looked at.
    let stranger = app.new_browser();
    let login = stranger.get("/admin/login").await.text().await.unwrap();
    let csrf = support::hidden_field(&login, "csrf");
    let body = format!("csrf={csrf}&email=a%40example.com&password={filler}");
    assert_eq!(post_body(&stranger, "/admin/login", body).await, 413);
    let body = format!("csrf={csrf}&title=t&body_markdown={filler}");
    assert_eq!(post_body(&stranger, "/admin/articles", body).await, 413);
    // An editor's article may be long; their other forms may not.
    let editor = app.signed_in_editor("ed@example.com", Role::Editor).await;
    let page = editor
        .get("/admin/articles/new")
        .await
        .text()
        .await
        .unwrap();
    let csrf = support::hidden_field(&page, "csrf");
    let body = format!("csrf={csrf}&title=Long+read&body_markdown={filler}&intent=draft");
    assert_eq!(post_body(&editor, "/admin/articles", body).await, 303);
    let body = format!("csrf={csrf}&schedule=daily&padding={filler}");
    assert_eq!(post_body(&editor, "/admin/digests/send", body).await, 413);
    app.stop().await;
}

/// An editor's "Send a test" of the daily digest to a stranger's address.
async fn test(editor: &Browser) -> reqwest::Response {
    let fields = [("schedule", "daily"), ("to", "stranger@example.net")];
    editor
        .submit("/admin/digests", "/admin/digests/test", &fields)
        .await
}

async fn test_digests_are_limited_per_editor_and_counted_in_the_audit_log(backend: Backend) {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.editors.test_sends_per_hour = 2;
    })
    .await;
    let first = app
        .signed_in_editor("first@example.com", Role::Editor)
        .await;
    let second = app
        .signed_in_editor("second@example.com", Role::Editor)
        .await;
    write_article(&first, "A story to test with", "publish").await;
    assert_eq!(test(&first).await.status(), 200);
    assert_eq!(test(&first).await.status(), 200);
    let refused = test(&first).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "3600");
    assert_eq!(
        test(&second).await.status(),
        200,
        "each editor has their own"
    );
    let to_stranger = app
        .received()
        .iter()
        .filter(|mail| mail.to == ["<stranger@example.net>"])
        .count();
    assert_eq!(to_stranger, 3);
    let counted = "SELECT COUNT(*) FROM audit_log WHERE action = 'digest.test'
                   AND actor = 'editor:first@example.com' AND detail LIKE '%\"sent_this_hour\":2%'";
    assert_eq!(app.scalar(counted).await, 1);
    app.clock.advance(std::time::Duration::from_secs(3601));
    assert_eq!(test(&first).await.status(), 200, "an hour later");
    app.stop().await;
}
