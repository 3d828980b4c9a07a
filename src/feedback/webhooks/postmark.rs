//! Postmark signs nothing. A webhook is authenticated by HTTP basic
//! credentials written into its URL in Postmark's settings
//! (`https://user:password@host/…`, sent as an `Authorization: Basic`
//! header), or by a custom header set on the webhook that holds a secret.
//! Either way the secret travels with every request: the endpoint must be
//! HTTPS. There is no timestamp either, so nothing bounds a replay; the
//! record's `ID` becomes the `event_id`, and the caller acts once per id.
//!
//! One record per request. Bounce records map by their `Type` (Postmark's
//! bounce types, see [`bounce_kind`]); `SpamComplaint` records are
//! complaints; deliveries, opens, clicks and subscription changes are nothing.

use base64::{Engine as _, engine::general_purpose::STANDARD};

use super::{Refused, cut, first_text, json, rfc3339_at, same_secret, str_at, text_at};
use crate::feedback::{Feedback, Kind, Source};

/// The metadata key (`Metadata`) a message is sent with to name its
/// delivery; Postmark echoes a message's metadata in its webhooks.
pub const DELIVERY_METADATA: &str = crate::mail::PROVIDER_TAG_NAME;

/// Checks an `Authorization: Basic` header against the credentials
/// configured in the webhook's URL. An empty expected password refuses all.
pub fn verify(
    expected_user: &str,
    expected_password: &str,
    authorization: Option<&str>,
) -> Result<(), Refused> {
    let header = authorization
        .map(str::trim)
        .filter(|header| !header.is_empty())
        .ok_or(Refused::Unsigned)?;
    let (scheme, credentials) = header.split_once(' ').unwrap_or((header, ""));
    if !scheme.eq_ignore_ascii_case("basic") {
        return Err(Refused::Unsigned);
    }
    let decoded = STANDARD
        .decode(credentials.trim())
        .map_err(|_| Refused::BadSignature)?;
    // RFC 7617: the user-id ends at the first colon; the password may hold more.
    let colon = decoded
        .iter()
        .position(|&byte| byte == b':')
        .ok_or(Refused::BadSignature)?;
    let (user, password) = (&decoded[..colon], &decoded[colon + 1..]);
    let user_matches = same_secret(user, expected_user.as_bytes());
    let password_matches = same_secret(password, expected_password.as_bytes());
    if expected_password.is_empty() || !(user_matches & password_matches) {
        return Err(Refused::BadSignature);
    }
    Ok(())
}

/// What one (verified) webhook body reports.
pub fn parse(body: &[u8]) -> Result<Vec<Feedback>, Refused> {
    let record = json(body)?;
    if !record.is_object() {
        return Err(Refused::Malformed("expected one JSON record".into()));
    }
    let kind = match str_at(&record, "/RecordType") {
        Some("SpamComplaint") => Some(Kind::Complaint),
        Some("Bounce") => str_at(&record, "/Type").and_then(bounce_kind),
        _ => None,
    };
    let Some(kind) = kind else {
        return Ok(Vec::new());
    };
    // `Details` holds the receiving server's words, `Description` only
    // Postmark's wording of the bounce type: the first is worth more.
    let detail = first_text(&record, &["/Details", "/Description"]);
    Ok(vec![Feedback {
        kind,
        source: Source::Postmark,
        recipient: text_at(&record, "/Email"),
        return_path: text_at(&record, &format!("/Metadata/{DELIVERY_METADATA}")),
        status: first_text(&record, &["/Type", "/RecordType"]).unwrap_or_default(),
        detail: cut(detail.as_deref().unwrap_or("")),
        event_id: text_at(&record, "/ID"),
        occurred_at: rfc3339_at(&record, "/BouncedAt"),
    }])
}

/// Postmark's bounce types (Bounce API, "Bounce types"), each mapped on purpose:
/// - hard: `HardBounce` (unknown user, no mailbox) and `BadEmailAddress`
///   (not a valid address): the address will never take mail;
/// - soft: `SoftBounce` (mailbox full, account disabled), `Transient`
///   (delayed), `DnsError` (temporary DNS failure), `Blocked` (the
///   receiver refuses the sender for now, as SendGrid's `blocked`),
///   `SpamNotification` (filtered as spam by the receiving side, not by
///   the reader: repeated, it weighs; once, it suppresses nothing) and
///   `Unknown` (an unclassified bounce, as SES's `Undetermined`);
/// - complaint: `SpamComplaint`, the reader marked the message as spam;
/// - nothing: replies that are not bounces (`AutoResponder`, `Subscribe`,
///   `Unsubscribe`, `AddressChange`, `ChallengeVerification`,
///   `OpenRelayTest`, `VirusNotification`), Postmark's own states
///   (`ManuallyDeactivated`, an operator's choice in Postmark, and
///   `Unconfirmed`), and failures on the sending side that say nothing of
///   the reader's address (`DMARCPolicy`: our domain's alignment;
///   `SMTPApiError`, `InboundError`, `TemplateRenderingFailed`).
pub fn bounce_kind(bounce_type: &str) -> Option<Kind> {
    match bounce_type {
        "HardBounce" | "BadEmailAddress" => Some(Kind::HardBounce),
        "SoftBounce" | "Transient" | "DnsError" | "Blocked" | "SpamNotification" | "Unknown" => {
            Some(Kind::SoftBounce)
        }
        "SpamComplaint" => Some(Kind::Complaint),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    fn basic(credentials: &str) -> String {
        format!("Basic {}", STANDARD.encode(credentials))
    }

    #[test]
    fn the_configured_basic_credentials_pass_and_others_do_not() {
        let pass = |header: &str| verify("hooks", "pa:ss word", Some(header));
        assert!(pass(&basic("hooks:pa:ss word")).is_ok());
        assert!(pass(&format!("basic  {}", STANDARD.encode("hooks:pa:ss word"))).is_ok());
        assert!(matches!(
            pass(&basic("hooks:pa:ss")),
            Err(Refused::BadSignature)
        ));
        assert!(matches!(
            pass(&basic("hook:pa:ss word")),
            Err(Refused::BadSignature)
        ));
        assert!(matches!(pass(&basic("hooks")), Err(Refused::BadSignature)));
        assert!(matches!(pass("Basic !!!"), Err(Refused::BadSignature)));
        assert!(matches!(pass("Bearer abc"), Err(Refused::Unsigned)));
        assert!(matches!(
            verify("hooks", "pw", None),
            Err(Refused::Unsigned)
        ));
        let empty = verify("", "", Some(&basic(":")));
        assert!(matches!(empty, Err(Refused::BadSignature)));
    }

    fn bounce(bounce_type: &str, details: &str) -> Vec<u8> {
        serde_json::to_vec(&json!({
            "RecordType": "Bounce",
            "ID": 4323372036854775807_u64,
            "Type": bounce_type,
            "TypeCode": 1,
            "Name": "Hard bounce",
            "Tag": "Test",
            "MessageID": "883953f4-6105-42a2-a16a-77a8eac79483",
            "ServerID": 23,
            "MessageStream": "outbound",
            "Description": "The server was unable to deliver your message (ex: unknown user, mailbox not found).",
            "Details": details,
            "Email": "john@example.com",
            "From": "sender@example.com",
            "BouncedAt": "2019-11-05T16:33:54.9070259Z",
            "DumpAvailable": true,
            "Inactive": true,
            "CanActivate": true,
            "Subject": "Test subject",
            "Content": "Return-Path:....",
            "Metadata": {"broadsheet_delivery": "d7f3", "a_key": "a_value"}
        }))
        .unwrap()
    }

    #[test]
    fn a_hard_bounce_names_its_record_and_delivery() {
        let feedback = parse(&bounce("HardBounce", "smtp;550 5.1.1 user unknown")).unwrap();
        assert_eq!(feedback.len(), 1);
        let hard = &feedback[0];
        assert_eq!(hard.kind, Kind::HardBounce);
        assert_eq!(hard.source, Source::Postmark);
        assert_eq!(hard.recipient.as_deref(), Some("john@example.com"));
        assert_eq!(hard.return_path.as_deref(), Some("d7f3"));
        assert_eq!(hard.status, "HardBounce");
        assert_eq!(hard.detail, "smtp;550 5.1.1 user unknown");
        assert_eq!(hard.event_id.as_deref(), Some("4323372036854775807"));
        let at = hard.occurred_at.unwrap();
        assert_eq!(at.to_rfc3339(), "2019-11-05T16:33:54.907025900+00:00");
    }

    #[test]
    fn a_soft_bounce_a_complaint_and_a_delivery() {
        let soft = parse(&bounce("SoftBounce", "")).unwrap();
        assert_eq!(soft[0].kind, Kind::SoftBounce);
        assert!(soft[0].detail.starts_with("The server was unable"));
        let complaint = json!({
            "RecordType": "SpamComplaint", "ID": 42, "Type": "SpamComplaint", "TypeCode": 512,
            "Email": "john@example.com", "BouncedAt": "2019-11-05T16:33:54Z", "Details": "Test spam complaint details"
        });
        let complaint = parse(&serde_json::to_vec(&complaint).unwrap()).unwrap();
        assert_eq!(complaint[0].kind, Kind::Complaint);
        assert_eq!(complaint[0].event_id.as_deref(), Some("42"));
        assert_eq!(complaint[0].return_path, None);
        let delivery = json!({
            "RecordType": "Delivery", "ServerID": 23, "MessageStream": "outbound",
            "MessageID": "00000000-0000-0000-0000-000000000000", "Recipient": "john@example.com",
            "DeliveredAt": "2019-11-05T16:33:54Z", "Details": "Test delivery webhook details"
        });
        assert!(
            parse(&serde_json::to_vec(&delivery).unwrap())
                .unwrap()
                .is_empty()
        );
        assert!(parse(&bounce("AutoResponder", "")).unwrap().is_empty());
        assert!(matches!(parse(b"[]"), Err(Refused::Malformed(_))));
    }

    #[test]
    fn each_bounce_type_is_mapped_on_purpose() {
        for hard in ["HardBounce", "BadEmailAddress"] {
            assert_eq!(bounce_kind(hard), Some(Kind::HardBounce), "{hard}");
        }
        let soft = [
            "SoftBounce",
            "Transient",
            "DnsError",
            "Blocked",
            "SpamNotification",
            "Unknown",
        ];
        for soft in soft {
            assert_eq!(bounce_kind(soft), Some(Kind::SoftBounce), "{soft}");
        }
        assert_eq!(bounce_kind("SpamComplaint"), Some(Kind::Complaint));
        let nothing = [
            "AutoResponder",
            "Subscribe",
            "Unsubscribe",
            "AddressChange",
            "ChallengeVerification",
            "OpenRelayTest",
            "VirusNotification",
            "ManuallyDeactivated",
            "Unconfirmed",
            "DMARCPolicy",
            "SMTPApiError",
            "InboundError",
            "TemplateRenderingFailed",
        ];
        for other in nothing {
            assert_eq!(bounce_kind(other), None, "{other}");
        }
    }
}
