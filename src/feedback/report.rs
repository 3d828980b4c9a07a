//! What a message in the bounce mailbox says: delivery status notifications
//! (RFC 3464, `dsn`), complaint reports (RFC 5965, `arf`) and the few
//! non-standard bounce shapes still met (`plain`). Pure, bytes in and
//! feedback out, so the mailbox reader around it only fetches and records.
//!
//! A report names the delivery it is about by the tag of our VERP envelope
//! sender, `<local>+<tag>@<domain>`: bounces are mailed to that address, and
//! the returned original carries it as its `Return-Path` ([`tag_of`]).

mod arf;
mod dsn;
mod fields;
mod plain;

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use mail_parser::{Message, MessageParser, MessagePart, MimeHeaders};

use super::{Feedback, Kind, Source};
use fields::Fields;

// Our outgoing mail carries its tag in `DELIVERY_HEADER` too: complaint
// loops that redact the recipient often rewrite the return path, but keep
// the original's own headers. A message with it at the top level is our
// own mail come back (a loop), never a report.
use crate::mail::DELIVERY_HEADER;

/// The longest `detail` kept, in characters: an SMTP reply fits.
const DETAIL_CHARS: usize = 300;

/// The bounce's own recipient headers, in the order they are trusted for
/// the tag: those the receiving MTA writes from the envelope come first.
const RECIPIENT_HEADERS: [&str; 4] = ["X-Original-To", "Delivered-To", "Envelope-To", "To"];

/// Media types, as `(type, subtype)`.
type MediaTypes = [(&'static str, &'static str)];

/// The machine-readable part of a DSN (RFC 3464 §2; RFC 6533 for UTF-8).
const DELIVERY_STATUS: &MediaTypes = &[
    ("message", "delivery-status"),
    ("message", "global-delivery-status"),
];

/// The machine-readable part of a complaint report (RFC 5965).
const FEEDBACK_REPORT: &MediaTypes = &[("message", "feedback-report")];

/// The returned original, whole or only its header (RFC 6522, RFC 6533).
const ORIGINAL: &MediaTypes = &[
    ("message", "rfc822"),
    ("message", "global"),
    ("text", "rfc822-headers"),
    ("message", "global-headers"),
];

const REPORT: &MediaTypes = &[("multipart", "report")];

/// What one part of a report says about one recipient, before what the
/// message as a whole says (its id, its date, the tag) is added.
struct Finding {
    kind: Kind,
    recipient: Option<String>,
    status: String,
    detail: String,
    /// The report's own time for this recipient, when it gives one.
    occurred_at: Option<DateTime<Utc>>,
}

/// The findings of a message, with what names the delivery they are about.
#[derive(Default)]
struct Reading {
    findings: Vec<Finding>,
    /// The header of the returned original, attached or quoted.
    original: Option<Fields>,
    /// The envelope sender the report names (ARF's `Original-Mail-From`).
    sender: Option<String>,
}

/// What a message in the bounce mailbox says, if it is a report at all.
pub fn parse(raw: &[u8]) -> Vec<Feedback> {
    let Some(message) = MessageParser::default().parse(raw) else {
        return Vec::new();
    };
    let top = Fields::header(&String::from_utf8_lossy(raw));
    if top.get(DELIVERY_HEADER).is_some() {
        return Vec::new();
    }
    let reading = read(&message, &top);
    let context = Context::new(&top, &reading);
    reading
        .findings
        .into_iter()
        .map(|finding| context.feedback(finding))
        .collect()
}

/// The tag of the VERP address in a header's value (bare, in `<…>` or
/// after a display name): the text between the first `+` and the `@`.
fn tag_of(address: &str) -> Option<&str> {
    crate::domain::tag_of(fields::address_in(address)?)
}

/// What the message's parts say, read as the kind of report it is: known
/// by its machine-readable part rather than by `report-type`, which a few
/// MTAs leave out. Only a message that is no report is read as plain text.
fn read(message: &Message<'_>, top: &Fields) -> Reading {
    let original = attached_original(message);
    if let Some(status) = part_text(message, DELIVERY_STATUS) {
        return Reading {
            findings: dsn::findings(&status),
            original,
            sender: None,
        };
    }
    if let Some(text) = part_text(message, FEEDBACK_REPORT) {
        let report = Fields::header(text.trim_start());
        return Reading {
            findings: arf::findings(&report, original.as_ref()),
            sender: report.get("Original-Mail-From").map(str::to_owned),
            original,
        };
    }
    if message.parts.iter().any(|part| is_one_of(part, REPORT)) {
        // Another kind of report (a read receipt, a TLS report): it says
        // nothing of a delivery failing, and is no plain bounce either.
        return Reading::default();
    }
    let body = first_text(message).unwrap_or_default();
    let notice = plain::Notice {
        top,
        subject: message.subject().unwrap_or_default(),
        body,
    };
    Reading {
        findings: plain::findings(&notice),
        original: original.or_else(|| plain::inline_original(body)),
        sender: None,
    }
}

/// What the message as a whole adds to each of its findings.
struct Context {
    message_id: Option<String>,
    date: Option<DateTime<Utc>>,
    tag: Option<String>,
}

impl Context {
    fn new(top: &Fields, reading: &Reading) -> Self {
        let tag = delivery_tag(top, reading.original.as_ref(), reading.sender.as_deref());
        Self {
            message_id: top.get("Message-ID").map(str::to_owned),
            date: top.get("Date").and_then(fields::date),
            tag: tag.map(str::to_owned),
        }
    }

    fn feedback(&self, finding: Finding) -> Feedback {
        // The report's own id with the recipient: the same report read
        // twice is one event, and each recipient of it another.
        let event_id = self.message_id.as_ref().map(|id| match &finding.recipient {
            Some(recipient) => format!("{id}/{recipient}"),
            None => id.clone(),
        });
        Feedback {
            kind: finding.kind,
            source: Source::Mailbox,
            recipient: finding.recipient,
            return_path: self.tag.clone(),
            status: finding.status,
            detail: finding.detail,
            event_id,
            occurred_at: finding.occurred_at.or(self.date),
        }
    }
}

/// The tag of the delivery a report is about, from the first place that has
/// one: the report's own recipient headers (it was mailed to our return
/// path), the returned original's `Return-Path`, the envelope sender a
/// complaint report names, our own header in the original.
fn delivery_tag<'a>(
    top: &'a Fields,
    original: Option<&'a Fields>,
    sender: Option<&'a str>,
) -> Option<&'a str> {
    RECIPIENT_HEADERS
        .into_iter()
        .flat_map(|name| top.all(name))
        .find_map(|value| value.split(',').find_map(tag_of))
        .or_else(|| original.and_then(|o| o.get("Return-Path")).and_then(tag_of))
        .or_else(|| sender.and_then(tag_of))
        .or_else(|| original.and_then(|o| o.get(DELIVERY_HEADER)))
        .filter(|tag| !tag.is_empty())
}

/// A server's words as kept: white space collapsed, cut to `DETAIL_CHARS`
/// characters.
fn detail(text: &str) -> String {
    let mut collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if let Some((cut, _)) = collapsed.char_indices().nth(DETAIL_CHARS) {
        collapsed.truncate(cut);
    }
    collapsed
}

/// The header of the returned original, when the report attaches it.
fn attached_original(message: &Message<'_>) -> Option<Fields> {
    part_text(message, ORIGINAL).map(|text| Fields::header(&text))
}

/// The decoded body of the message's first part of one of `types`, as text.
/// mail-parser keeps `message/delivery-status` and `message/feedback-report`
/// as binary parts, `text/rfc822-headers` as text and `message/rfc822` as a
/// nested message; the bytes of each are the part's own text all the same.
fn part_text<'m>(message: &'m Message<'_>, types: &MediaTypes) -> Option<Cow<'m, str>> {
    message
        .parts
        .iter()
        .find(|part| is_one_of(part, types))
        .map(|part| String::from_utf8_lossy(part.contents()))
}

fn is_one_of(part: &MessagePart<'_>, types: &MediaTypes) -> bool {
    part.content_type().is_some_and(|found| {
        types.iter().any(|(ctype, subtype)| {
            found.ctype().eq_ignore_ascii_case(ctype)
                && found
                    .subtype()
                    .is_some_and(|name| name.eq_ignore_ascii_case(subtype))
        })
    })
}

/// The message's text, as its first text part says it (a plain bounce is
/// a single part, or a text part before the returned message).
fn first_text<'m>(message: &'m Message<'_>) -> Option<&'m str> {
    let part = *message.text_body.first()?;
    message.parts.get(part as usize)?.text_contents()
}

#[cfg(test)]
mod tests;
