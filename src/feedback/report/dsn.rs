//! Delivery status notifications (RFC 3464): in the `message/delivery-status`
//! part, one group of fields about the message, then one group per
//! recipient saying what became of it.

use chrono::{DateTime, Utc};

use super::fields::{Fields, address_in, date};
use super::{Finding, detail};
use crate::feedback::Kind;

/// The recipients a delivery-status body reports as failed or delayed.
pub(super) fn findings(status: &str) -> Vec<Finding> {
    let groups = Fields::groups(status);
    let arrival = groups
        .first()
        .and_then(|message| message.get("Arrival-Date"))
        .and_then(date);
    groups
        .iter()
        .filter_map(|group| finding(group, arrival))
        .collect()
}

/// What one recipient's group says, if it reports a failure or a delay.
/// The message's own group has no `Action` and is passed over.
fn finding(group: &Fields, arrival: Option<DateTime<Utc>>) -> Option<Finding> {
    let status = group
        .get("Status")
        .and_then(|status| status.split_whitespace().next())
        .unwrap_or_default();
    let kind = kind_of(group.get("Action")?, status)?;
    let recipient = group
        .get("Final-Recipient")
        .or_else(|| group.get("Original-Recipient"))
        .and_then(typed_address);
    Some(Finding {
        kind,
        recipient,
        status: status.to_owned(),
        detail: group
            .get("Diagnostic-Code")
            .map(without_type)
            .map(detail)
            .unwrap_or_default(),
        // The last attempt is when the failure was seen; the arrival (when
        // the reporting MTA took the message) is the next best time.
        occurred_at: group.get("Last-Attempt-Date").and_then(date).or(arrival),
    })
}

/// The kind an `Action` (§2.3.3) and its `Status` make. `failed` is final,
/// yet some MTAs give up on a temporary cause (4.x.x) and say so: that
/// address may well take mail tomorrow. `failed` with any other status is
/// taken at its word. `delivered`, `relayed` and `expanded` are successes.
fn kind_of(action: &str, status: &str) -> Option<Kind> {
    let action = action.split_whitespace().next()?.to_ascii_lowercase();
    match action.as_str() {
        "failed" if status.starts_with('4') => Some(Kind::SoftBounce),
        "failed" => Some(Kind::HardBounce),
        "delayed" => Some(Kind::SoftBounce),
        _ => None,
    }
}

/// The address of a typed field, `rfc822; reader@example.org` (§2.3.2).
fn typed_address(value: &str) -> Option<String> {
    let address = value.split_once(';').map_or(value, |(_, address)| address);
    address_in(address).map(str::to_owned)
}

/// A `Diagnostic-Code` without its type, `smtp; 550 …` (§2.3.6). The type
/// is one word before the first `;`, so a text with a `;` of its own and no
/// type stays whole.
fn without_type(value: &str) -> &str {
    match value.split_once(';') {
        Some((kind, text)) if is_one_word(kind) => text.trim(),
        _ => value,
    }
}

fn is_one_word(text: &str) -> bool {
    let text = text.trim();
    !text.is_empty() && !text.contains(char::is_whitespace)
}
