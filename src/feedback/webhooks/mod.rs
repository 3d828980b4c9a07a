//! Bounces and complaints posted by sending providers. For each provider,
//! `verify` decides whether a request really comes from it and `parse`
//! reads what it reports into [`Feedback`](super::Feedback). Pure
//! functions: no HTTP, no storage, no network. The routes, the
//! configuration, the store of replay tokens and ids, and the fetching of
//! SNS certificates live with the caller.
//!
//! | provider | proof of origin | against replays |
//! |---|---|---|
//! | Mailgun (`mailgun`) | HMAC-SHA256 of timestamp and token, in the body | timestamp within 5 min; each token once (caller) |
//! | SendGrid (`sendgrid`) | ECDSA P-256 over timestamp and raw body, in headers | timestamp within 5 min; `sg_event_id` |
//! | Postmark (`postmark`) | HTTP basic credentials | none of its own; `ID` |
//! | Amazon SES through SNS (`sns`, `ses`) | RSA SHA-256 signature, certificate from an SNS host | `Timestamp` within the retry hour; `MessageId` |
//!
//! Every `Feedback` carries the provider's event id, so the caller acts
//! once on an event delivered twice.

use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Mailgun's signed JSON events.
pub mod mailgun;
/// Postmark's bounce and spam complaint webhooks.
pub mod postmark;
/// SendGrid's signed event webhook.
pub mod sendgrid;
/// Amazon SES's notifications and published events, inside SNS messages.
pub mod ses;
/// Amazon SNS's signed envelope around SES's notifications.
pub mod sns;

/// Why a webhook request is refused: `Malformed` is a 400, every other
/// variant a 401 (see [`Refused::is_malformed`]).
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    /// No signature, no credentials.
    #[error("the request is not signed and carries no credentials")]
    Unsigned,
    /// A signature or credentials that do not match, or cannot be checked.
    #[error("the signature or the credentials do not match")]
    BadSignature,
    /// Signed too long ago, or too far ahead: outside the allowed clock skew.
    #[error("the request's timestamp is outside the allowed clock skew")]
    Stale,
    /// The same request (or, for Mailgun, the same token) was accepted before.
    #[error("this request was received before")]
    Replayed,
    /// An SNS topic that is not in the configured list.
    #[error("the SNS topic is not one this service accepts")]
    UnknownTopic,
    /// A certificate or subscription URL that is not on an Amazon SNS host.
    #[error("the URL in the message is not an Amazon SNS URL")]
    UntrustedUrl,
    /// Signed in a way this service does not accept; says what to change.
    #[error("unsupported signature: {0}")]
    Unsupported(&'static str),
    /// Not the provider's documented format.
    #[error("malformed webhook request: {0}")]
    Malformed(String),
}

impl Refused {
    /// Whether the answer is 400 (the request is not in the provider's
    /// format) rather than 401 (it is not proven to come from the provider).
    pub fn is_malformed(&self) -> bool {
        matches!(self, Self::Malformed(_))
    }
}

/// The longest `detail` kept: enough for an SMTP reply, not a whole bounce.
const DETAIL_CHARS: usize = 500;

/// `Stale` unless `at` is at most `past` before `now` and at most `ahead` after it.
fn check_fresh(
    at: DateTime<Utc>,
    now: DateTime<Utc>,
    past: TimeDelta,
    ahead: TimeDelta,
) -> Result<(), Refused> {
    if at < now - past || at > now + ahead {
        return Err(Refused::Stale);
    }
    Ok(())
}

/// Whether two secrets are equal, in time that depends on neither their
/// contents nor their lengths (both are hashed first).
fn same_secret(given: &[u8], expected: &[u8]) -> bool {
    let given = Sha256::digest(given);
    let expected = Sha256::digest(expected);
    given.as_slice().ct_eq(expected.as_slice()).into()
}

/// The string at a JSON pointer (`/bounce/bounceType`), if it is a string.
fn str_at<'a>(value: &'a Value, pointer: &str) -> Option<&'a str> {
    value.pointer(pointer).and_then(Value::as_str)
}

/// The text at a JSON pointer: a non-empty string, or a number written out.
fn text_at(value: &Value, pointer: &str) -> Option<String> {
    match value.pointer(pointer)? {
        Value::String(text) if !text.trim().is_empty() => Some(text.trim().to_owned()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// The first of `pointers` that holds text.
fn first_text(value: &Value, pointers: &[&str]) -> Option<String> {
    pointers.iter().find_map(|pointer| text_at(value, pointer))
}

/// Seconds since the Unix epoch, whole or fractional, as a number or a
/// string of one.
fn unix_time_at(value: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let seconds: f64 = match value.pointer(pointer)? {
        Value::Number(number) => number.as_f64()?,
        Value::String(text) => text.trim().parse().ok()?,
        _ => return None,
    };
    if !seconds.is_finite() {
        return None;
    }
    DateTime::<Utc>::from_timestamp_micros((seconds * 1e6).round() as i64)
}

/// An RFC 3339 time at a JSON pointer, in UTC.
fn rfc3339_at(value: &Value, pointer: &str) -> Option<DateTime<Utc>> {
    let text = str_at(value, pointer)?;
    DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.with_timezone(&Utc))
}

/// `text` trimmed and cut to [`DETAIL_CHARS`] characters.
fn cut(text: &str) -> String {
    text.trim().chars().take(DETAIL_CHARS).collect()
}

/// The JSON body, or `Malformed`.
fn json(body: &[u8]) -> Result<Value, Refused> {
    serde_json::from_slice(body).map_err(|e| Refused::Malformed(format!("not JSON: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn freshness_allows_the_skew_on_either_side_and_no_more() {
        let now = DateTime::<Utc>::from_timestamp(1_700_000_000, 0).unwrap();
        let five = TimeDelta::minutes(5);
        assert!(check_fresh(now - five, now, five, five).is_ok());
        assert!(check_fresh(now + five, now, five, five).is_ok());
        let late = now - five - TimeDelta::seconds(1);
        assert!(matches!(
            check_fresh(late, now, five, five),
            Err(Refused::Stale)
        ));
        let early = now + five + TimeDelta::seconds(1);
        assert!(matches!(
            check_fresh(early, now, five, five),
            Err(Refused::Stale)
        ));
    }

    #[test]
    fn secrets_compare_equal_only_when_equal() {
        assert!(same_secret(b"s3cret", b"s3cret"));
        assert!(!same_secret(b"s3cret", b"s3creT"));
        assert!(!same_secret(b"s3cret", b"s3cret "));
        assert!(!same_secret(b"", b"s3cret"));
    }

    #[test]
    fn times_and_texts_are_read_from_numbers_or_strings() {
        let value =
            serde_json::json!({"a": 1521472262.908181, "b": "1513299569", "c": 550, "d": " "});
        let at = unix_time_at(&value, "/a").unwrap();
        assert_eq!(at.timestamp(), 1521472262);
        assert_eq!(at.timestamp_subsec_micros(), 908181);
        assert_eq!(unix_time_at(&value, "/b").unwrap().timestamp(), 1513299569);
        assert_eq!(text_at(&value, "/c").as_deref(), Some("550"));
        assert_eq!(text_at(&value, "/d"), None);
        assert_eq!(cut(&"x".repeat(900)).len(), DETAIL_CHARS);
    }
}
