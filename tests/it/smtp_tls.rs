//! Mail over TLS with a login: STARTTLS and implicit TLS to a server whose
//! certificate a CA of the operator's own signed (`smtp.ca_file`), with
//! AUTH; and what happens when the login or the certificate is wrong.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use broadsheet::{
    app::Role,
    config::{Config, Secret, SmtpTls},
    digest::Started,
};
use support::{Backend, ServerTls, SmtpServer, TestApp};

storage_tests!(
    starttls_with_a_login_carries_digests_and_account_mail,
    implicit_tls_with_a_login_carries_digests_and_account_mail,
    a_wrong_password_sends_nothing_and_keeps_the_mail_for_later,
    a_certificate_no_trusted_ca_signed_sends_nothing,
);

const USER: &str = "press";
const PASSWORD: &str = "tide tables at dawn";

/// The app sending to a TLS server that requires AUTH; `password` is what
/// the app logs in with, and the server's certificate is trusted only if
/// `trusted`.
async fn over_tls(
    backend: Backend,
    tls: ServerTls,
    password: &str,
    trusted: bool,
) -> (TestApp, tempfile::TempDir) {
    let server = SmtpServer::start_tls(tls).await;
    server.require_auth(USER, PASSWORD);
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("relay-ca.pem");
    std::fs::write(&ca_file, server.certificate.as_deref().unwrap()).unwrap();
    let app = TestApp::spawn_sending_to(backend, Role::Web, server, |config: &mut Config| {
        config.smtp.tls = match tls {
            ServerTls::Starttls => SmtpTls::Starttls,
            ServerTls::Implicit => SmtpTls::Tls,
            ServerTls::None => SmtpTls::None,
        };
        if trusted {
            config.smtp.ca_file = ca_file.clone();
        }
        config.smtp.username = USER.into();
        config.smtp.password = Secret::new(password);
    })
    .await;
    (app, dir)
}

/// A reader's confirmation and credentials, then a digest: every message
/// arrives over TLS from the logged-in user.
async fn account_mail_and_a_digest_arrive(app: &TestApp) {
    app.digest_reader("tls@example.com", "daily", &[], false)
        .await;
    let published = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Sealed\"\npublished_at = \"{published}\"\n+++\nBody.\n"
    ))
    .await;
    let started = app.send_digest_now().await;
    assert!(matches!(started, Started::Campaign { recipients: 1, .. }));
    app.drain_outbox().await;
    assert_eq!(app.digests_to("tls@example.com").len(), 1);
    let received = app.received();
    assert_eq!(
        received.len(),
        3,
        "confirmation, credentials and the digest"
    );
    for mail in received {
        assert!(mail.tls, "{:?} came in clear", mail.subject());
        assert_eq!(mail.user.as_deref(), Some(USER), "{:?}", mail.subject());
    }
}

async fn starttls_with_a_login_carries_digests_and_account_mail(backend: Backend) {
    let (app, _ca) = over_tls(backend, ServerTls::Starttls, PASSWORD, true).await;
    account_mail_and_a_digest_arrive(&app).await;
    app.stop().await;
}

async fn implicit_tls_with_a_login_carries_digests_and_account_mail(backend: Backend) {
    let (app, _ca) = over_tls(backend, ServerTls::Implicit, PASSWORD, true).await;
    account_mail_and_a_digest_arrive(&app).await;
    app.stop().await;
}

/// The signup's confirmation is kept, with the refusal, for a later try.
async fn pending_confirmation(app: &TestApp) -> Option<String> {
    assert_eq!(app.sign_up("later@example.com", true).await.status(), 200);
    let outcome = app.drain_outbox().await;
    let error = app.text("SELECT last_error FROM outbox").await;
    assert_eq!(
        (outcome.sent, outcome.failed),
        (0, 0),
        "{outcome:?} {error:?}"
    );
    assert!(app.received().is_empty());
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND attempts = 1")
            .await,
        1
    );
    app.text("SELECT last_error FROM outbox").await
}

async fn a_wrong_password_sends_nothing_and_keeps_the_mail_for_later(backend: Backend) {
    for tls in [ServerTls::Starttls, ServerTls::Implicit] {
        let (app, _ca) = over_tls(backend, tls, "not the password", true).await;
        let error = pending_confirmation(&app).await.unwrap_or_default();
        assert!(error.contains("535"), "{tls:?}: {error}");
        assert!(!error.contains(PASSWORD) && !error.contains("not the password"));
        app.stop().await;
    }
}

async fn a_certificate_no_trusted_ca_signed_sends_nothing(backend: Backend) {
    for tls in [ServerTls::Starttls, ServerTls::Implicit] {
        let (app, _ca) = over_tls(backend, tls, PASSWORD, false).await;
        let error = pending_confirmation(&app).await.unwrap_or_default();
        assert!(
            error.to_lowercase().contains("certificate"),
            "{tls:?}: {error}"
        );
        app.stop().await;
    }
}
