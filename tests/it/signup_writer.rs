//! Signups written in groups by the signup writer: many at once with
//! duplicates among them, one failing inside a group, callers hanging up.
//! Each leaves the database as signups written one at a time would.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::time::Duration;

use broadsheet::{
    consent::Evidence,
    domain::{EmailAddress, content_hash},
    signup::{Signup, SignupOutcome, SignupRequest},
};
use sqlx::{Connection, Executor};
use support::{Backend, TestApp, hidden_field, link_path};
use tokio::task::JoinSet;

storage_tests!(
    signups_fired_at_once_store_each_reader_once_with_their_emails,
    a_signup_failing_inside_a_group_leaves_the_others_committed,
    callers_hanging_up_mid_flight_leave_every_reader_whole,
);

/// Readers whose count of usable confirmation links is not one (D-05).
const NOT_ONE_LINK: &str = "SELECT COUNT(*) FROM subscribers s
     WHERE (SELECT COUNT(*) FROM tokens t WHERE t.subscriber_id = s.id AND t.used_at IS NULL) <> 1";

/// The signup form as one browser loaded it: every request of a test
/// posts its CSRF token (and carries its cookie, in the app's client).
struct Form {
    csrf: String,
    version: String,
}

impl Form {
    async fn load(app: &TestApp) -> Self {
        let page = app.get("/subscribe").await.text().await.unwrap();
        Self {
            csrf: hidden_field(&page, "csrf"),
            version: hidden_field(&page, "consent_version"),
        }
    }

    fn fields(&self, email: &str, newsletter: bool) -> Vec<(&'static str, String)> {
        let mut fields = vec![
            ("email", email.to_owned()),
            ("csrf", self.csrf.clone()),
            ("consent_version", self.version.clone()),
        ];
        if newsletter {
            fields.push(("newsletter", "yes".to_owned()));
        }
        fields
    }
}

/// Posts the signup form: the answer's status, `None` if none came.
async fn post(
    client: reqwest::Client,
    url: String,
    fields: Vec<(&'static str, String)>,
) -> Option<u16> {
    let response = client.post(url).form(&fields).send().await.ok()?;
    Some(response.status().as_u16())
}

/// Signs `email` up through the app's signup service, as the form's
/// handler does once the fields are parsed: the address, and how it went.
async fn subscribe(
    signup: Signup,
    email: String,
    wording: Option<String>,
) -> (String, Result<SignupOutcome, String>) {
    let request = SignupRequest {
        email: EmailAddress::parse(&email).unwrap(),
        name: None,
        newsletter_wording: wording,
        evidence: Evidence::default(),
    };
    let result = signup
        .subscribe(&request)
        .await
        .map_err(|error| format!("{error:#}"));
    (email, result)
}

/// Another connection holding what the signup writer needs next, as a
/// backup tool or another instance might: SQLite's write lock, or the
/// subscribers table on PostgreSQL.
enum Hold {
    Sqlite(sqlx::SqliteConnection),
    Postgres(sqlx::PgConnection),
}

impl Hold {
    async fn take(app: &TestApp, backend: Backend) -> Self {
        let url = app.config.database.url.expose();
        match backend {
            Backend::Sqlite => {
                let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
                conn.execute("BEGIN IMMEDIATE").await.unwrap();
                Self::Sqlite(conn)
            }
            Backend::Postgres => {
                let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
                conn.execute("BEGIN; LOCK TABLE subscribers IN EXCLUSIVE MODE")
                    .await
                    .unwrap();
                Self::Postgres(conn)
            }
        }
    }

    async fn release(self) {
        match self {
            Self::Sqlite(mut conn) => conn.execute("ROLLBACK").await.map(drop).unwrap(),
            Self::Postgres(mut conn) => conn.execute("ROLLBACK").await.map(drop).unwrap(),
        }
    }
}

/// 60 new addresses, and 4 addresses sent 5 times each, all fired at
/// once, open-loop: each reader is stored once, a new address gets one
/// confirmation and a repeated one three, the day's limit (D-09), and only
/// the newest of those links works (D-05), however the groups fell.
async fn signups_fired_at_once_store_each_reader_once_with_their_emails(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = Form::load(&app).await;
    let mut requests = JoinSet::new();
    for n in 0..60 {
        let fields = form.fields(&format!("reader-{n}@example.net"), n % 2 == 0);
        requests.spawn(post(app.client.clone(), app.url("/subscribe"), fields));
        if n % 3 == 0 {
            let fields = form.fields(&format!("twin-{}@example.net", n / 3 % 4), true);
            requests.spawn(post(app.client.clone(), app.url("/subscribe"), fields));
        }
    }
    let statuses = requests.join_all().await;
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");

    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 64);
    let uneven = "SELECT COUNT(*) FROM subscribers s
         WHERE (SELECT COUNT(*) FROM outbox o WHERE o.subscriber_id = s.id AND o.template = 'confirm')
               <> CASE WHEN s.email_canonical LIKE 'twin-%' THEN 3 ELSE 1 END";
    assert_eq!(app.scalar(uneven).await, 0, "one confirmation, or three");
    assert_eq!(app.scalar(NOT_ONE_LINK).await, 0, "D-05");
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM consent_events").await,
        30 + 20,
        "one granted event per signup with the box ticked"
    );

    assert_eq!(app.drain_outbox().await.sent, 60 + 4 * 3);
    let links: Vec<String> = app
        .received()
        .iter()
        .filter(|mail| mail.to == ["<twin-2@example.net>"])
        .map(|mail| link_path(&mail.text(), &app.base_url, "confirm"))
        .collect();
    assert_eq!(links.len(), 3);
    let mut usable = 0;
    for link in &links {
        if app.get(link).await.status() == 200 {
            usable += 1;
        }
    }
    assert_eq!(usable, 1, "only the newest link works");
    app.stop().await;
}

/// Signups queue behind one that waits for a lock another connection
/// holds, then are written as one group. One of them names a consent
/// wording no version has, which the database refuses: its caller gets
/// the error and nothing of it is kept, while the others commit.
async fn a_signup_failing_inside_a_group_leaves_the_others_committed(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let wording = content_hash(&format!(
        "newsletter\0{}",
        app.config.signup.newsletter_consent_text
    ));
    let sign_up = |email: &str, wording: &str| {
        subscribe(
            app.signup.clone(),
            email.to_owned(),
            Some(wording.to_owned()),
        )
    };
    let hold = Hold::take(&app, backend).await;
    let mut signups = JoinSet::new();
    // The writer takes this one alone and waits on the lock with it.
    signups.spawn(sign_up("first@example.com", &wording));
    tokio::time::sleep(Duration::from_millis(200)).await;
    for n in 0..3 {
        signups.spawn(sign_up(&format!("before-{n}@example.com"), &wording));
    }
    signups.spawn(sign_up("broken@example.com", "no-such-wording"));
    for n in 0..3 {
        signups.spawn(sign_up(&format!("after-{n}@example.com"), &wording));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    hold.release().await;

    for (email, result) in signups.join_all().await {
        if email == "broken@example.com" {
            let error = result.unwrap_err();
            assert!(error.contains("consent"), "{error}");
        } else {
            assert_eq!(result, Ok(SignupOutcome::Created), "{email}");
        }
    }
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 7);
    let broken = "SELECT COUNT(*) FROM subscribers WHERE email_canonical = 'broken@example.com'";
    assert_eq!(app.scalar(broken).await, 0, "rolled back to its savepoint");
    for table in ["consent_events", "tokens", "outbox"] {
        let count = app.scalar(&format!("SELECT COUNT(*) FROM {table}")).await;
        assert_eq!(count, 7, "{table}");
    }
    assert_eq!(app.sign_up("broken@example.com", true).await.status(), 200);
    assert_eq!(app.drain_outbox().await.sent, 8);
    app.stop().await;
}

/// 90 signups, some addresses several times, two thirds of them from
/// clients that hang up after 1 to 15 ms or whose tasks are aborted while
/// the writer works. The rest are answered; whatever was written is whole
/// (each reader has a confirmation, at most three, and one usable link);
/// no connection is left in a transaction, and the site goes on.
async fn callers_hanging_up_mid_flight_leave_every_reader_whole(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let form = Form::load(&app).await;
    let (mut answered, mut hung_up, mut aborted) = (JoinSet::new(), JoinSet::new(), Vec::new());
    let mut waited_for = Vec::new();
    for n in 0..90_u64 {
        let email = if n % 5 == 0 {
            format!("shared-{}@example.net", n % 4)
        } else {
            format!("reader-{n}@example.net")
        };
        let request = post(
            app.client.clone(),
            app.url("/subscribe"),
            form.fields(&email, n % 2 == 0),
        );
        match n % 3 {
            0 => {
                answered.spawn(request);
                waited_for.push(email);
            }
            1 => {
                let patience = Duration::from_millis(1 + n % 15);
                hung_up.spawn(async move { tokio::time::timeout(patience, request).await.ok() });
            }
            _ => aborted.push(tokio::spawn(request)),
        }
    }
    tokio::time::sleep(Duration::from_millis(5)).await;
    for task in &aborted {
        task.abort();
    }
    let statuses = answered.join_all().await;
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    hung_up.join_all().await;
    // What the server still holds of the others finishes, or is dropped.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(app.sign_up("last@example.net", false).await.status(), 200);

    for email in &waited_for {
        app.subscriber_id(email).await;
    }
    let whole = [
        (
            "a reader without a confirmation",
            "SELECT COUNT(*) FROM subscribers s WHERE NOT EXISTS
               (SELECT 1 FROM outbox o WHERE o.subscriber_id = s.id AND o.template = 'confirm')",
        ),
        (
            "a reader past the day's confirmations",
            "SELECT COUNT(*) FROM subscribers s WHERE 3 <
               (SELECT COUNT(*) FROM outbox o WHERE o.subscriber_id = s.id AND o.template = 'confirm')",
        ),
        ("a reader without one usable link", NOT_ONE_LINK),
        (
            "a link without its email",
            "SELECT COUNT(*) FROM tokens t WHERE NOT EXISTS
               (SELECT 1 FROM outbox o WHERE o.id = t.outbox_id AND o.subscriber_id = t.subscriber_id)",
        ),
        (
            "a consent event of no reader",
            "SELECT COUNT(*) FROM consent_events e WHERE NOT EXISTS
               (SELECT 1 FROM subscribers s WHERE s.id = e.subject)",
        ),
    ];
    for (what, sql) in whole {
        assert_eq!(app.scalar(sql).await, 0, "{what}");
    }
    if backend == Backend::Postgres {
        assert_eq!(
            app.pg_transactions_left_open().await,
            0,
            "connections left inside a transaction"
        );
    }
    app.drain_outbox().await;
    let confirm = link_path(
        &app.last_mail_to("last@example.net").text(),
        &app.base_url,
        "confirm",
    );
    assert_eq!(app.confirm(&confirm).await.status(), 200);
    app.stop().await;
}
