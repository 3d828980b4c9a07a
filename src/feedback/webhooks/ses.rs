//! Amazon SES's reports, the `Message` of an SNS notification (its envelope
//! checked by `sns` first). Two formats carry them, with the same `mail`,
//! `bounce` and `complaint` objects: notifications set on an identity
//! (`notificationType`) and event publishing through a configuration set
//! (`eventType`) ("Amazon SNS notification contents for Amazon SES",
//! "Contents of event data that Amazon SES publishes to Amazon SNS").
//! Bounces and complaints are read, one `Feedback` per recipient; the
//! other kinds (Delivery, Send, Open, …) are nothing.
//!
//! The delivery a report is about is the tag of `mail.source`, the
//! envelope sender, when the message was sent from a tagged return path;
//! else the [`DELIVERY_HEADER`] among the original headers, which SES
//! includes when an identity's notifications are set to include them.

use serde_json::Value;

use crate::{domain::tag_of, mail::DELIVERY_HEADER};

use super::{Refused, cut, first_text, rfc3339_at, str_at, text_at};
use crate::feedback::{Feedback, Kind, Source};

/// What an SES report (an SNS notification's `Message`) says.
pub fn parse_notification(message_json: &str) -> Result<Vec<Feedback>, Refused> {
    let report: Value = serde_json::from_str(message_json)
        .map_err(|e| Refused::Malformed(format!("the SES report is not JSON: {e}")))?;
    let kind = str_at(&report, "/notificationType").or_else(|| str_at(&report, "/eventType"));
    let return_path = delivery_of(&report);
    Ok(match kind {
        Some("Bounce") => bounces(&report, return_path.as_deref()),
        Some("Complaint") => complaints(&report, return_path.as_deref()),
        _ => Vec::new(),
    })
}

/// `bounceType` Permanent is a hard bounce; Transient and Undetermined
/// (SES could not tell) are soft ones.
fn bounces(report: &Value, return_path: Option<&str>) -> Vec<Feedback> {
    let bounce_type = str_at(report, "/bounce/bounceType").unwrap_or("Undetermined");
    let kind = match bounce_type {
        "Permanent" => Kind::HardBounce,
        _ => Kind::SoftBounce,
    };
    // Bounces without a DSN have no per-recipient status: say what SES says.
    let bounce_status = match str_at(report, "/bounce/bounceSubType") {
        Some(subtype) => format!("{bounce_type}/{subtype}"),
        None => bounce_type.to_owned(),
    };
    let feedback_id = text_at(report, "/bounce/feedbackId");
    let occurred_at = rfc3339_at(report, "/bounce/timestamp");
    array_at(report, "/bounce/bouncedRecipients")
        .map(|bounced| {
            let address = text_at(bounced, "/emailAddress");
            let detail = text_at(bounced, "/diagnosticCode");
            Feedback {
                kind,
                source: Source::Ses,
                event_id: event_id(feedback_id.as_deref(), address.as_deref()),
                recipient: address,
                return_path: return_path.map(str::to_owned),
                status: text_at(bounced, "/status").unwrap_or_else(|| bounce_status.clone()),
                detail: cut(detail.as_deref().unwrap_or("")),
                occurred_at,
            }
        })
        .collect()
}

/// A complaint's status is its ARF feedback type, "abuse" when the mailbox
/// provider gave none.
fn complaints(report: &Value, return_path: Option<&str>) -> Vec<Feedback> {
    let status =
        text_at(report, "/complaint/complaintFeedbackType").unwrap_or_else(|| "abuse".to_owned());
    let detail = first_text(
        report,
        &["/complaint/complaintSubType", "/complaint/userAgent"],
    );
    let feedback_id = text_at(report, "/complaint/feedbackId");
    let occurred_at = rfc3339_at(report, "/complaint/timestamp");
    array_at(report, "/complaint/complainedRecipients")
        .map(|complained| {
            let address = text_at(complained, "/emailAddress");
            Feedback {
                kind: Kind::Complaint,
                source: Source::Ses,
                event_id: event_id(feedback_id.as_deref(), address.as_deref()),
                recipient: address,
                return_path: return_path.map(str::to_owned),
                status: status.clone(),
                detail: cut(detail.as_deref().unwrap_or("")),
                occurred_at,
            }
        })
        .collect()
}

/// One report covers several recipients under one `feedbackId`: the
/// address makes each one's id.
fn event_id(feedback_id: Option<&str>, address: Option<&str>) -> Option<String> {
    match (feedback_id, address) {
        (Some(id), Some(address)) => Some(format!("{id}/{address}")),
        (id, _) => id.map(str::to_owned),
    }
}

/// The tag of the envelope sender, else the delivery header's value.
fn delivery_of(report: &Value) -> Option<String> {
    if let Some(tag) = str_at(report, "/mail/source")
        .and_then(tag_of)
        .map(str::to_owned)
    {
        return Some(tag);
    }
    array_at(report, "/mail/headers")
        .find(|header| {
            str_at(header, "/name").is_some_and(|name| name.eq_ignore_ascii_case(DELIVERY_HEADER))
        })
        .and_then(|header| text_at(header, "/value"))
}

/// The elements of the array at a JSON pointer; none if there is no array.
fn array_at<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> + use<'a> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;

    /// The `mail` object, as both formats give it.
    fn mail(source: &str, headers: &Value) -> Value {
        json!({
            "timestamp": "2016-01-27T14:59:38.237Z",
            "source": source,
            "sourceArn": "arn:aws:ses:us-east-1:888888888888:identity/example.com",
            "sourceIp": "127.0.3.0",
            "sendingAccountId": "123456789012",
            "messageId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa0680-000000",
            "destination": ["jane@example.com", "mary@example.com", "richard@example.com"],
            "headersTruncated": false,
            "headers": headers
        })
    }

    #[test]
    fn a_permanent_bounce_gives_one_hard_bounce_per_recipient() {
        let report = json!({
            "notificationType": "Bounce",
            "bounce": {
                "bounceType": "Permanent",
                "bounceSubType": "General",
                "bouncedRecipients": [
                    {"emailAddress": "jane@example.com", "status": "5.1.1", "action": "failed",
                     "diagnosticCode": "smtp; 550 5.1.1 <jane@example.com>... User"},
                    {"emailAddress": "richard@example.com"}
                ],
                "timestamp": "2016-01-27T14:59:38.237Z",
                "feedbackId": "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000",
                "remoteMtaIp": "127.0.2.0",
                "reportingMTA": "dns; email.example.com"
            },
            "mail": mail("bounces+d7f3@example.com", &json!([]))
        });
        let feedback = parse_notification(&report.to_string()).unwrap();
        assert_eq!(feedback.len(), 2);
        let jane = &feedback[0];
        assert_eq!(jane.kind, Kind::HardBounce);
        assert_eq!(jane.source, Source::Ses);
        assert_eq!(jane.recipient.as_deref(), Some("jane@example.com"));
        assert_eq!(jane.return_path.as_deref(), Some("d7f3"));
        assert_eq!(jane.status, "5.1.1");
        assert_eq!(jane.detail, "smtp; 550 5.1.1 <jane@example.com>... User");
        let id = "00000138111222aa-33322211-cccc-cccc-cccc-ddddaaaa068a-000000/jane@example.com";
        assert_eq!(jane.event_id.as_deref(), Some(id));
        assert_eq!(jane.occurred_at.unwrap().timestamp_millis(), 1453906778237);
        let richard = &feedback[1];
        assert_eq!(richard.kind, Kind::HardBounce);
        assert_eq!(richard.status, "Permanent/General");
        assert_eq!(richard.detail, "");
        assert_ne!(richard.event_id, jane.event_id);
    }

    #[test]
    fn a_published_transient_bounce_is_soft_and_named_by_its_header() {
        let headers = json!([
            {"name": "From", "value": "News <news@example.com>"},
            {"name": "x-broadsheet-delivery", "value": "d7f3"}
        ]);
        let report = json!({
            "eventType": "Bounce",
            "bounce": {
                "bounceType": "Transient",
                "bounceSubType": "MailboxFull",
                "bouncedRecipients": [{"emailAddress": "recipient@example.com", "status": "4.2.2",
                    "action": "failed", "diagnosticCode": "smtp; 452 4.2.2 Mailbox full"}],
                "timestamp": "2017-08-05T00:41:02.669Z",
                "feedbackId": "01000157c44f053b-61b59c11-9236-11e6-8f96-7be8aexample-000000",
                "reportingMTA": "dsn; mta.example.com"
            },
            "mail": mail("News <news@example.com>", &headers)
        });
        let feedback = parse_notification(&report.to_string()).unwrap();
        assert_eq!(feedback.len(), 1);
        assert_eq!(feedback[0].kind, Kind::SoftBounce);
        assert_eq!(feedback[0].status, "4.2.2");
        assert_eq!(feedback[0].return_path.as_deref(), Some("d7f3"));
        let mut undetermined = report;
        undetermined["bounce"]["bounceType"] = json!("Undetermined");
        let feedback = parse_notification(&undetermined.to_string()).unwrap();
        assert_eq!(feedback[0].kind, Kind::SoftBounce);
    }

    #[test]
    fn complaints_in_both_formats_and_deliveries_are_nothing() {
        let complaint = |field: &str, feedback_type: Value| {
            let mut report = json!({
                "complaint": {
                    "userAgent": "AnyCompany Feedback Loop (V0.01)",
                    "complainedRecipients": [{"emailAddress": "richard@example.com"}],
                    "complaintFeedbackType": feedback_type,
                    "arrivalDate": "2016-01-27T14:59:38.237Z",
                    "timestamp": "2016-01-27T14:59:38.237Z",
                    "feedbackId": "000001378603177f-18c07c78-fa81-4a58-9dd1-fedc3cb8f49a-000000"
                },
                "mail": mail("bounces+c0ffee@example.com", &json!([]))
            });
            report[field] = json!("Complaint");
            parse_notification(&report.to_string()).unwrap()
        };
        let notified = complaint("notificationType", json!("abuse"));
        assert_eq!(notified.len(), 1);
        assert_eq!(notified[0].kind, Kind::Complaint);
        assert_eq!(notified[0].status, "abuse");
        assert_eq!(
            notified[0].recipient.as_deref(),
            Some("richard@example.com")
        );
        assert_eq!(notified[0].return_path.as_deref(), Some("c0ffee"));
        assert_eq!(notified[0].detail, "AnyCompany Feedback Loop (V0.01)");
        let published = complaint("eventType", Value::Null);
        assert_eq!(published[0].kind, Kind::Complaint);
        assert_eq!(published[0].status, "abuse");
        let delivery = json!({"notificationType": "Delivery", "mail": mail("a@example.com", &json!([])),
            "delivery": {"recipients": ["jane@example.com"], "smtpResponse": "250 ok"}});
        assert!(
            parse_notification(&delivery.to_string())
                .unwrap()
                .is_empty()
        );
        let open = json!({"eventType": "Open", "mail": mail("a@example.com", &json!([]))});
        assert!(parse_notification(&open.to_string()).unwrap().is_empty());
        assert!(matches!(
            parse_notification("Hello world!"),
            Err(Refused::Malformed(_))
        ));
    }
}
