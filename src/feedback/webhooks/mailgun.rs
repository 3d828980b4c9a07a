//! Mailgun posts one JSON event per request, `{"signature": {"timestamp",
//! "token", "signature"}, "event-data": {…}}`. The signature is the hex
//! HMAC-SHA256, under the webhook signing key, of the timestamp followed by
//! the token (Mailgun's "Securing Webhooks"). The timestamp bounds how long a
//! captured request can be replayed; within that time, the token does: the
//! caller keeps the tokens it has seen and refuses one seen before.
//!
//! Subaccounts' `parent-signature` is not checked: configure the key of the
//! account whose domain sends.

use chrono::{DateTime, TimeDelta, Utc};
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha2::Sha256;

use crate::domain::tag_of;

use super::{Refused, check_fresh, cut, first_text, str_at, text_at, unix_time_at};
use crate::feedback::{Feedback, Kind, Source};

/// How far the signature's timestamp may be from our clock, either side.
pub const MAX_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The token of a verified request. Keep the tokens seen for at least
/// twice [`MAX_SKEW`] (older ones are refused as stale anyway) and refuse a
/// request whose token was seen before: that is a replay.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ReplayToken(pub String);

/// Checks the signature in a Mailgun webhook body, against the webhook
/// signing key, and that it was made within [`MAX_SKEW`] of `now`.
pub fn verify(
    body: &Value,
    signing_key: &[u8],
    now: DateTime<Utc>,
) -> Result<ReplayToken, Refused> {
    let (Some(timestamp), Some(token), Some(signature)) = (
        text_at(body, "/signature/timestamp"),
        text_at(body, "/signature/token"),
        text_at(body, "/signature/signature"),
    ) else {
        return Err(Refused::Unsigned);
    };
    let signature = hex::decode(signature).map_err(|_| Refused::BadSignature)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(signing_key).map_err(|_| Refused::BadSignature)?;
    mac.update(timestamp.as_bytes());
    mac.update(token.as_bytes());
    // `verify_slice` compares in constant time.
    mac.verify_slice(&signature)
        .map_err(|_| Refused::BadSignature)?;
    let signed_at = timestamp
        .parse::<i64>()
        .ok()
        .and_then(|seconds| DateTime::<Utc>::from_timestamp(seconds, 0))
        .ok_or_else(|| {
            Refused::Malformed("the signature's timestamp is not Unix seconds".into())
        })?;
    check_fresh(signed_at, now, MAX_SKEW, MAX_SKEW)?;
    Ok(ReplayToken(token))
}

/// What one event (the body's `event-data`) reports: `failed` with
/// `severity: permanent` is a hard bounce, any other `failed` a soft one,
/// `complained` a complaint; other events (delivered, opened, …) nothing.
pub fn parse(event_data: &Value) -> Vec<Feedback> {
    let kind = match (
        str_at(event_data, "/event"),
        str_at(event_data, "/severity"),
    ) {
        (Some("failed"), Some("permanent")) => Kind::HardBounce,
        (Some("failed"), _) => Kind::SoftBounce,
        (Some("complained"), _) => Kind::Complaint,
        _ => return Vec::new(),
    };
    let status = match kind {
        Kind::Complaint => "abuse".to_owned(),
        _ => first_text(
            event_data,
            &[
                "/delivery-status/enhanced-code",
                "/delivery-status/code",
                "/reason",
            ],
        )
        .unwrap_or_else(|| "failed".to_owned()),
    };
    let detail = first_text(
        event_data,
        &["/delivery-status/description", "/delivery-status/message"],
    );
    vec![Feedback {
        kind,
        source: Source::Mailgun,
        recipient: text_at(event_data, "/recipient"),
        return_path: str_at(event_data, "/envelope/sender")
            .and_then(tag_of)
            .map(str::to_owned),
        status,
        detail: cut(detail.as_deref().unwrap_or("")),
        event_id: text_at(event_data, "/id"),
        occurred_at: unix_time_at(event_data, "/timestamp"),
    }]
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    const KEY: &[u8] = b"key-7c2a1f0e9d8b";
    const NOW: i64 = 1_770_920_772;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(NOW, 0).unwrap()
    }

    fn signed(key: &[u8], timestamp: i64, token: &str) -> Value {
        let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
        mac.update(format!("{timestamp}{token}").as_bytes());
        let signature = hex::encode(mac.finalize().into_bytes());
        json!({
            "signature": {"timestamp": timestamp.to_string(), "token": token, "signature": signature},
            "event-data": {"event": "delivered"}
        })
    }

    #[test]
    fn a_valid_signature_passes_and_gives_its_token() {
        let body = signed(
            KEY,
            NOW - 30,
            "e0b5477167110d68991efc6b9f89f0a11066af27834600e123",
        );
        let token = verify(&body, KEY, now()).unwrap();
        assert_eq!(
            token.0,
            "e0b5477167110d68991efc6b9f89f0a11066af27834600e123"
        );
    }

    #[test]
    fn a_changed_token_a_wrong_key_or_no_signature_is_refused() {
        let mut body = signed(KEY, NOW, "token-one");
        body["signature"]["token"] = json!("token-two");
        assert!(matches!(
            verify(&body, KEY, now()),
            Err(Refused::BadSignature)
        ));
        let body = signed(b"another key", NOW, "token-one");
        assert!(matches!(
            verify(&body, KEY, now()),
            Err(Refused::BadSignature)
        ));
        let mut body = signed(KEY, NOW, "token-one");
        body["signature"]["signature"] = json!("not hex");
        assert!(matches!(
            verify(&body, KEY, now()),
            Err(Refused::BadSignature)
        ));
        let body = json!({"event-data": {"event": "failed"}});
        assert!(matches!(verify(&body, KEY, now()), Err(Refused::Unsigned)));
    }

    #[test]
    fn a_signature_ten_minutes_old_or_ahead_is_stale() {
        let body = signed(KEY, NOW - 600, "token-one");
        assert!(matches!(verify(&body, KEY, now()), Err(Refused::Stale)));
        let body = signed(KEY, NOW + 600, "token-one");
        assert!(matches!(verify(&body, KEY, now()), Err(Refused::Stale)));
    }

    fn failed(severity: &str, code: &Value) -> Value {
        json!({
            "event": "failed",
            "id": "G9Bn5sl1TC6nu79C8C0bwg",
            "timestamp": 1521233195.375624,
            "severity": severity,
            "reason": "bounce",
            "recipient": "alice@example.com",
            "envelope": {"sender": "bounces+d7f3a1@news.example.org", "transport": "smtp"},
            "delivery-status": {
                "code": code,
                "message": "smtp; 550 5.1.1 The email account that you tried to reach does not exist",
                "description": "",
                "attempt-no": 1
            }
        })
    }

    #[test]
    fn a_permanent_failure_is_a_hard_bounce_with_its_delivery() {
        let feedback = parse(&failed("permanent", &json!(550)));
        assert_eq!(feedback.len(), 1);
        let bounce = &feedback[0];
        assert_eq!(bounce.kind, Kind::HardBounce);
        assert_eq!(bounce.source, Source::Mailgun);
        assert_eq!(bounce.recipient.as_deref(), Some("alice@example.com"));
        assert_eq!(bounce.return_path.as_deref(), Some("d7f3a1"));
        assert_eq!(bounce.status, "550");
        assert!(bounce.detail.starts_with("smtp; 550 5.1.1"));
        assert_eq!(bounce.event_id.as_deref(), Some("G9Bn5sl1TC6nu79C8C0bwg"));
        assert_eq!(bounce.occurred_at.unwrap().timestamp(), 1521233195);
    }

    #[test]
    fn a_temporary_failure_is_a_soft_bounce_and_prefers_the_enhanced_code() {
        let mut event = failed("temporary", &json!("452"));
        event["delivery-status"]["enhanced-code"] = json!("4.2.2");
        event["delivery-status"]["description"] = json!("Mailbox full");
        let feedback = parse(&event);
        assert_eq!(feedback[0].kind, Kind::SoftBounce);
        assert_eq!(feedback[0].status, "4.2.2");
        assert_eq!(feedback[0].detail, "Mailbox full");
    }

    #[test]
    fn a_complaint_is_a_complaint_and_a_delivery_is_nothing() {
        let complained = json!({
            "event": "complained",
            "id": "-Agny091SquKnsrW2NEKUA",
            "timestamp": 1521233123.501324,
            "recipient": "alice@example.com",
            "envelope": {"sender": "bounces@news.example.org"}
        });
        let feedback = parse(&complained);
        assert_eq!(feedback[0].kind, Kind::Complaint);
        assert_eq!(feedback[0].status, "abuse");
        assert_eq!(feedback[0].return_path, None);
        let delivered = json!({"event": "delivered", "recipient": "alice@example.com"});
        assert!(parse(&delivered).is_empty());
        assert!(parse(&json!({"event": "opened"})).is_empty());
        assert!(parse(&Value::Null).is_empty());
    }
}
