//! SendGrid's signed Event Webhook posts a JSON array of events. The
//! `X-Twilio-Email-Event-Webhook-Signature` header is the base64 of an
//! ASN.1 DER ECDSA P-256 signature, with SHA-256, of the
//! `X-Twilio-Email-Event-Webhook-Timestamp` header's value followed by the
//! raw body ("Getting Started with the Event Webhook Security Features").
//! The key to check it with is the "Verification Key" SendGrid shows, the
//! base64 of a DER SubjectPublicKeyInfo: [`VerificationKey`] reads it once,
//! as the configuration is loaded.
//!
//! SendGrid documents no replay window; five minutes either side is the
//! usual one. Within it, `sg_event_id` (the `event_id`) lets the caller act
//! once on an event posted twice.

use base64::{Engine as _, engine::general_purpose::STANDARD};
use chrono::{DateTime, TimeDelta, Utc};
use ring::signature::{ECDSA_P256_SHA256_ASN1, UnparsedPublicKey};
use serde_json::Value;

use super::{Refused, check_fresh, cut, first_text, json, str_at, text_at, unix_time_at};
use crate::feedback::{Feedback, Kind, Source};

/// How far the timestamp header may be from our clock, either side.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The custom argument (`custom_args`) a message is sent with to name its
/// delivery; SendGrid echoes custom arguments as fields of each event.
pub const DELIVERY_ARG: &str = crate::mail::PROVIDER_TAG_NAME;

/// The DER header of a SubjectPublicKeyInfo holding an uncompressed P-256
/// point: SEQUENCE { SEQUENCE { id-ecPublicKey, prime256v1 }, BIT STRING
/// of 66 bytes, no unused bits } (RFC 5480, section 2).
const P256_SPKI_HEADER: [u8; 26] = [
    0x30, 0x59, 0x30, 0x13, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x06, 0x08, 0x2a,
    0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07, 0x03, 0x42, 0x00,
];

/// Why a configured SendGrid verification key cannot be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error(
        "the SendGrid verification key is not base64: copy it from Settings, Mail Settings, \
         Event Webhook (\"Verification Key\")"
    )]
    NotBase64,
    #[error(
        "the SendGrid verification key is not an ECDSA P-256 public key (a DER \
         SubjectPublicKeyInfo of 91 bytes, uncompressed point)"
    )]
    NotP256,
}

/// The uncompressed point (`04 ‖ x ‖ y`, 65 bytes) of a P-256
/// SubjectPublicKeyInfo, the form ring verifies with; anything else is refused.
pub fn p256_point_from_spki(der: &[u8]) -> Result<&[u8], KeyError> {
    let point = der
        .strip_prefix(P256_SPKI_HEADER.as_slice())
        .ok_or(KeyError::NotP256)?;
    if point.len() != 65 || point.first() != Some(&0x04) {
        return Err(KeyError::NotP256);
    }
    Ok(point)
}

/// SendGrid's verification key, checked once as the configuration is loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerificationKey {
    point: Vec<u8>,
}

impl VerificationKey {
    /// From the base64 SubjectPublicKeyInfo SendGrid shows; a PEM
    /// `PUBLIC KEY` block is taken too.
    pub fn from_base64(text: &str) -> Result<Self, KeyError> {
        let encoded: String = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.starts_with("-----"))
            .collect();
        let der = STANDARD.decode(encoded).map_err(|_| KeyError::NotBase64)?;
        Ok(Self {
            point: p256_point_from_spki(&der)?.to_vec(),
        })
    }
}

/// Checks the two signature headers against the raw body, and that the
/// timestamp is within [`MAX_SKEW`] of `now`.
pub fn verify(
    key: &VerificationKey,
    signature: Option<&str>,
    timestamp: Option<&str>,
    body: &[u8],
    now: DateTime<Utc>,
) -> Result<(), Refused> {
    let signature = signature.filter(|value| !value.trim().is_empty());
    let timestamp = timestamp.filter(|value| !value.trim().is_empty());
    let (Some(signature), Some(timestamp)) = (signature, timestamp) else {
        return Err(Refused::Unsigned);
    };
    let signature = STANDARD
        .decode(signature.trim())
        .map_err(|_| Refused::BadSignature)?;
    let signed = [timestamp.as_bytes(), body].concat();
    UnparsedPublicKey::new(&ECDSA_P256_SHA256_ASN1, key.point.as_slice())
        .verify(&signed, &signature)
        .map_err(|_| Refused::BadSignature)?;
    let signed_at = timestamp
        .trim()
        .parse::<i64>()
        .ok()
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .ok_or_else(|| Refused::Malformed("the timestamp header is not Unix seconds".into()))?;
    check_fresh(signed_at, now, MAX_SKEW, MAX_SKEW)
}

/// What a (verified) body reports, event by event.
pub fn parse(body: &[u8]) -> Result<Vec<Feedback>, Refused> {
    let Value::Array(events) = json(body)? else {
        return Err(Refused::Malformed("expected a JSON array of events".into()));
    };
    Ok(events.iter().filter_map(feedback_of).collect())
}

/// The kind of an event, if it is a bounce or a complaint:
/// - `bounce` is a hard bounce, unless its `type` is `blocked`: a block is
///   the receiver refusing the sender (reputation, content), usually for a
///   while, not the address failing;
/// - `deferred` is a soft bounce, `spamreport` a complaint;
/// - `dropped` means SendGrid did not even try because the address is on
///   one of its suppression lists. "Bounced Address" and "Spam Reporting
///   Address" are taken as the hard bounce and the complaint that put it
///   there (perhaps missed, or from before these webhooks), so our list
///   agrees with SendGrid's; other reasons (unsubscribed, invalid) say
///   nothing about the address's mail.
fn kind_of(event: &Value) -> Option<Kind> {
    match str_at(event, "/event")? {
        "bounce" if str_at(event, "/type") == Some("blocked") => Some(Kind::SoftBounce),
        "bounce" => Some(Kind::HardBounce),
        "deferred" => Some(Kind::SoftBounce),
        "spamreport" => Some(Kind::Complaint),
        "dropped" => match str_at(event, "/reason")? {
            "Bounced Address" => Some(Kind::HardBounce),
            "Spam Reporting Address" => Some(Kind::Complaint),
            _ => None,
        },
        _ => None,
    }
}

fn feedback_of(event: &Value) -> Option<Feedback> {
    let kind = kind_of(event)?;
    let status = match kind {
        Kind::Complaint => "abuse".to_owned(),
        _ => first_text(event, &["/status", "/type", "/event"]).unwrap_or_default(),
    };
    let detail = first_text(event, &["/reason", "/response"]);
    Some(Feedback {
        kind,
        source: Source::Sendgrid,
        recipient: text_at(event, "/email"),
        return_path: text_at(event, &format!("/{DELIVERY_ARG}")),
        status,
        detail: cut(detail.as_deref().unwrap_or("")),
        event_id: text_at(event, "/sg_event_id"),
        occurred_at: unix_time_at(event, "/timestamp"),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use ring::rand::SystemRandom;
    use ring::signature::{ECDSA_P256_SHA256_ASN1_SIGNING, EcdsaKeyPair, KeyPair as _};
    use serde_json::json;

    use super::*;

    const NOW: i64 = 1_513_299_569;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(NOW, 0).unwrap()
    }

    /// A key pair made here, and its public half as SendGrid shows one.
    fn key_pair() -> (EcdsaKeyPair, String) {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, &rng).unwrap();
        let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_ASN1_SIGNING, pkcs8.as_ref(), &rng)
            .unwrap();
        let spki = [P256_SPKI_HEADER.as_slice(), pair.public_key().as_ref()].concat();
        (pair, STANDARD.encode(spki))
    }

    fn sign(pair: &EcdsaKeyPair, timestamp: &str, body: &[u8]) -> String {
        let signed = [timestamp.as_bytes(), body].concat();
        let signature = pair.sign(&SystemRandom::new(), &signed).unwrap();
        STANDARD.encode(signature)
    }

    const BODY: &[u8] = br#"[{"email":"example@test.com","timestamp":1513299569,"event":"spamreport","sg_event_id":"sg_event_id","sg_message_id":"sg_message_id"}]"#;

    #[test]
    fn a_valid_signature_passes() {
        let (pair, public) = key_pair();
        let key = VerificationKey::from_base64(&public).unwrap();
        let timestamp = (NOW - 20).to_string();
        let signature = sign(&pair, &timestamp, BODY);
        verify(
            &key,
            Some(signature.as_str()),
            Some(timestamp.as_str()),
            BODY,
            now(),
        )
        .unwrap();
    }

    #[test]
    fn a_changed_body_a_wrong_key_or_a_missing_header_is_refused() {
        let (pair, public) = key_pair();
        let key = VerificationKey::from_base64(&public).unwrap();
        let timestamp = NOW.to_string();
        let signature = sign(&pair, &timestamp, BODY);
        let (ts, sig) = (Some(timestamp.as_str()), Some(signature.as_str()));
        let changed = [BODY, b" ".as_slice()].concat();
        let refused = verify(&key, sig, ts, &changed, now());
        assert!(matches!(refused, Err(Refused::BadSignature)));
        let (_, other) = key_pair();
        let other = VerificationKey::from_base64(&other).unwrap();
        assert!(matches!(
            verify(&other, sig, ts, BODY, now()),
            Err(Refused::BadSignature)
        ));
        assert!(matches!(
            verify(&key, None, ts, BODY, now()),
            Err(Refused::Unsigned)
        ));
        assert!(matches!(
            verify(&key, sig, None, BODY, now()),
            Err(Refused::Unsigned)
        ));
        assert!(matches!(
            verify(&key, Some(""), ts, BODY, now()),
            Err(Refused::Unsigned)
        ));
    }

    #[test]
    fn a_timestamp_ten_minutes_old_is_stale() {
        let (pair, public) = key_pair();
        let key = VerificationKey::from_base64(&public).unwrap();
        let timestamp = (NOW - 600).to_string();
        let signature = sign(&pair, &timestamp, BODY);
        let refused = verify(
            &key,
            Some(signature.as_str()),
            Some(timestamp.as_str()),
            BODY,
            now(),
        );
        assert!(matches!(refused, Err(Refused::Stale)));
    }

    #[test]
    fn only_a_p256_public_key_is_a_verification_key() {
        let (_, public) = key_pair();
        let pem = format!("-----BEGIN PUBLIC KEY-----\n{public}\n-----END PUBLIC KEY-----\n");
        assert!(VerificationKey::from_base64(&pem).is_ok());
        assert_eq!(
            VerificationKey::from_base64("not base64!"),
            Err(KeyError::NotBase64)
        );
        let der = STANDARD.decode(&public).unwrap();
        assert_eq!(p256_point_from_spki(&der).unwrap().len(), 65);
        assert_eq!(p256_point_from_spki(&der[..90]), Err(KeyError::NotP256));
        let mut compressed = der.clone();
        compressed[26] = 0x02;
        assert_eq!(p256_point_from_spki(&compressed), Err(KeyError::NotP256));
        let mut p384 = der;
        p384[20] = 0x22;
        assert_eq!(p256_point_from_spki(&p384), Err(KeyError::NotP256));
    }

    #[test]
    fn events_map_to_bounces_and_complaints() {
        let event = |name: &str, mut event: Value| {
            event["email"] = json!("example@test.com");
            event["timestamp"] = json!(1513299569);
            event["event"] = json!(name);
            event["sg_event_id"] = json!(format!("id-{name}"));
            event["sg_message_id"] = json!("14c5d75ce93.dfd.64b469.filter0001.16648.5515E0B88.0");
            event
        };
        let body = json!([
            event(
                "bounce",
                json!({"reason": "500 unknown recipient", "status": "5.0.0",
                "type": "bounce", "broadsheet_delivery": "d7f3"})
            ),
            event(
                "bounce",
                json!({"reason": "550 blocked", "status": "5.7.1", "type": "blocked"})
            ),
            event(
                "deferred",
                json!({"response": "400 try again later", "attempt": "5"})
            ),
            event("spamreport", json!({})),
            event(
                "dropped",
                json!({"reason": "Bounced Address", "status": "5.0.0"})
            ),
            event("dropped", json!({"reason": "Spam Reporting Address"})),
            event("dropped", json!({"reason": "Unsubscribed Address"})),
            event("delivered", json!({"response": "250 OK"})),
            event(
                "open",
                json!({"useragent": "Mozilla/4.0", "ip": "255.255.255.255"})
            )
        ]);
        let feedback = parse(&serde_json::to_vec(&body).unwrap()).unwrap();
        let kinds: Vec<_> = feedback
            .iter()
            .map(|f| (f.kind, f.status.as_str()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::HardBounce, "5.0.0"),
                (Kind::SoftBounce, "5.7.1"),
                (Kind::SoftBounce, "deferred"),
                (Kind::Complaint, "abuse"),
                (Kind::HardBounce, "5.0.0"),
                (Kind::Complaint, "abuse"),
            ]
        );
        let bounce = &feedback[0];
        assert_eq!(bounce.return_path.as_deref(), Some("d7f3"));
        assert_eq!(bounce.recipient.as_deref(), Some("example@test.com"));
        assert_eq!(bounce.detail, "500 unknown recipient");
        assert_eq!(bounce.event_id.as_deref(), Some("id-bounce"));
        assert_eq!(bounce.occurred_at.unwrap().timestamp(), 1513299569);
        assert_eq!(feedback[2].detail, "400 try again later");
        assert!(matches!(parse(b"{}"), Err(Refused::Malformed(_))));
    }
}
