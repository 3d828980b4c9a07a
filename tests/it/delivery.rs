//! The durable outbox: retries while SMTP is away, permanent failures, the
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test
//! served worker, the file transport, and the health probes.

use crate::support;

use std::time::Duration;

use broadsheet::{
    app::Role,
    config::MailTransport,
    store::{
        outbox,
        queue::{self, Finish, Rows},
    },
};
use support::{Backend, Reply, SmtpServer, TestApp, free_port};
use tokio_util::sync::CancellationToken;

storage_tests!(
    mail_waits_while_smtp_is_down_and_arrives_exactly_once,
    a_5xx_reply_is_recorded_failed_and_never_retried,
    a_4xx_reply_is_retried_later,
    the_served_worker_sends_without_being_asked,
    the_file_transport_writes_eml_files,
    health_and_readiness_answer_json,
    a_crashed_workers_lease_expires_and_another_worker_sends,
    a_stopping_worker_hands_back_what_it_has_not_sent,
    a_worker_changes_only_the_rows_it_still_holds,
);

async fn mail_waits_while_smtp_is_down_and_arrives_exactly_once(backend: Backend) {
    let port = free_port().await;
    let app = TestApp::spawn_with(backend, Role::Web, |config| config.smtp.port = port).await;
    assert_eq!(
        app.sign_up("patient@example.com", false).await.status(),
        200
    );

    let first = app.drain_outbox().await;
    assert_eq!(
        (first.sent, first.retried),
        (0, 1),
        "connection refused is transient"
    );
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 1);
    assert!(app.text("SELECT last_error FROM outbox").await.is_some());

    let smtp = SmtpServer::start_on(port).await;
    assert_eq!(
        app.drain_outbox().await.claimed,
        0,
        "not before the back-off has passed"
    );
    app.clock.advance(app.config.delivery.retry_max);
    assert_eq!(app.drain_outbox().await.sent, 1);
    app.clock.advance(Duration::from_secs(24 * 3600));
    assert_eq!(app.drain_outbox().await.claimed, 0);
    assert_eq!(smtp.received().len(), 1, "exactly once");
    assert_eq!(
        app.text("SELECT status FROM outbox").await.as_deref(),
        Some("sent")
    );
    smtp.stop();
    app.stop().await;
}

async fn a_5xx_reply_is_recorded_failed_and_never_retried(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.smtp
        .as_ref()
        .unwrap()
        .set_rcpt_reply(Reply::Refuse("550 5.1.1 no such user"));
    app.sign_up("gone@example.com", false).await;
    let outcome = app.drain_outbox().await;
    assert_eq!((outcome.sent, outcome.failed, outcome.retried), (0, 1, 0));
    assert_eq!(
        app.text("SELECT status FROM outbox").await.as_deref(),
        Some("failed")
    );
    assert!(
        app.text("SELECT last_error FROM outbox")
            .await
            .unwrap()
            .contains("550")
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE context <> '{}'")
            .await,
        0,
        "the link is not kept"
    );
    app.smtp.as_ref().unwrap().set_rcpt_reply(Reply::Accept);
    app.clock.advance(Duration::from_secs(7 * 24 * 3600));
    assert_eq!(
        app.drain_outbox().await.claimed,
        0,
        "E-21: 5xx is never retried"
    );
    assert!(app.received().is_empty());
    app.stop().await;
}

async fn a_4xx_reply_is_retried_later(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_rcpt_reply(Reply::Refuse("451 4.3.0 try again later"));
    app.sign_up("busy@example.com", false).await;
    assert_eq!(app.drain_outbox().await.retried, 1);
    smtp.set_rcpt_reply(Reply::Accept);
    app.clock.advance(app.config.delivery.retry_max);
    assert_eq!(app.drain_outbox().await.sent, 1);
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 2);
    app.stop().await;
}

async fn the_served_worker_sends_without_being_asked(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::All, |_| {}).await;
    app.sign_up("background@example.com", false).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while app.received().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker sent nothing in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        app.received()[0].subject(),
        "Please confirm your subscription"
    );
    app.stop().await;
}

async fn the_file_transport_writes_eml_files(backend: Backend) {
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.mail.transport = MailTransport::File;
    })
    .await;
    let addresses = [
        "files@example.com",
        "second@example.com",
        "third@example.com",
    ];
    for address in addresses {
        app.sign_up(address, false).await;
        assert_eq!(app.drain_outbox().await.sent, 1);
    }
    let mut files: Vec<_> = std::fs::read_dir(&app.config.mail.file_dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
        .collect();
    assert_eq!(files.len(), 3);
    // Named so that `ls` lists them in the order they were sent.
    files.sort();
    for (file, address) in files.iter().zip(addresses) {
        let raw = std::fs::read(file).unwrap();
        let message = mail_parser::MessageParser::default().parse(&raw).unwrap();
        assert_eq!(message.subject(), Some("Please confirm your subscription"));
        let to = message.to().unwrap().first().unwrap().address().unwrap();
        assert_eq!(to, address, "{files:?}");
        let text = message.body_text(0).unwrap().into_owned();
        support::link_path(&text, &app.base_url, "confirm");
    }
    app.stop().await;
}

async fn health_and_readiness_answer_json(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let health = app.get("/healthz").await;
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), r#"{"status":"ok"}"#);
    let ready = app.get("/readyz").await;
    assert_eq!(ready.status(), 200);
    assert!(ready.text().await.unwrap().contains(r#""database":"ok""#));
    let missing = app.get("/no/such/page").await;
    assert_eq!(missing.status(), 404);
    let page = missing.text().await.unwrap();
    assert!(
        page.contains(r#"class="masthead""#),
        "the site's own 404: {page}"
    );
    assert!(
        !page.contains("cookie-banner"),
        "no form that could not be sent"
    );
    app.stop().await;
}

async fn a_crashed_workers_lease_expires_and_another_worker_sends(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("crash@example.com", false).await;
    // A worker claims the row and dies before sending.
    let now = app.clock.now_ms();
    let lease_ms = i64::try_from(app.config.delivery.lease.as_millis()).unwrap();
    let claimed = outbox::claim(&app.store, "crashed-worker", now, now + lease_ms, (10, 10))
        .await
        .unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(
        app.drain_outbox().await.claimed,
        0,
        "a live lease is respected"
    );
    app.clock
        .advance(app.config.delivery.lease + Duration::from_secs(1));
    assert_eq!(
        app.drain_outbox().await.sent,
        1,
        "the expired lease is taken over"
    );
    assert_eq!(app.received().len(), 1);
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 2);
    app.stop().await;
}

async fn a_stopping_worker_hands_back_what_it_has_not_sent(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("shutdown@example.com", false).await;
    let stopping = CancellationToken::new();
    stopping.cancel();
    let outcome = app.worker.deliver_batch(&stopping).await.unwrap();
    assert_eq!((outcome.claimed, outcome.released, outcome.sent), (1, 1, 0));
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE lease_owner IS NULL")
            .await,
        1
    );
    assert_eq!(
        app.drain_outbox().await.sent,
        1,
        "another worker sends it at once"
    );
    app.stop().await;
}

/// The lease statements both queues share check the owner: a worker whose
/// lease ran out and was taken cannot renew, hand back, reschedule, fail or
/// cancel the row; what it sent is still recorded sent, or it would go out
/// a second time.
async fn a_worker_changes_only_the_rows_it_still_holds(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.sign_up("held@example.com", false).await;
    let store = &app.store;
    let now = app.clock.now_ms();
    let claimed = outbox::claim(store, "first", now, now + 1_000, (10, 10))
        .await
        .unwrap();
    let ids = vec![claimed[0].id.clone()];
    let rows = Rows::Outbox(&ids);
    // The first lease runs out; a second worker takes the row.
    let later = now + 2_000;
    let taken = outbox::claim(store, "second", later, later + 1_000, (10, 10))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let renewed = queue::renew(store, "first", rows, later + 5_000)
        .await
        .unwrap();
    assert!(renewed.is_empty(), "{renewed:?}");
    assert_eq!(queue::release(store, "first", rows).await.unwrap(), 0);
    let rescheduled = queue::reschedule(store, "first", rows, later, "4xx").await;
    assert_eq!(rescheduled.unwrap(), 0);
    for how in [Finish::Failed("refused"), Finish::Cancelled] {
        assert_eq!(
            queue::finish(store, "first", rows, how, later)
                .await
                .unwrap(),
            0
        );
    }
    let owner = "SELECT lease_owner FROM outbox";
    assert_eq!(app.text(owner).await.as_deref(), Some("second"));
    assert_eq!(app.scalar("SELECT attempts FROM outbox").await, 2);
    // The holder may renew; and a send by the first is recorded.
    let renewed = queue::renew(store, "second", rows, later + 5_000)
        .await
        .unwrap();
    assert_eq!(renewed, ids);
    let sent = Finish::Sent {
        template_version: Some("v1"),
    };
    assert_eq!(
        queue::finish(store, "first", rows, sent, later)
            .await
            .unwrap(),
        1
    );
    let status = "SELECT status || ' ' || template_version || ' ' || context FROM outbox";
    assert_eq!(app.text(status).await.as_deref(), Some("sent v1 {}"));
    app.stop().await;
}

/// On PostgreSQL a heartbeat never waits for a row another statement holds:
/// it skips it, and renews it at the next beat. Waiting let a renewal and a
/// recording, each over many rows, wait for each other's rows: a deadlock,
/// which `bench/digest.sh 100000 postgres` hit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(postgres_tests),
    ignore = "set BROADSHEET_TEST_POSTGRES_URL when building to run it on PostgreSQL"
)]
async fn a_renewal_skips_a_row_another_statement_holds() {
    let app = TestApp::spawn(Backend::Postgres).await;
    app.sign_up("first@example.com", false).await;
    app.sign_up("second@example.com", false).await;
    let store = &app.store;
    let now = app.clock.now_ms();
    let claimed = outbox::claim(store, "worker", now, now + 1_000, (10, 10))
        .await
        .unwrap();
    let ids: Vec<String> = claimed.iter().map(|row| row.id.clone()).collect();
    assert_eq!(ids.len(), 2);
    let mut holder = store.pool().begin().await.unwrap();
    sqlx::query("SELECT id FROM outbox WHERE id = $1 FOR UPDATE")
        .bind(&ids[0])
        .execute(&mut *holder)
        .await
        .unwrap();
    let renewal = queue::renew(store, "worker", Rows::Outbox(&ids), now + 5_000);
    let renewed = tokio::time::timeout(Duration::from_secs(10), renewal)
        .await
        .expect("the renewal waited for the locked row")
        .unwrap();
    assert_eq!(renewed, vec![ids[1].clone()]);
    holder.rollback().await.unwrap();
    let renewed = queue::renew(store, "worker", Rows::Outbox(&ids), now + 6_000)
        .await
        .unwrap();
    assert_eq!(renewed.len(), 2, "renewed once let go");
    app.stop().await;
}
