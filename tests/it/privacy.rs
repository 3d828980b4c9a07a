//! GDPR: one-click unsubscribe, the preference centre, export, erasure,
//! retention, receipts, cookie consent and the privacy notice.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::time::Duration;

use broadsheet::domain::LinkPurpose;
use support::{Backend, TestApp};

storage_tests!(
    one_click_unsubscribe_withdraws_and_the_export_shows_its_source,
    the_unsubscribe_get_only_shows_a_button,
    a_wrong_body_or_a_forged_link_unsubscribes_no_one,
    withdrawal_cancels_pending_newsletter_mail,
    the_preference_centre_changes_consent_topics_frequency_and_pause,
    the_account_turns_the_digest_on_only_with_the_box_and_its_wording,
    a_strangers_tick_is_not_confirmed_by_the_readers_own_link,
    the_export_holds_everything_and_no_secret,
    erasure_leaves_only_the_keyed_hash,
    the_suppression_key_can_live_outside_the_database,
    an_older_installs_suppression_key_moves_out_of_the_database,
    purges_remove_unconfirmed_signups_old_evidence_and_spent_secrets,
    cookie_choices_are_recorded_changeable_and_optional,
    the_privacy_page_shows_the_notice_and_its_versions,
    consent_receipts_carry_the_kantara_fields,
    only_frequencies_a_schedule_sends_at_are_offered,
);

const PASSWORD: &str = "a long and unusual passphrase";

/// A confirmed reader with the digest on and a password, signed in.
async fn digest_reader(app: &TestApp, email: &str) {
    let path = app.confirmed_reader(email, true).await;
    assert_eq!(
        app.submit(&path, &path, &[("password", PASSWORD)])
            .await
            .status(),
        303
    );
    app.drain_outbox().await;
    assert_eq!(app.sign_in(email, PASSWORD).await.status(), 303);
}

/// A client like a mail client: no cookies, no redirects followed.
fn mail_client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A POST of `body` to an unsubscribe `link`, form-encoded, as a mail
/// client makes it for RFC 8058's one-click (no cookie, no CSRF token).
pub(crate) async fn one_click_post(
    app: &TestApp,
    link: &str,
    body: &'static str,
) -> reqwest::Response {
    mail_client()
        .post(app.url(link))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .send()
        .await
        .unwrap()
}

async fn export(app: &TestApp) -> serde_json::Value {
    let response = app.get("/account/export").await;
    assert_eq!(response.status(), 200);
    assert!(
        response.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .starts_with("attachment")
    );
    response.json().await.unwrap()
}

async fn one_click_unsubscribe_withdraws_and_the_export_shows_its_source(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "oneclick@example.com").await;
    let link = app
        .reader_link("oneclick@example.com", LinkPurpose::Unsubscribe)
        .await;
    for _ in 0..2 {
        let response = one_click_post(&app, &link, "List-Unsubscribe=One-Click").await;
        assert_eq!(response.status(), 200, "E-03: 200, never a redirect");
        assert!(response.text().await.unwrap().contains("unsubscribed"));
    }
    let data = export(&app).await;
    assert_eq!(data["consent"]["digest"], "off");
    let events = data["consent"]["events"].as_array().unwrap();
    let actions: Vec<&str> = events
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        ["granted", "confirmed", "withdrawn"],
        "repeating it recorded nothing more"
    );
    assert_eq!(events[2]["source"], "one_click_unsubscribe");
    assert!(
        events[2]["ip"].is_null() && events[2]["user_agent"].is_null(),
        "G-07: no IP on a withdrawal"
    );
    assert_eq!(
        events[2]["wording"]["text"],
        app.config.signup.newsletter_consent_text.as_str()
    );

    // Multipart works too, and is as harmless when repeated.
    let form = reqwest::multipart::Form::new().text("List-Unsubscribe", "One-Click");
    let multipart = mail_client()
        .post(app.url(&link))
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_eq!(multipart.status(), 200);
    app.stop().await;
}

async fn the_unsubscribe_get_only_shows_a_button(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "scanner@example.com").await;
    let link = app
        .reader_link("scanner@example.com", LinkPurpose::Unsubscribe)
        .await;
    let page = mail_client().get(app.url(&link)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(
        html.contains(r#"name="List-Unsubscribe" value="One-Click""#) && html.contains("<button")
    );
    assert_eq!(
        export(&app).await["consent"]["digest"],
        "on",
        "E-05: a GET changes nothing"
    );
    // The page's own button unsubscribes, recorded as such.
    let button = app
        .post_form(
            &link,
            &[("List-Unsubscribe", "One-Click"), ("from", "page")],
        )
        .await;
    assert_eq!(button.status(), 200);
    let data = export(&app).await;
    assert_eq!(data["consent"]["events"][2]["source"], "unsubscribe_page");
    app.stop().await;
}

async fn a_wrong_body_or_a_forged_link_unsubscribes_no_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "keep@example.com").await;
    let link = app
        .reader_link("keep@example.com", LinkPurpose::Unsubscribe)
        .await;
    let wrong = one_click_post(&app, &link, "List-Unsubscribe=Maybe").await;
    assert_eq!(wrong.status(), 400);
    let preferences = app
        .reader_link("keep@example.com", LinkPurpose::Preferences)
        .await;
    let wrong_purpose = preferences.replace("/preferences/", "/unsubscribe/");
    let mut forged = link.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    for path in [
        wrong_purpose.as_str(),
        forged.as_str(),
        "/unsubscribe/nonsense",
    ] {
        let response = one_click_post(&app, path, "List-Unsubscribe=One-Click").await;
        assert_eq!(response.status(), 404, "{path}");
    }
    assert_eq!(export(&app).await["consent"]["digest"], "on");
    app.stop().await;
}

async fn withdrawal_cancels_pending_newsletter_mail(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.import_article("+++\ntitle = \"Queued\"\n+++\nBody.\n")
        .await;
    digest_reader(&app, "pending@example.com").await;
    app.send_digest_now().await;
    assert_eq!(
        app.text("SELECT status FROM deliveries").await.as_deref(),
        Some("pending")
    );
    let link = app
        .reader_link("pending@example.com", LinkPurpose::Unsubscribe)
        .await;
    app.post_form(&link, &[("List-Unsubscribe", "One-Click")])
        .await;
    assert_eq!(
        app.text("SELECT status FROM deliveries").await.as_deref(),
        Some("cancelled"),
        "G-10"
    );
    let account_mail = app
        .scalar("SELECT COUNT(*) FROM outbox WHERE status = 'cancelled'")
        .await;
    assert_eq!(account_mail, 0, "account mail is not touched");
    app.stop().await;
}

/// The app with a weekly schedule beside the default daily one.
async fn with_a_weekly_schedule(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        let weekly = broadsheet::domain::ScheduleConfig {
            name: "weekly".into(),
            cron: "0 0 8 * * MON".into(),
            timezone: "UTC".into(),
            frequency: broadsheet::domain::Frequency::Weekly,
            subject: None,
            max_article_age_h: None,
        };
        let max_age = config.digest.max_article_age;
        let schedule = broadsheet::domain::Schedule::parse(&weekly, max_age).unwrap();
        config.digest.schedules.push(schedule);
    })
    .await
}

async fn only_frequencies_a_schedule_sends_at_are_offered(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "daily@example.com").await;
    let link = app
        .reader_link("daily@example.com", LinkPurpose::Preferences)
        .await;
    let page = app.get(&link).await.text().await.unwrap();
    assert!(
        !page.contains(r#"value="weekly""#),
        "no weekly schedule: {page}"
    );
    assert!(page.contains(r#"name="frequency" value="daily""#));
    let weekly = [("frequency", "weekly")];
    assert_eq!(app.submit(&link, &link, &weekly).await.status(), 422);
    app.stop().await;

    let app = with_a_weekly_schedule(backend).await;
    digest_reader(&app, "both@example.com").await;
    let link = app
        .reader_link("both@example.com", LinkPurpose::Preferences)
        .await;
    let page = app.get(&link).await.text().await.unwrap();
    assert!(page.contains(r#"value="weekly""#) && page.contains(r#"value="daily""#));
    app.stop().await;
}

async fn the_preference_centre_changes_consent_topics_frequency_and_pause(backend: Backend) {
    let app = with_a_weekly_schedule(backend).await;
    app.import_article("+++\ntitle = \"One\"\ncategories = [\"city\", \"history\"]\n+++\nBody.\n")
        .await;
    digest_reader(&app, "prefs@example.com").await;
    let link = app
        .reader_link("prefs@example.com", LinkPurpose::Preferences)
        .await;
    let visitor = app.new_browser();
    let page = visitor.get(&link).await;
    assert_eq!(page.status(), 200, "no sign-in needed");
    let html = page.text().await.unwrap();
    let version = support::hidden_field(&html, "consent_version");

    let saved = visitor
        .submit(
            &link,
            &link,
            &[
                ("frequency", "weekly"),
                ("paused", "on"),
                ("topic", "history"),
                ("consent_version", &version),
            ],
        )
        .await;
    assert_eq!(saved.status(), 200);
    assert!(saved.text().await.unwrap().contains("Saved."));
    let data = export(&app).await;
    assert_eq!(
        data["preferences"],
        serde_json::json!({"frequency": "weekly", "paused": true, "topics": ["history"]})
    );
    assert_eq!(
        data["consent"]["digest"], "off",
        "the box was left unticked: withdrawn"
    );
    assert_eq!(data["consent"]["events"][2]["source"], "preference_centre");

    let stale = [
        ("digest", "on"),
        ("frequency", "daily"),
        ("consent_version", "old"),
    ];
    let bad_topic = [("frequency", "daily"), ("topic", "nonexistent")];
    let bad_frequency = [("frequency", "hourly")];
    for fields in [&stale[..], &bad_topic[..], &bad_frequency[..]] {
        assert_eq!(
            visitor.submit(&link, &link, fields).await.status(),
            422,
            "{fields:?}"
        );
    }
    assert_eq!(
        export(&app).await["consent"]["digest"],
        "off",
        "G-05: not on a stale wording"
    );
    let on = [
        ("digest", "on"),
        ("frequency", "daily"),
        ("consent_version", version.as_str()),
    ];
    let turned_on = visitor.submit(&link, &link, &on).await;
    assert_eq!(turned_on.status(), 200);
    assert!(
        turned_on
            .text()
            .await
            .unwrap()
            .contains("follow the link we have just emailed you")
    );
    // L-02: whoever holds a forwarded link cannot opt the reader in; the inbox confirms.
    assert_eq!(
        export(&app).await["consent"]["digest"],
        "awaiting_confirmation"
    );
    app.drain_outbox().await;
    let confirm = support::link_path(
        &app.last_mail_to("prefs@example.com").text(),
        &app.base_url,
        "confirm",
    );
    let page = visitor.get(&confirm).await.text().await.unwrap();
    assert!(
        page.contains(&app.config.signup.newsletter_consent_text),
        "the page says what is confirmed"
    );
    assert_eq!(visitor.confirm(&confirm).await.status(), 200);
    let data = export(&app).await;
    assert_eq!(data["consent"]["digest"], "on");
    let last = data["consent"]["events"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["source"], "confirmation_link");

    let no_csrf = app
        .new_browser()
        .post_form(&link, &[("frequency", "daily")])
        .await;
    assert_eq!(no_csrf.status(), 403);
    let mut forged = link.clone();
    forged.replace_range(forged.len() - 4.., "0000");
    assert_eq!(visitor.get(&forged).await.status(), 404);
    app.stop().await;
}

async fn the_account_turns_the_digest_on_only_with_the_box_and_its_wording(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("later@example.com", PASSWORD)
        .await;
    app.sign_in("later@example.com", PASSWORD).await;
    let page = app.get("/account/preferences").await.text().await.unwrap();
    let version = support::hidden_field(&page, "consent_version");
    let plain = [
        ("frequency", "daily"),
        ("consent_version", version.as_str()),
    ];
    let saved = app
        .submit("/account/preferences", "/account/preferences", &plain)
        .await;
    assert_eq!(saved.status(), 200);
    assert!(saved.text().await.unwrap().contains("Saved."));
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events").await,
        0,
        "no act, no event"
    );
    let ticked = [
        ("digest", "on"),
        ("frequency", "daily"),
        ("consent_version", version.as_str()),
    ];
    app.submit("/account/preferences", "/account/preferences", &ticked)
        .await;
    let (action, source, text_id): (String, String, String) =
        sqlx::query_as("SELECT action, source, text_id FROM consent_events")
            .fetch_one(app.store.pool())
            .await
            .unwrap();
    assert_eq!(
        (action.as_str(), source.as_str(), text_id),
        ("confirmed", "account_page", version)
    );
    assert!(
        app.get("/account")
            .await
            .text()
            .await
            .unwrap()
            .contains("<dd>On</dd>")
    );
    app.stop().await;
}

async fn the_export_holds_everything_and_no_secret(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "Export@Example.com").await;
    let response = app.get("/account/export").await;
    let raw = response.text().await.unwrap();
    let data: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(data["schema"], "broadsheet.export.v1");
    assert_eq!(data["profile"]["email"], "Export@Example.com");
    assert_eq!(data["profile"]["email_canonical"], "Export@example.com");
    assert_eq!(data["account"]["has_password"], true);
    assert_eq!(data["consent"]["events"].as_array().unwrap().len(), 2);
    assert_eq!(data["consent"]["events"][0]["ip"], "127.0.0.0");
    let notice = broadsheet::domain::content_hash(&format!(
        "privacy_notice\0{}",
        include_str!("../../templates/privacy_notice.md")
    ));
    assert_eq!(
        data["consent"]["events"][0]["privacy_notice_version"],
        notice.as_str(),
        "G-04"
    );
    let templates: Vec<&str> = data["emails"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["template"].as_str().unwrap())
        .collect();
    assert_eq!(templates, ["confirm", "credentials", "password_set"]);
    assert_eq!(data["sessions"].as_array().unwrap().len(), 1);
    assert_eq!(data["delivery_reports"], serde_json::json!([]));
    assert!(data["suppression"].is_null(), "not suppressed");
    for secret in [
        "$argon2",
        "password_hash",
        "id_hash",
        "link_url",
        "/confirm/",
    ] {
        assert!(!raw.contains(secret), "G-19: {secret} in export");
    }
    assert_eq!(
        app.new_browser().get("/account/export").await.status(),
        303,
        "signed in only"
    );
    app.stop().await;
}

/// Every text value in every table that contains `needle` (case-insensitive).
async fn traces_of(app: &TestApp, needle: &str) -> Vec<String> {
    let tables: Vec<String> = match app.store.backend() {
        broadsheet::store::Backend::Sqlite => sqlx::query_scalar(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'",
        )
        .fetch_all(app.store.pool())
        .await
        .unwrap(),
        broadsheet::store::Backend::Postgres => sqlx::query_scalar(
            "SELECT table_name::text FROM information_schema.tables WHERE table_schema = current_schema()",
        )
        .fetch_all(app.store.pool())
        .await
        .unwrap(),
    };
    let mut found = Vec::new();
    for table in tables {
        let columns: Vec<String> = match app.store.backend() {
            broadsheet::store::Backend::Sqlite => {
                sqlx::query_scalar("SELECT name FROM pragma_table_info($1)")
                    .bind(&table)
                    .fetch_all(app.store.pool())
                    .await
                    .unwrap()
            }
            broadsheet::store::Backend::Postgres => sqlx::query_scalar(
                "SELECT column_name::text FROM information_schema.columns \
                 WHERE table_schema = current_schema() AND table_name = $1",
            )
            .bind(&table)
            .fetch_all(app.store.pool())
            .await
            .unwrap(),
        };
        for column in columns {
            let sql =
                format!("SELECT COUNT(*) FROM {table} WHERE lower(CAST({column} AS TEXT)) LIKE $1");
            let n: i64 = sqlx::query_scalar(&sql)
                .bind(format!("%{}%", needle.to_lowercase()))
                .fetch_one(app.store.pool())
                .await
                .unwrap();
            if n > 0 {
                found.push(format!("{table}.{column}"));
            }
        }
    }
    found
}

async fn erasure_leaves_only_the_keyed_hash(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "Gone@Example.com").await;
    assert!(
        !traces_of(&app, "gone@example.com").await.is_empty(),
        "the scan finds the address while it is there"
    );
    let wrong = app
        .submit(
            "/account/delete",
            "/account/delete",
            &[("password", "not it")],
        )
        .await;
    assert_eq!(wrong.status(), 401);
    let erased = app
        .submit(
            "/account/delete",
            "/account/delete",
            &[("password", PASSWORD)],
        )
        .await;
    assert_eq!(erased.status(), 200);
    assert!(erased.text().await.unwrap().contains("Your data is erased"));

    assert_eq!(
        traces_of(&app, "gone@example.com").await,
        Vec::<String>::new(),
        "G-13"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM suppressions WHERE reason = 'erased'")
            .await,
        1
    );
    let kept = "SELECT COUNT(*) FROM consent_events WHERE subject_kind = 'erased' AND ip IS NULL AND user_agent IS NULL";
    assert_eq!(app.scalar(kept).await, 2, "pseudonymised proof of consent");
    assert_eq!(app.get("/account").await.status(), 303, "signed out");

    // The address can come back only through a fresh double opt-in.
    app.sign_up("gone@example.com", true).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'pending'")
            .await,
        1
    );
    app.drain_outbox().await;
    let confirm = support::link_path(
        &app.last_mail_to("gone@example.com").text(),
        &app.base_url,
        "confirm",
    );
    app.confirm(&confirm).await;
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM suppressions").await,
        0,
        "the fresh opt-in lifts it"
    );
    app.stop().await;
}

async fn purges_remove_unconfirmed_signups_old_evidence_and_spent_secrets(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "stays@example.com").await;
    app.sign_up("never@example.com", true).await;
    app.drain_outbox().await;
    let purge = || {
        broadsheet::privacy::purge(
            &app.store,
            &app.clock,
            &app.config.privacy,
            app.config.accounts.session_idle,
        )
    };
    let now = purge().await.unwrap();
    assert_eq!(now.unconfirmed_signups, 0, "not before 7 days");
    assert!(now.tokens >= 2, "used tokens go at once: {now:?}");

    app.clock.advance(Duration::from_secs(8 * 24 * 3600));
    let week = purge().await.unwrap();
    assert_eq!(week.unconfirmed_signups, 1, "G-16");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events").await,
        2,
        "only the confirmed reader's"
    );

    app.clock.advance(Duration::from_secs(366 * 24 * 3600));
    let year = purge().await.unwrap();
    assert_eq!(
        year.consent_evidence_cleared, 2,
        "G-07: IPs after ip_retention_days"
    );
    assert_eq!(year.sessions, 1);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events WHERE ip IS NOT NULL")
            .await,
        0
    );
    app.stop().await;
}

async fn cookie_choices_are_recorded_changeable_and_optional(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/articles").await;
    let set: Vec<String> = first
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().to_owned())
        .collect();
    assert!(
        set.len() == 1 && set[0].starts_with("bs_csrf="),
        "C-01: {set:?}"
    );
    let html = first.text().await.unwrap();
    assert!(
        html.contains(
            r#"<button type="submit" name="choice" value="accept_all">Accept all</button>"#
        )
    );
    assert!(
        html.contains(
            r#"<button type="submit" name="choice" value="reject_all">Reject all</button>"#
        ),
        "C-05"
    );
    assert!(
        html.contains(r#"href="/cookies">Choose</a>"#)
            && html.contains(r#"href="/cookies">Cookie settings</a>"#)
    );
    // The settings page holds the whole choice: no banner over it.
    let settings = app
        .new_browser()
        .get("/cookies")
        .await
        .text()
        .await
        .unwrap();
    assert!(!settings.contains("cookie-banner"), "{settings}");
    assert!(settings.contains(r#"value="reject_all""#));
    // Every page names the icon, which is served.
    assert!(html.contains(r#"<link rel="icon" href="/static/favicon.svg""#));
    let icon = app.get("/static/favicon.svg").await;
    assert_eq!(icon.status(), 200);
    assert_eq!(icon.headers()["content-type"], "image/svg+xml");

    let accepted = app
        .submit(
            "/articles",
            "/cookies",
            &[("choice", "accept_all"), ("return_to", "/articles")],
        )
        .await;
    assert_eq!(accepted.status(), 303);
    assert_eq!(accepted.headers()["location"], "/articles");
    assert!(
        !app.get("/articles")
            .await
            .text()
            .await
            .unwrap()
            .contains("cookie-banner"),
        "asked once"
    );
    let banner_version = broadsheet::domain::content_hash(&format!(
        "cookie_banner\0{}",
        app.config.cookies.banner_text
    ));
    let granted = format!(
        "SELECT COUNT(*) FROM consent_events WHERE subject_kind = 'browser' AND action = 'granted' AND text_id = '{banner_version}'"
    );
    assert_eq!(
        app.scalar(&granted).await,
        2,
        "C-08: per category, with the banner version"
    );

    app.submit(
        "/cookies",
        "/cookies",
        &[("choice", "save"), ("category", "analytics")],
    )
    .await;
    let settings = app.get("/cookies").await.text().await.unwrap();
    assert!(
        settings.contains(r#"value="analytics" checked"#)
            && !settings.contains(r#"value="preferences" checked"#)
    );
    let latest = "SELECT action FROM consent_events WHERE purpose = 'cookies.preferences' ORDER BY created_at DESC, id DESC LIMIT 1";
    assert_eq!(
        app.text(latest).await.as_deref(),
        Some("withdrawn"),
        "C-07: withdrawal is recorded"
    );
    let subjects =
        "SELECT COUNT(DISTINCT subject) FROM consent_events WHERE subject_kind = 'browser'";
    assert_eq!(
        app.scalar(subjects).await,
        1,
        "one pseudonymous id per browser"
    );

    let open_redirect = app
        .submit(
            "/cookies",
            "/cookies",
            &[("choice", "reject_all"), ("return_to", "//evil.example")],
        )
        .await;
    assert_eq!(open_redirect.headers()["location"], "/");
    let no_csrf = app
        .new_browser()
        .post_form("/cookies", &[("choice", "accept_all")])
        .await;
    assert_eq!(no_csrf.status(), 403);
    let extra = app
        .submit(
            "/cookies",
            "/cookies",
            &[("choice", "accept_all"), ("admin", "1")],
        )
        .await;
    assert!(
        extra.status().is_client_error(),
        "S-02: unknown fields are refused: {}",
        extra.status()
    );
    let bogus = app
        .submit("/cookies", "/cookies", &[("choice", "everything")])
        .await;
    assert!(bogus.status().is_client_error());
    app.stop().await;
}

async fn the_privacy_page_shows_the_notice_and_its_versions(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/privacy").await.text().await.unwrap();
    assert!(first.contains("Your rights") && first.contains("Current version"));
    let version = regex_lite::Regex::new(r#"href="/privacy/([0-9a-f]{64})""#).unwrap();
    let old = version.captures(&first).unwrap()[1].to_owned();
    broadsheet::consent::register_wording(
        &app.store,
        &app.clock,
        "privacy_notice",
        "## A newer notice",
    )
    .await
    .unwrap();
    let page = app
        .get(&format!("/privacy/{old}"))
        .await
        .text()
        .await
        .unwrap();
    assert!(page.contains("Your rights"));
    assert_eq!(
        page.matches("<li><a href=\"/privacy/").count(),
        2,
        "both versions are listed"
    );
    assert_eq!(app.get("/privacy/unknown").await.status(), 404);
    app.stop().await;
}

async fn consent_receipts_carry_the_kantara_fields(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    digest_reader(&app, "receipt@example.com").await;
    let page = app.get("/account/consents").await.text().await.unwrap();
    assert!(page.contains(&app.config.signup.newsletter_consent_text));
    let href = regex_lite::Regex::new(r#"href="(/account/consents/[^"]+)""#).unwrap();
    let path = href.captures(&page).unwrap()[1].to_owned();
    let receipt: serde_json::Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(receipt["version"], "KI-CR-v1.1.0");
    assert_eq!(receipt["piiPrincipalId"], "receipt@example.com");
    assert_eq!(
        receipt["piiControllers"][0]["piiController"],
        app.config.privacy.controller_name.as_str()
    );
    assert_eq!(
        receipt["services"][0]["purposes"][0]["purpose"],
        app.config.signup.newsletter_consent_text.as_str()
    );
    assert_eq!(receipt["collectionMethod"], "signup_form");
    assert_eq!(
        app.new_browser().get(&path).await.status(),
        303,
        "only the reader's own"
    );
    app.stop().await;
}

async fn a_strangers_tick_is_not_confirmed_by_the_readers_own_link(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Someone else signs the address up and ticks the digest box ...
    app.new_browser().sign_up("victim@example.com", true).await;
    app.drain_outbox().await;
    // ... then the owner signs up without it and confirms their own link.
    app.sign_up("victim@example.com", false).await;
    app.drain_outbox().await;
    let link = support::link_path(
        &app.last_mail_to("victim@example.com").text(),
        &app.base_url,
        "confirm",
    );
    let page = app.get(&link).await.text().await.unwrap();
    assert!(!page.contains("also confirms your request for the digest"));
    assert_eq!(app.confirm(&link).await.status(), 200);
    let confirmed = "SELECT COUNT(*) FROM consent_events WHERE action = 'confirmed'";
    assert_eq!(
        app.scalar(confirmed).await,
        0,
        "L-01/L-02: no digest consent without the owner's act"
    );
    app.stop().await;
}

async fn the_suppression_key_can_live_outside_the_database(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("suppression.key");
    std::fs::write(
        &key_file,
        "a-secret-that-never-enters-the-database-0123456789\n",
    )
    .unwrap();
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.privacy.suppression_key_file = key_file.clone();
    })
    .await;
    digest_reader(&app, "keyed@example.com").await;
    app.submit(
        "/account/delete",
        "/account/delete",
        &[("password", PASSWORD)],
    )
    .await;
    let expected = broadsheet::privacy::suppression_hash(
        b"a-secret-that-never-enters-the-database-0123456789",
        "keyed@example.com",
    );
    assert_eq!(
        app.text("SELECT email_hash FROM suppressions").await,
        Some(expected)
    );
    let stored = "SELECT COUNT(*) FROM settings WHERE key = 'suppression_key'";
    assert_eq!(
        app.scalar(stored).await,
        0,
        "G-13: the key is not in the database"
    );
    app.stop().await;
}

/// Before, the key lived in the database by default, so a dump could test
/// guessed addresses against the hashes of erased readers. On SQLite it now
/// moves to a file beside the database at start; on PostgreSQL (instances
/// share one key) it moves to the file the operator names. Either way the
/// hashes made with it still match.
async fn an_older_installs_suppression_key_moves_out_of_the_database(backend: Backend) {
    use broadsheet::{config::Config, store};
    let database = support::TestDatabase::create(backend).await;
    let mut config = Config::default();
    config.database.url = broadsheet::config::Secret::new(database.url.clone());
    let db = store::Store::connect(&config.database).await.unwrap();
    db.migrate().await.unwrap();
    let old = "an-older-installs-key-kept-in-the-database-0123";
    store::settings::get_or_create(&db, "suppression_key", || old.to_owned())
        .await
        .unwrap();
    let in_database = || async { store::settings::get(&db, "suppression_key").await.unwrap() };
    let dir = tempfile::tempdir().unwrap();
    let file = match backend {
        Backend::Sqlite => store::sqlite_path(&database.url)
            .unwrap()
            .with_extension("suppression-key"),
        Backend::Postgres => {
            // Left alone without a file named: every instance must share it.
            let key = broadsheet::privacy::suppression_key(&db, &config)
                .await
                .unwrap();
            assert_eq!(key, old);
            assert_eq!(in_database().await.as_deref(), Some(old));
            config.privacy.suppression_key_file = dir.path().join("suppression.key");
            config.privacy.suppression_key_file.clone()
        }
    };
    assert!(!file.exists());
    let key = broadsheet::privacy::suppression_key(&db, &config)
        .await
        .unwrap();
    assert_eq!(key, old, "the hashes made with it still match");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), old);
    assert_eq!(in_database().await, None, "a dump no longer holds it");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "readable by its owner only");
    }
    // The next start reads the file.
    let again = broadsheet::privacy::suppression_key(&db, &config)
        .await
        .unwrap();
    assert_eq!(again, old);
    // Lost (a restore without it, an instance it was not copied to), it is
    // never replaced by a new one; nor is a different one accepted.
    std::fs::remove_file(&file).unwrap();
    let missing = broadsheet::privacy::suppression_key(&db, &config)
        .await
        .unwrap_err();
    assert!(format!("{missing:#}").contains("is missing"), "{missing:#}");
    assert!(!file.exists());
    std::fs::write(&file, "another-key-that-hashed-nothing-here-0123456789\n").unwrap();
    let other = broadsheet::privacy::suppression_key(&db, &config)
        .await
        .unwrap_err();
    assert!(format!("{other:#}").contains("not the one"), "{other:#}");
    db.close().await;
}
