//! Faults from outside: the database going away for a while. Requests get
//! a clear 503, the worker's batches fail without panicking, and once the
//! database is back the same requests succeed, each applied once.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::{app::Role, config::Secret, editors::Role as EditorRole};
use sqlx::{Connection, Executor};
use support::{Backend, TestApp, hidden_field, relay::Relay};
use tokio_util::sync::CancellationToken;

storage_tests!(
    the_database_going_away_answers_503_and_loses_nothing,
    transactions_dropped_while_they_begin_leave_no_connection_in_one,
);

/// How a test takes the database away: on SQLite, another connection holds
/// the file's write lock (as a backup tool or a second process would); on
/// PostgreSQL, the connection to the server is cut.
enum Outage {
    SqliteLock(sqlx::SqliteConnection),
    Cut(Relay),
}

/// The address of the PostgreSQL server the tests use.
async fn postgres_server() -> std::net::SocketAddr {
    let url = reqwest::Url::parse(&std::env::var("BROADSHEET_TEST_POSTGRES_URL").unwrap()).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap_or(5432));
    tokio::net::lookup_host(host).await.unwrap().next().unwrap()
}

async fn the_database_going_away_answers_503_and_loses_nothing(backend: Backend) {
    let relay = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(Relay::start(postgres_server().await).await),
    };
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        if let Some(relay) = &relay {
            let mut url = reqwest::Url::parse(config.database.url.expose()).unwrap();
            url.set_ip_host(relay.addr.ip()).unwrap();
            url.set_port(Some(relay.addr.port())).unwrap();
            config.database.url = Secret::new(url.to_string());
        }
    })
    .await;
    assert_eq!(app.sign_up("before@example.com", false).await.status(), 200);
    let bearer = app.api_token("faults", EditorRole::Editor).await;
    // The reader has the form open when the database goes away.
    let form = app.get("/subscribe").await.text().await.unwrap();
    let (csrf, version) = (
        hidden_field(&form, "csrf"),
        hidden_field(&form, "consent_version"),
    );
    let signup = [
        ("email", "during@example.com"),
        ("csrf", csrf.as_str()),
        ("consent_version", version.as_str()),
    ];
    let create_article = || {
        app.client
            .post(app.url("/api/v1/articles"))
            .bearer_auth(&bearer)
            .header("idempotency-key", "outage-1")
            .json(&serde_json::json!({ "title": "Written in an outage", "body_markdown": "Text." }))
            .send()
    };

    let outage = match relay {
        None => {
            let mut lock = sqlx::SqliteConnection::connect(app.config.database.url.expose())
                .await
                .unwrap();
            lock.execute("BEGIN IMMEDIATE").await.unwrap();
            Outage::SqliteLock(lock)
        }
        Some(relay) => {
            relay.cut();
            Outage::Cut(relay)
        }
    };

    let page = app.post_form("/subscribe", &signup).await;
    assert_eq!(page.status(), 503);
    assert_eq!(page.headers()["retry-after"], "30");
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Temporarily unavailable")
    );
    let api = create_article().await.unwrap();
    assert_eq!(api.status(), 503);
    assert_eq!(api.headers()["retry-after"], "30");
    let body: serde_json::Value = api.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unavailable", "{body}");
    let ready = app.get("/readyz").await;
    match &outage {
        // Readers of a WAL database are not blocked by its writer: the
        // site still reads, so it is still ready.
        Outage::SqliteLock(_) => assert_eq!(ready.status(), 200),
        Outage::Cut(_) => {
            assert_eq!(ready.status(), 503);
            assert!(ready.text().await.unwrap().contains("unreachable"));
        }
    }
    // The worker's batch fails and the next one is tried later.
    assert!(
        app.worker
            .deliver_batch(&CancellationToken::new())
            .await
            .is_err()
    );

    match outage {
        Outage::SqliteLock(mut lock) => lock.execute("ROLLBACK").await.map(drop).unwrap(),
        Outage::Cut(relay) => relay.mend(),
    }
    assert_eq!(app.get("/readyz").await.status(), 200);
    assert_eq!(app.post_form("/subscribe", &signup).await.status(), 200);
    assert_eq!(create_article().await.unwrap().status(), 201);
    assert_eq!(
        create_article().await.unwrap().status(),
        201,
        "the same key replays"
    );

    assert_eq!(app.drain_outbox().await.sent, 2, "both confirmations");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 2);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 1);
    let mut recipients: Vec<_> = app.received().iter().flat_map(|m| m.to.clone()).collect();
    recipients.sort();
    assert_eq!(recipients, ["<before@example.com>", "<during@example.com>"]);
    app.stop().await;
}

/// A request dropped while its transaction's BEGIN is in flight (the client
/// hung up) once returned a pooled connection inside a transaction nobody
/// knew of: later writes on it were never committed and its locks held.
/// Here transactions are dropped after one to sixteen polls, the runtime
/// moving on between them, then writes through the pool must be visible
/// from a connection of another's, and no connection may be left in one.
async fn transactions_dropped_while_they_begin_leave_no_connection_in_one(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for attempt in 0..1000 {
        let mut begin = Box::pin(app.store.begin());
        for _ in 0..=attempt % 16 {
            let polled = std::future::poll_fn(|cx| {
                std::task::Poll::Ready(begin.as_mut().poll(cx).is_ready())
            });
            if polled.await {
                break;
            }
            tokio::task::yield_now().await;
        }
    }
    const WRITES: i64 = 20;
    for n in 0..WRITES {
        let write = sqlx::query("INSERT INTO settings (key, value) VALUES ($1, 'probe')")
            .bind(format!("probe-{n}"))
            .execute(app.store.pool());
        let written = tokio::time::timeout(std::time::Duration::from_secs(10), write).await;
        written.expect("a write is never blocked").unwrap();
    }
    let url = app.config.database.url.expose();
    let count = "SELECT COUNT(*) FROM settings WHERE value = 'probe'";
    let visible: i64 = match backend {
        Backend::Sqlite => {
            let mut other = sqlx::SqliteConnection::connect(url).await.unwrap();
            sqlx::query_scalar(count)
                .fetch_one(&mut other)
                .await
                .unwrap()
        }
        Backend::Postgres => {
            let mut other = sqlx::PgConnection::connect(url).await.unwrap();
            let visible = sqlx::query_scalar(count)
                .fetch_one(&mut other)
                .await
                .unwrap();
            assert_eq!(
                app.pg_transactions_left_open().await,
                0,
                "connections left inside a transaction"
            );
            visible
        }
    };
    assert_eq!(visible, WRITES, "every write committed");
    app.stop().await;
}
