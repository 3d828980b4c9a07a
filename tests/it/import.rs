//! Importing readers from CSV.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::consent;
use support::{Backend, TestApp};

storage_tests!(
    an_import_adds_consenting_readers_reports_bad_lines_and_is_idempotent,
    an_import_never_brings_back_an_erased_or_withdrawn_reader,
    an_import_stores_awkward_values_exactly_and_leaves_a_withdrawn_reader_withdrawn,
    an_import_of_several_batches_counts_each_reader_once,
);

const FILE: &str = "email,name,topics,consented_at,source
Ada@Example.com,Ada,history;city,2025-03-01T09:30:00Z,old signup form
not-an-address,Bob,,2025-03-01T09:30:00Z,old signup form
carol@example.com,,,yesterday,old signup form
dan@example.com,Dan,,2025-04-01T10:00:00+02:00
erin@example.com,,city,2025-05-01T00:00:00Z,fair stand
";

async fn an_import_adds_consenting_readers_reports_bad_lines_and_is_idempotent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let report = app.import_csv(FILE).await;
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

    let again = app.import_csv(FILE).await;
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
    let key = broadsheet::privacy::suppression_key(&app.store, &app.config)
        .await
        .unwrap();
    broadsheet::privacy::erase(&app.store, &app.clock, key.as_bytes(), &id, None)
        .await
        .unwrap();

    let report = app.import_csv(
        "email,name,topics,consented_at,source\nleft@example.com,,,2025-01-01T00:00:00Z,x\nErased@example.com,,,2025-01-01T00:00:00Z,x\n",
    )
    .await;
    assert_eq!(
        (report.imported, report.existing, report.suppressed),
        (0, 1, 1)
    );
    let future = app
        .import_csv(
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

/// A quote, comma and backslash in a name; `\N` (COPY's NULL) as a whole
/// name; a tab, newline and backslash in a source; non-ASCII in an address,
/// a name and a topic; an address twice; a reader who withdrew.
const AWKWARD: &str = "email,name,topics,consented_at,source
Zoë.O'Brien@Exämple.ORG,\"Zoë \"\"Zed\"\" O\\Brien, Jr.\",\"café;back\\slash;a,b;\"\"quoted\"\"\",2025-03-01T09:30:00.123Z,\"fair\tstand\nnorth \\N side\"
nul@example.com,\\N,,2025-03-02T00:00:00Z,
twice@example.com,First,,2025-03-03T00:00:00Z,x
twice@example.com,Second,later,2025-03-04T00:00:00Z,x
left@example.com,New Name,history,2025-01-01T00:00:00Z,x
";

/// (subject kind, purpose, action, wording, source, source detail, time)
type Consent = (String, String, String, String, String, Option<String>, i64);

/// A reader as stored: the subscriber row, the account (username, password
/// hash), the consent ledger oldest first, and the topics sorted.
#[derive(Debug, PartialEq)]
struct Stored {
    email: String,
    name: Option<String>,
    status: String,
    confirmed_at: Option<i64>,
    account: Option<(String, Option<String>)>,
    consents: Vec<Consent>,
    topics: Vec<String>,
}

async fn stored(app: &TestApp, canonical: &str) -> Stored {
    let pool = app.store.pool();
    let (id, email, name, status, confirmed_at): (
        String,
        String,
        Option<String>,
        String,
        Option<i64>,
    ) = sqlx::query_as(
        "SELECT id, email, name, status, confirmed_at FROM subscribers WHERE email_canonical = $1",
    )
    .bind(canonical)
    .fetch_one(pool)
    .await
    .unwrap();
    let account: Option<(String, Option<String>)> =
        sqlx::query_as("SELECT username, password_hash FROM accounts WHERE subscriber_id = $1")
            .bind(id.as_str())
            .fetch_optional(pool)
            .await
            .unwrap();
    let consents: Vec<Consent> = sqlx::query_as(
        "SELECT subject_kind, purpose, action, text_id, source, source_detail, created_at
         FROM consent_events WHERE subject = $1 ORDER BY created_at, id",
    )
    .bind(id.as_str())
    .fetch_all(pool)
    .await
    .unwrap();
    let mut topics: Vec<String> =
        sqlx::query_scalar("SELECT category FROM preference_topics WHERE subscriber_id = $1")
            .bind(id.as_str())
            .fetch_all(pool)
            .await
            .unwrap();
    topics.sort();
    Stored {
        email,
        name,
        status,
        confirmed_at,
        account,
        consents,
        topics,
    }
}

fn ms(rfc3339: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(rfc3339)
        .unwrap()
        .timestamp_millis()
}

/// A reader as a first import stores them: confirmed when they consented,
/// an account without a password, one consent event, no topics.
fn imported(
    wording: &str,
    (email, canonical): (&str, &str),
    name: Option<&str>,
    detail: &str,
    at: i64,
) -> Stored {
    Stored {
        email: email.to_owned(),
        name: name.map(str::to_owned),
        status: "confirmed".to_owned(),
        confirmed_at: Some(at),
        account: Some((canonical.to_owned(), None)),
        consents: vec![(
            "subscriber".to_owned(),
            "newsletter".to_owned(),
            "confirmed".to_owned(),
            wording.to_owned(),
            "import".to_owned(),
            Some(detail.to_owned()),
            at,
        )],
        topics: Vec::new(),
    }
}

/// A confirmed digest reader who then unsubscribed with one click.
async fn withdrawn_reader(app: &TestApp, email: &str) -> Stored {
    app.confirmed_reader(email, true).await;
    let link = app
        .reader_link(email, broadsheet::domain::LinkPurpose::Unsubscribe)
        .await;
    app.post_form(&link, &[("List-Unsubscribe", "One-Click")])
        .await;
    let reader = stored(app, email).await;
    assert_eq!(
        reader.consents.last().map(|c| c.2.as_str()),
        Some("withdrawn")
    );
    reader
}

async fn an_import_stores_awkward_values_exactly_and_leaves_a_withdrawn_reader_withdrawn(
    backend: Backend,
) {
    let app = TestApp::spawn(backend).await;
    let left = withdrawn_reader(&app, "left@example.com").await;
    let report = app.import_csv(AWKWARD).await;
    assert!(report.invalid.is_empty(), "{:?}", report.invalid);
    assert_eq!(
        (report.imported, report.existing, report.suppressed),
        (3, 2, 0)
    );
    let wording = consent::register_wording(
        &app.store,
        &app.clock,
        consent::NEWSLETTER,
        &app.config.signup.newsletter_consent_text,
    )
    .await
    .unwrap()
    .id;

    let zoe = ("Zoë.O'Brien@Exämple.ORG", "Zoë.O'Brien@xn--exmple-cua.org");
    let name = Some("Zoë \"Zed\" O\\Brien, Jr.");
    let detail = "legacy.csv: fair\tstand\nnorth \\N side";
    let mut expected = imported(&wording, zoe, name, detail, ms("2025-03-01T09:30:00.123Z"));
    expected.topics = ["\"quoted\"", "a,b", "back\\slash", "café"]
        .map(str::to_owned)
        .to_vec();
    assert_eq!(stored(&app, zoe.1).await, expected);

    let nul = ("nul@example.com", "nul@example.com");
    let expected = imported(
        &wording,
        nul,
        Some("\\N"),
        "legacy.csv",
        ms("2025-03-02T00:00:00Z"),
    );
    assert_eq!(stored(&app, nul.1).await, expected, "a name, not NULL");

    let twice = ("twice@example.com", "twice@example.com");
    let at = ms("2025-03-03T00:00:00Z");
    let expected = imported(&wording, twice, Some("First"), "legacy.csv: x", at);
    assert_eq!(stored(&app, twice.1).await, expected, "the first row wins");

    assert_eq!(
        stored(&app, "left@example.com").await,
        left,
        "a known reader is left as they were: a withdrawal stays a withdrawal"
    );
    let again = app.import_csv(AWKWARD).await;
    assert_eq!((again.imported, again.existing), (0, 5), "idempotent");
    let imports = "SELECT COUNT(*) FROM consent_events WHERE source = 'import'";
    assert_eq!(app.scalar(imports).await, 3);
    app.stop().await;
}

/// More rows than one batch on either database (1,000 on SQLite, 10,000 on
/// PostgreSQL), the first address again at the end: each batch sees only
/// its own rows, and the first row of an address wins. On PostgreSQL the
/// second batch starts while the first, which holds that address, is being
/// written, so the repeated row is kept back and written last.
async fn an_import_of_several_batches_counts_each_reader_once(backend: Backend) {
    const READERS: usize = 10_500;
    let app = TestApp::spawn(backend).await;
    let csv: String = std::iter::once("email,name,topics,consented_at,source".to_owned())
        .chain(
            (0..READERS).map(|n| format!("r{n}@example.com,R{n},t{},2025-01-01T00:00:00Z,", n % 3)),
        )
        .chain(std::iter::once(
            "r0@example.com,Again,,2025-01-02T00:00:00Z,".to_owned(),
        ))
        .collect::<Vec<_>>()
        .join("\n");
    let report = app.import_csv(&csv).await;
    assert!(report.invalid.is_empty(), "{:?}", report.invalid);
    assert_eq!((report.imported, report.existing), (READERS as u64, 1));
    let count = |table: &str| format!("SELECT COUNT(*) FROM {table}");
    for table in [
        "subscribers",
        "accounts",
        "consent_events",
        "preference_topics",
    ] {
        assert_eq!(app.scalar(&count(table)).await, READERS as i64, "{table}");
    }
    let name = "SELECT name FROM subscribers WHERE email_canonical = 'r0@example.com'";
    assert_eq!(app.text(name).await.as_deref(), Some("R0"));
    app.stop().await;
}
