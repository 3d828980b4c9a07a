//! The SNS envelope's checks, with an RSA key and certificate made here.

#![allow(clippy::unwrap_used)]

use std::sync::OnceLock;

use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rsa::pkcs8::EncodePrivateKey as _;

use super::*;

const TOPIC: &str = "arn:aws:sns:us-east-1:123456789012:broadsheet-feedback";
const CERT_URL: &str = "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-6aad65c2f9911b05cd53efda11f913f9.pem";

/// An RSA key (PKCS#8) and a self-signed certificate of it, made once for
/// the module: RSA key generation is slow in a debug build.
struct Signer {
    pkcs8: Vec<u8>,
    certificate: Vec<u8>,
}

fn signer() -> &'static Signer {
    static SIGNER: OnceLock<Signer> = OnceLock::new();
    SIGNER.get_or_init(|| {
        let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let pkcs8 = key.to_pkcs8_der().unwrap().as_bytes().to_vec();
        let key_pair = rcgen::KeyPair::try_from(pkcs8.as_slice()).unwrap();
        let names = vec!["sns.us-east-1.amazonaws.com".to_owned()];
        let params = rcgen::CertificateParams::new(names).unwrap();
        let certificate = params.self_signed(&key_pair).unwrap().der().to_vec();
        Signer { pkcs8, certificate }
    })
}

fn sign(envelope: &mut Envelope) {
    let key = RsaKeyPair::from_pkcs8(&signer().pkcs8).unwrap();
    let mut signature = vec![0; key.public().modulus_len()];
    let text = string_to_sign(envelope);
    let rng = SystemRandom::new();
    key.sign(&RSA_PKCS1_SHA256, &rng, text.as_bytes(), &mut signature)
        .unwrap();
    envelope.signature = STANDARD.encode(signature);
}

fn envelope(kind: MessageType, message: &str) -> Envelope {
    let confirmation = kind != MessageType::Notification;
    let subscribe_url = "https://sns.us-east-1.amazonaws.com/?Action=ConfirmSubscription&TopicArn=arn:aws:sns:us-east-1:123456789012:broadsheet-feedback&Token=2336412f37";
    let mut envelope = Envelope {
        kind,
        message_id: "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324".into(),
        topic_arn: TOPIC.into(),
        subject: (!confirmation).then(|| "Amazon SES Email Event Notification".into()),
        message: message.into(),
        timestamp: "2026-03-01T12:00:00.000Z".into(),
        signature_version: "2".into(),
        signature: String::new(),
        signing_cert_url: CERT_URL.into(),
        subscribe_url: confirmation.then(|| subscribe_url.into()),
        token: confirmation.then(|| "2336412f37".into()),
    };
    sign(&mut envelope);
    envelope
}

fn at(text: &str) -> DateTime<Utc> {
    text.parse().unwrap()
}

fn check(envelope: &Envelope, now: &str) -> Result<(), Refused> {
    verify(
        envelope,
        &signer().certificate,
        &[TOPIC.to_owned()],
        at(now),
    )
}

#[test]
fn a_signed_notification_or_confirmation_passes() {
    let notification = envelope(
        MessageType::Notification,
        r#"{"notificationType":"Bounce"}"#,
    );
    check(&notification, "2026-03-01T12:00:05Z").unwrap();
    let confirmation = envelope(MessageType::SubscriptionConfirmation, "You have chosen…");
    check(&confirmation, "2026-03-01T12:00:05Z").unwrap();
}

#[test]
fn a_changed_message_or_another_certificate_is_refused() {
    let mut changed = envelope(
        MessageType::Notification,
        r#"{"notificationType":"Bounce"}"#,
    );
    changed.message = r#"{"notificationType":"Complaint"}"#.into();
    let refused = check(&changed, "2026-03-01T12:00:05Z");
    assert!(matches!(refused, Err(Refused::BadSignature)));
    let signed = envelope(MessageType::Notification, "{}");
    let names = vec!["sns.us-east-1.amazonaws.com".to_owned()];
    let other = rcgen::generate_simple_self_signed(names).unwrap().cert;
    let topics = [TOPIC.to_owned()];
    let now = at("2026-03-01T12:00:05Z");
    let refused = verify(&signed, other.der(), &topics, now);
    assert!(matches!(refused, Err(Refused::BadSignature)));
    let refused = verify(&signed, b"not a certificate", &topics, now);
    assert!(matches!(refused, Err(Refused::BadSignature)));
}

#[test]
fn an_unknown_topic_an_untrusted_url_or_sha1_is_refused() {
    let signed = envelope(MessageType::Notification, "{}");
    let other_topic = ["arn:aws:sns:us-east-1:123456789012:other".to_owned()];
    let refused = verify(
        &signed,
        &signer().certificate,
        &other_topic,
        at("2026-03-01T12:00:05Z"),
    );
    assert!(matches!(refused, Err(Refused::UnknownTopic)));
    let mut elsewhere = signed.clone();
    elsewhere.signing_cert_url = "https://evil.test/sns.us-east-1.amazonaws.com/x.pem".into();
    let refused = check(&elsewhere, "2026-03-01T12:00:05Z");
    assert!(matches!(refused, Err(Refused::UntrustedUrl)));
    let mut confirmation = envelope(MessageType::SubscriptionConfirmation, "Confirm");
    confirmation.subscribe_url = Some("https://evil.test/?Action=ConfirmSubscription".into());
    let refused = check(&confirmation, "2026-03-01T12:00:05Z");
    assert!(matches!(refused, Err(Refused::UntrustedUrl)));
    let mut sha1 = signed;
    sha1.signature_version = "1".into();
    let Err(Refused::Unsupported(why)) = check(&sha1, "2026-03-01T12:00:05Z") else {
        panic!("SignatureVersion 1 must be refused");
    };
    assert!(why.contains("SignatureVersion attribute to 2"));
}

#[test]
fn an_envelope_is_accepted_through_the_retry_hour_and_no_longer() {
    let signed = envelope(MessageType::Notification, "{}");
    check(&signed, "2026-03-01T12:59:00Z").unwrap();
    let stale = check(&signed, "2026-03-01T13:06:00Z");
    assert!(matches!(stale, Err(Refused::Stale)));
    let ahead = check(&signed, "2026-03-01T11:50:00Z");
    assert!(matches!(ahead, Err(Refused::Stale)));
}

#[test]
fn the_string_to_sign_follows_the_documented_fields() {
    let mut notification = envelope(MessageType::Notification, "Hello world!");
    assert_eq!(
        string_to_sign(&notification),
        "Message\nHello world!\nMessageId\n22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324\n\
         Subject\nAmazon SES Email Event Notification\nTimestamp\n2026-03-01T12:00:00.000Z\n\
         TopicArn\narn:aws:sns:us-east-1:123456789012:broadsheet-feedback\nType\nNotification\n"
    );
    notification.subject = None;
    assert!(!string_to_sign(&notification).contains("Subject"));
    let confirmation = envelope(MessageType::UnsubscribeConfirmation, "Bye");
    let text = string_to_sign(&confirmation);
    let names: Vec<&str> = text.lines().step_by(2).collect();
    assert_eq!(
        names,
        [
            "Message",
            "MessageId",
            "SubscribeURL",
            "Timestamp",
            "Token",
            "TopicArn",
            "Type"
        ]
    );
}

#[test]
fn a_documented_notification_parses() {
    let body = br#"{
      "Type" : "Notification",
      "MessageId" : "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
      "TopicArn" : "arn:aws:sns:us-west-2:123456789012:MyTopic",
      "Subject" : "My First Message",
      "Message" : "Hello world!",
      "Timestamp" : "2012-05-02T00:54:06.655Z",
      "SignatureVersion" : "1",
      "Signature" : "EXAMPLEw6JRN",
      "SigningCertURL" : "https://sns.us-west-2.amazonaws.com/SimpleNotificationService-f3ecfb7224c7233fe7bb5f59f96de52f.pem",
      "UnsubscribeURL" : "https://sns.us-west-2.amazonaws.com/?Action=Unsubscribe&SubscriptionArn=arn:aws:sns:us-west-2:123456789012:MyTopic:c9135db0"
    }"#;
    let envelope = parse(body).unwrap();
    assert_eq!(envelope.kind, MessageType::Notification);
    assert_eq!(envelope.subject.as_deref(), Some("My First Message"));
    assert_eq!(envelope.subscribe_url, None);
    assert!(matches!(
        parse(b"{\"Type\":\"Other\"}"),
        Err(Refused::Malformed(_))
    ));
}

#[test]
fn only_sns_hosts_serve_certificates() {
    for allowed in [
        CERT_URL,
        "https://sns.us-gov-west-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.cn-north-1.amazonaws.com.cn/SimpleNotificationService-1.pem",
        "https://sns.eu-west-2.amazonaws.com:443/SimpleNotificationService-1.pem",
    ] {
        assert!(certificate_url_allowed(allowed), "{allowed}");
    }
    for refused in [
        "http://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com.evil.test/SimpleNotificationService-1.pem",
        "https://evil.test/sns.us-east-1.amazonaws.com/x.pem",
        "https://user@sns.us-east-1.amazonaws.com/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com@evil.test/x.pem",
        "https://sns.us-east-1.amazonaws.com:8443/SimpleNotificationService-1.pem",
        "https://sns.us-east-1.amazonaws.com/SimpleNotificationService-1.txt",
        "https://sns.us-east-1.amazonaws.com/x.pem?from=evil.test",
        "https://sns.a.b.amazonaws.com/x.pem",
        "https://sns..amazonaws.com/x.pem",
        "https://sns.amazonaws.com/x.pem",
        "https://54.239.28.85/x.pem",
        "not a url",
    ] {
        assert!(!certificate_url_allowed(refused), "{refused}");
    }
    let confirm = "https://sns.us-west-2.amazonaws.com/?Action=ConfirmSubscription&Token=2336";
    assert!(subscribe_url_allowed(confirm));
    assert!(!subscribe_url_allowed(
        "https://evil.test/?Action=ConfirmSubscription"
    ));
    assert!(!subscribe_url_allowed(
        "http://sns.us-west-2.amazonaws.com/?Action=Confirm"
    ));
}
