//! Importing readers from CSV.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::{consent, import};
use support::{Backend, TestApp};

storage_tests!(
    an_import_adds_consenting_readers_reports_bad_lines_and_is_idempotent,
    an_import_never_brings_back_an_erased_or_withdrawn_reader,
);

async fn run(app: &TestApp, csv: &str) -> import::ImportReport {
    let wording = consent::register_wording(
        &app.store,
        &app.clock,
        consent::NEWSLETTER,
        &app.config.signup.newsletter_consent_text,
    )
    .await
    .unwrap();
    let key = broadsheet::store::settings::secret(&app.store, "suppression_key")
        .await
        .unwrap();
    import::import(
        &app.store,
        csv.as_bytes(),
        "legacy.csv",
        &wording.id,
        key.as_bytes(),
        |_| {},
    )
    .await
    .unwrap()
}

const FILE: &str = "email,name,topics,consented_at,source
Ada@Example.com,Ada,history;city,2025-03-01T09:30:00Z,old signup form
not-an-address,Bob,,2025-03-01T09:30:00Z,old signup form
carol@example.com,,,yesterday,old signup form
dan@example.com,Dan,,2025-04-01T10:00:00+02:00
erin@example.com,,city,2025-05-01T00:00:00Z,fair stand
";

async fn an_import_adds_consenting_readers_reports_bad_lines_and_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let report = run(&app, FILE).await;
    assert_eq!(report.imported, 2);
    let lines: Vec<u64> = report.invalid.iter().map(|(line, _)| *line).collect();
    assert_eq!(lines, [3, 4, 5], "{:?}", report.invalid);
    assert!(report.invalid[0].1.contains("email address"));
    assert!(report.invalid[1].1.contains("RFC 3339"));
    assert!(report.invalid[2].1.contains("columns"));

    let (source, detail, at): (String, String, i64) = sqlx::query_as(
        "SELECT e.source, e.source_detail, e.created_at FROM consent_events e
         JOIN subscribers s ON s.id = e.subject WHERE s.email_canonical = 'Ada@example.com'",
    )
    .fetch_one(app.store.pool())
    .await
    .unwrap();
    assert_eq!(
        (source.as_str(), detail.as_str()),
        ("import", "legacy.csv: old signup form")
    );
    assert_eq!(
        at,
        chrono::DateTime::parse_from_rfc3339("2025-03-01T09:30:00Z")
            .unwrap()
            .timestamp_millis()
    );
    let topics = "SELECT COUNT(*) FROM preference_topics";
    assert_eq!(app.scalar(topics).await, 3);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM subscribers WHERE status = 'confirmed'")
            .await,
        2
    );

    let again = run(&app, FILE).await;
    assert_eq!((again.imported, again.existing), (0, 2), "idempotent");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM consent_events").await, 2);
    app.stop().await;
}

async fn an_import_never_brings_back_an_erased_or_withdrawn_reader(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.confirmed_reader("left@example.com", true).await;
    let link = app
        .reader_link(
            "left@example.com",
            broadsheet::domain::LinkPurpose::Unsubscribe,
        )
        .await;
    app.post_form(&link, &[("List-Unsubscribe", "One-Click")])
        .await;
    app.confirmed_reader("erased@example.com", true).await;
    let id = app.subscriber_id("erased@example.com").await;
    let key = broadsheet::store::settings::secret(&app.store, "suppression_key")
        .await
        .unwrap();
    broadsheet::privacy::erase(&app.store, &app.clock, key.as_bytes(), &id, None)
        .await
        .unwrap();

    let report = run(
        &app,
        "email,name,topics,consented_at,source\nleft@example.com,,,2025-01-01T00:00:00Z,x\nErased@example.com,,,2025-01-01T00:00:00Z,x\n",
    )
    .await;
    assert_eq!(
        (report.imported, report.existing, report.suppressed),
        (0, 1, 1)
    );
    let future = run(
        &app,
        "email,name,topics,consented_at,source\nlater@example.com,,,2999-01-01T00:00:00Z,x\n",
    )
    .await;
    assert_eq!(future.imported, 0);
    assert!(
        future.invalid[0].1.contains("future"),
        "{:?}",
        future.invalid
    );
    let latest = "SELECT action FROM consent_events WHERE subject_kind = 'subscriber' ORDER BY created_at DESC, id DESC LIMIT 1";
    assert_eq!(
        app.text(latest).await.as_deref(),
        Some("withdrawn"),
        "a withdrawal stays a withdrawal"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 1);
    app.stop().await;
}
