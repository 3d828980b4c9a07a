//! Providers' webhooks end to end: a hard bounce, a series of soft bounces
//! and a complaint, each signed as the provider signs them with keys made
//! here, posted to the real router, and each ending in the right
//! suppression and ledger entry; forged, replayed and unconfigured
//! requests refused. The bounce mailbox's run of the same is in
//! `feedback.rs`'s style, here too, for one scenario across all sources.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::feedback::{digest_tags, dsn, one_more_digest, suppressed};
use crate::support;

use std::sync::OnceLock;

use base64::{Engine as _, engine::general_purpose::STANDARD};
use broadsheet::feedback::{BounceMailbox, Kind, webhooks::sns};
use hmac::{Hmac, Mac};
use ring::{
    rand::SystemRandom,
    signature::{
        ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair,
    },
};
use rsa::pkcs8::EncodePrivateKey as _;
use serde_json::{Value, json};
use support::{Backend, TestApp, imap::ImapServer};

storage_tests!(
    mailgun_reports_each_kind_and_refuses_forgeries_and_replays,
    sendgrid_reports_each_kind_and_refuses_forgeries,
    postmark_reports_each_kind_and_refuses_wrong_credentials,
    ses_reports_each_kind_and_refuses_forgeries_and_strangers_topics,
    the_bounce_mailbox_reports_each_kind,
    an_unconfigured_provider_is_not_there,
);

const MAILGUN_KEY: &str = "mailgun-signing-key";
const POSTMARK: (&str, &str) = ("postmark", "a long postmark password");
const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:broadsheet-feedback";
const CERT_URL: &str =
    "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-0123456789abcdef.pem";
/// A P-256 SubjectPublicKeyInfo up to the point (RFC 5480).
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Keys made once per test binary: RSA generation is slow in a debug build.
struct Keys {
    sendgrid: Vec<u8>,
    sns_pkcs8: Vec<u8>,
    sns_certificate_pem: String,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rng = SystemRandom::new();
        let sendgrid = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let rsa = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let sns_pkcs8 = rsa.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let key_pair = rcgen::KeyPair::try_from(sns_pkcs8.as_slice()).unwrap();
        let params =
            rcgen::CertificateParams::new(vec!["sns.us-east-1.amazonaws.com".to_owned()]).unwrap();
        let sns_certificate_pem = params.self_signed(&key_pair).unwrap().pem();
        Keys {
            sendgrid: sendgrid.as_ref().to_vec(),
            sns_pkcs8,
            sns_certificate_pem,
        }
    })
}

fn sendgrid_key() -> EcdsaKeyPair {
    let rng = SystemRandom::new();
    EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &keys().sendgrid, &rng).unwrap()
}

/// Every provider configured, and the tagged return path.
async fn app(backend: Backend) -> TestApp {
    let sendgrid_public = [&P256_SPKI_HEADER[..], sendgrid_key().public_key().as_ref()].concat();
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        config.bounces.return_path = Some("bounces@lordspress.test".parse().unwrap());
        config.webhooks.mailgun_signing_key = broadsheet::config::Secret::new(MAILGUN_KEY);
        config.webhooks.postmark_username = POSTMARK.0.into();
        config.webhooks.postmark_password = broadsheet::config::Secret::new(POSTMARK.1);
        config.webhooks.sendgrid_public_key = STANDARD.encode(sendgrid_public);
        config.webhooks.ses_topics = vec![TOPIC.into()];
    })
    .await;
    // The certificate as an instance would have fetched it from SNS.
    let pem = &keys().sns_certificate_pem;
    sqlx::query("INSERT INTO webhook_certificates (url, pem, fetched_at) VALUES ($1, $2, 0)")
        .bind(CERT_URL)
        .bind(pem)
        .execute(app.store.pool())
        .await
        .unwrap();
    app
}

/// One report to bring by some source: its kind, the reader, the tag of
/// the digest it is about, and a number unique within the scenario.
struct Report {
    kind: Kind,
    address: &'static str,
    tag: String,
    n: usize,
}

/// Three readers, three digests each; then `bring` delivers a hard bounce
/// for the first, a soft bounce for each digest of the second and a
/// complaint for the third. Each ends where the policy says.
async fn every_kind_arrives_by(app: &TestApp, bring: impl AsyncFn(Report)) {
    let readers = ["hard@example.com", "soft@example.com", "angry@example.com"];
    for address in readers {
        app.digest_reader(address, "daily", &[], false).await;
    }
    for slug in ["one", "two", "three"] {
        one_more_digest(app, slug).await;
    }
    let last = |address| digest_tags(app, address).pop().unwrap();
    let mut reports = vec![(Kind::HardBounce, readers[0], last(readers[0]))];
    for tag in digest_tags(app, readers[1]) {
        reports.push((Kind::SoftBounce, readers[1], tag));
    }
    reports.push((Kind::Complaint, readers[2], last(readers[2])));
    for (n, (kind, address, tag)) in reports.into_iter().enumerate() {
        bring(Report {
            kind,
            address,
            tag,
            n,
        })
        .await;
    }
    assert_eq!(
        suppressed(app, readers[0]).await.as_deref(),
        Some("hard_bounce")
    );
    assert_eq!(
        suppressed(app, readers[1]).await.as_deref(),
        Some("soft_bounces")
    );
    assert_eq!(
        suppressed(app, readers[2]).await.as_deref(),
        Some("complaint")
    );
    let angry = app.subscriber_id(readers[2]).await;
    let withdrawn = format!(
        "SELECT source FROM consent_events WHERE subject = '{angry}' AND action = 'withdrawn'"
    );
    assert_eq!(app.text(&withdrawn).await.as_deref(), Some("complaint"));
    assert_eq!(app.scalar("SELECT COUNT(*) FROM feedback_events").await, 5);
    // The console's page of each reader shows the reports and the suppression.
    let editor = app
        .signed_in_editor("desk@example.com", broadsheet::editors::Role::Editor)
        .await;
    for (address, reason, kind) in [
        (readers[0], "hard_bounce", "hard_bounce"),
        (readers[1], "soft_bounces", "soft_bounce"),
        (readers[2], "complaint", "complaint"),
    ] {
        let id = app.subscriber_id(address).await;
        let page = editor
            .get(&format!("/admin/readers/{id}"))
            .await
            .text()
            .await
            .unwrap();
        assert!(
            page.contains(&format!("<strong>{reason}</strong>")),
            "{address}: {page}"
        );
        assert!(
            page.contains(&format!("<td>{kind}</td>")),
            "{address}: {page}"
        );
    }
}

/// A hard bounce for an address no reader has, for the refusals.
fn stranger() -> Report {
    Report {
        kind: Kind::HardBounce,
        address: "x@example.com",
        tag: "t".into(),
        n: 99,
    }
}

async fn post(app: &TestApp, provider: &str, body: &[u8], headers: &[(&str, String)]) -> u16 {
    let mut request = app
        .browser
        .client
        .post(app.url(&format!("/webhooks/{provider}")))
        .body(body.to_vec());
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    request.send().await.unwrap().status().as_u16()
}

fn mailgun_body(report: &Report, timestamp: i64, token: &str) -> Vec<u8> {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(MAILGUN_KEY.as_bytes()).unwrap();
    mac.update(format!("{timestamp}{token}").as_bytes());
    let signature = hex::encode(mac.finalize().into_bytes());
    let (event, severity) = match report.kind {
        Kind::HardBounce => ("failed", "permanent"),
        Kind::SoftBounce => ("failed", "temporary"),
        Kind::Complaint => ("complained", ""),
    };
    let body = json!({
        "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
        "event-data": {
            "event": event, "severity": severity, "id": format!("mg-{}", report.n),
            "timestamp": timestamp, "recipient": report.address,
            "envelope": {"sender": format!("bounces+{}@lordspress.test", report.tag)},
            "delivery-status": {"code": 550, "description": "mailbox unavailable"}
        }
    });
    serde_json::to_vec(&body).unwrap()
}

async fn mailgun_reports_each_kind_and_refuses_forgeries_and_replays(backend: Backend) {
    let app = app(backend).await;
    let now = app.clock.now().timestamp();
    every_kind_arrives_by(&app, async |report: Report| {
        let body = mailgun_body(&report, now, &format!("token-{}", report.n));
        assert_eq!(post(&app, "mailgun", &body, &[]).await, 200);
        assert_eq!(post(&app, "mailgun", &body, &[]).await, 401, "a replay");
    })
    .await;
    let report = stranger();
    let mut forged: Value = serde_json::from_slice(&mailgun_body(&report, now, "fresh")).unwrap();
    forged["signature"]["token"] = json!("another");
    let forged = serde_json::to_vec(&forged).unwrap();
    assert_eq!(post(&app, "mailgun", &forged, &[]).await, 401);
    // Mailgun signs the token, not the body: a used token with another body.
    let mut reused: Value = serde_json::from_slice(&mailgun_body(&report, now, "token-0")).unwrap();
    reused["event-data"]["recipient"] = json!("someone-else@example.com");
    let reused = serde_json::to_vec(&reused).unwrap();
    assert_eq!(
        post(&app, "mailgun", &reused, &[]).await,
        401,
        "a used token"
    );
    let stale = mailgun_body(&report, now - 3600, "stale");
    assert_eq!(post(&app, "mailgun", &stale, &[]).await, 401);
    assert_eq!(post(&app, "mailgun", b"not json", &[]).await, 400);
    app.stop().await;
}

fn sendgrid_request(report: &Report, timestamp: i64) -> (Vec<u8>, Vec<(&'static str, String)>) {
    let (event, kind) = match report.kind {
        Kind::HardBounce => ("bounce", "bounce"),
        Kind::SoftBounce => ("deferred", ""),
        Kind::Complaint => ("spamreport", ""),
    };
    let body = serde_json::to_vec(&json!([{
        "email": report.address, "event": event, "type": kind, "status": "5.1.1",
        "reason": "550 5.1.1 unknown user", "sg_event_id": format!("sg-{}", report.n),
        "timestamp": timestamp, "broadsheet_delivery": report.tag
    }]))
    .unwrap();
    let signed = [timestamp.to_string().as_bytes(), &body].concat();
    let signature = sendgrid_key().sign(&SystemRandom::new(), &signed).unwrap();
    let headers = vec![
        (
            "x-twilio-email-event-webhook-signature",
            STANDARD.encode(signature.as_ref()),
        ),
        (
            "x-twilio-email-event-webhook-timestamp",
            timestamp.to_string(),
        ),
    ];
    (body, headers)
}

async fn sendgrid_reports_each_kind_and_refuses_forgeries(backend: Backend) {
    let app = app(backend).await;
    let now = app.clock.now().timestamp();
    every_kind_arrives_by(&app, async |report: Report| {
        let (body, headers) = sendgrid_request(&report, now);
        assert_eq!(post(&app, "sendgrid", &body, &headers).await, 200);
        assert_eq!(
            post(&app, "sendgrid", &body, &headers).await,
            401,
            "a replay"
        );
    })
    .await;
    let report = stranger();
    let (mut body, headers) = sendgrid_request(&report, now);
    assert_eq!(post(&app, "sendgrid", &body, &[]).await, 401, "unsigned");
    body.extend_from_slice(b" ");
    assert_eq!(
        post(&app, "sendgrid", &body, &headers).await,
        401,
        "changed"
    );
    let (body, headers) = sendgrid_request(&report, now - 3600);
    assert_eq!(post(&app, "sendgrid", &body, &headers).await, 401, "stale");
    app.stop().await;
}

fn postmark_body(report: &Report) -> Vec<u8> {
    let (record, kind) = match report.kind {
        Kind::HardBounce => ("Bounce", "HardBounce"),
        Kind::SoftBounce => ("Bounce", "SoftBounce"),
        Kind::Complaint => ("SpamComplaint", "SpamComplaint"),
    };
    serde_json::to_vec(&json!({
        "RecordType": record, "Type": kind, "ID": 4_000_000 + report.n, "Email": report.address,
        "BouncedAt": "2026-12-07T03:00:00Z", "Details": "smtp;550 5.1.1 unknown user",
        "Metadata": {"broadsheet_delivery": report.tag}
    }))
    .unwrap()
}

fn basic(user: &str, password: &str) -> Vec<(&'static str, String)> {
    let credentials = STANDARD.encode(format!("{user}:{password}"));
    vec![("authorization", format!("Basic {credentials}"))]
}

async fn postmark_reports_each_kind_and_refuses_wrong_credentials(backend: Backend) {
    let app = app(backend).await;
    every_kind_arrives_by(&app, async |report: Report| {
        let body = postmark_body(&report);
        let credentials = basic(POSTMARK.0, POSTMARK.1);
        assert_eq!(post(&app, "postmark", &body, &credentials).await, 200);
        assert_eq!(
            post(&app, "postmark", &body, &credentials).await,
            401,
            "a replay"
        );
    })
    .await;
    let report = stranger();
    let body = postmark_body(&report);
    assert_eq!(post(&app, "postmark", &body, &[]).await, 401);
    assert_eq!(
        post(&app, "postmark", &body, &basic(POSTMARK.0, "guess")).await,
        401
    );
    app.stop().await;
}

/// An SNS notification carrying an SES report, signed as SNS signs.
fn sns_body(topic: &str, message: &Value, timestamp: &str) -> Vec<u8> {
    let mut envelope = json!({
        "Type": "Notification", "MessageId": uuid::Uuid::now_v7().to_string(),
        "TopicArn": topic, "Subject": "Amazon SES Email Event Notification",
        "Message": message.to_string(), "Timestamp": timestamp,
        "SignatureVersion": "2", "Signature": "", "SigningCertURL": CERT_URL
    });
    let parsed = sns::parse(&serde_json::to_vec(&envelope).unwrap()).unwrap();
    let key = RsaKeyPair::from_pkcs8(&keys().sns_pkcs8).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    let text = sns::string_to_sign(&parsed);
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        text.as_bytes(),
        &mut signature,
    )
    .unwrap();
    envelope["Signature"] = json!(STANDARD.encode(signature));
    serde_json::to_vec(&envelope).unwrap()
}

fn ses_report(report: &Report) -> Value {
    let mail = json!({"source": format!("bounces+{}@lordspress.test", report.tag), "headers": []});
    let id = format!("ses-{}", report.n);
    match report.kind {
        Kind::Complaint => json!({"notificationType": "Complaint", "mail": mail, "complaint": {
            "complainedRecipients": [{"emailAddress": report.address}],
            "complaintFeedbackType": "abuse", "feedbackId": id, "timestamp": "2026-12-07T03:00:00Z"}}),
        kind => json!({"notificationType": "Bounce", "mail": mail, "bounce": {
            "bounceType": if kind == Kind::HardBounce { "Permanent" } else { "Transient" },
            "bouncedRecipients": [{"emailAddress": report.address, "status": "5.1.1",
                                   "diagnosticCode": "smtp; 550 5.1.1 unknown user"}],
            "feedbackId": id, "timestamp": "2026-12-07T03:00:00Z"}}),
    }
}

async fn ses_reports_each_kind_and_refuses_forgeries_and_strangers_topics(backend: Backend) {
    let app = app(backend).await;
    let now = app.clock.now().to_rfc3339();
    every_kind_arrives_by(&app, async |report: Report| {
        let body = sns_body(TOPIC, &ses_report(&report), &now);
        assert_eq!(post(&app, "ses", &body, &[]).await, 200);
        assert_eq!(post(&app, "ses", &body, &[]).await, 401, "a replay");
    })
    .await;
    let report = stranger();
    let stranger = "arn:aws:sns:us-east-1:999999999999:someone-else";
    let body = sns_body(stranger, &ses_report(&report), &now);
    assert_eq!(
        post(&app, "ses", &body, &[]).await,
        401,
        "a topic not configured"
    );
    let mut changed: Value =
        serde_json::from_slice(&sns_body(TOPIC, &ses_report(&report), &now)).unwrap();
    changed["Message"] = json!(
        ses_report(&Report {
            address: "other@example.com",
            ..report
        })
        .to_string()
    );
    let changed = serde_json::to_vec(&changed).unwrap();
    assert_eq!(
        post(&app, "ses", &changed, &[]).await,
        401,
        "a changed message"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM feedback_events").await, 5);
    app.stop().await;
}

/// An ARF complaint report (RFC 5965) quoting the original's headers.
fn arf(tag: &str, recipient: &str, id: usize) -> Vec<u8> {
    format!(
        "From: feedback@mailbox.example\r\nTo: fbl@lordspress.test\r\nSubject: complaint\r\n\
         Message-ID: <arf-{id}@mailbox.example>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"b\"\r\n\r\n\
         --b\r\nContent-Type: text/plain\r\n\r\nA complaint.\r\n\
         --b\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: mailbox/1.0\r\nVersion: 1\r\n\
         Original-Rcpt-To: {recipient}\r\n\r\n\
         --b\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: news@lordspress.test\r\nTo: {recipient}\r\nX-Broadsheet-Delivery: {tag}\r\n\r\n\
         --b--\r\n"
    )
    .into_bytes()
}

/// A DSN for a delayed message (RFC 3464: `Action: delayed`, a 4.x.x status).
fn delayed(tag: &str, recipient: &str, id: usize) -> Vec<u8> {
    String::from_utf8(dsn(tag, recipient, &format!("delayed-{id}")))
        .unwrap()
        .replace("Action: failed", "Action: delayed")
        .replace("Status: 5.1.1", "Status: 4.2.2")
        .into_bytes()
}

async fn the_bounce_mailbox_reports_each_kind(backend: Backend) {
    let Some(imap) = ImapServer::start().await else {
        return;
    };
    let app = app(backend).await;
    let mailbox = BounceMailbox::new(
        &imap.config(),
        app.store.clone(),
        app.clock.clone(),
        app.feedbacks.clone(),
    )
    .unwrap()
    .unwrap();
    every_kind_arrives_by(&app, async |report: Report| {
        let raw = match report.kind {
            Kind::HardBounce => dsn(&report.tag, report.address, &format!("hard-{}", report.n)),
            Kind::SoftBounce => delayed(&report.tag, report.address, report.n),
            Kind::Complaint => arf(&report.tag, report.address, report.n),
        };
        imap.deliver(&raw).await;
        assert_eq!(mailbox.read().await.unwrap().stored, 1);
    })
    .await;
    app.stop().await;
}

async fn an_unconfigured_provider_is_not_there(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for provider in ["ses", "postmark", "mailgun", "sendgrid", "nobody"] {
        assert_eq!(post(&app, provider, b"{}", &[]).await, 404, "{provider}");
    }
    app.stop().await;
}
