//! Complaint reports (ARF, RFC 5965): a reader marked a message as spam, and
//! the mailbox provider's feedback loop tells the sender.

use super::fields::{Fields, address_in};
use super::{Finding, detail};
use crate::feedback::Kind;

/// The feedback types taken as a complaint. `abuse` is the reader's "this
/// is spam"; `fraud` (phishing, in the reader's eyes) asks even more plainly
/// to stop. Not `not-spam` (the opposite), nor `virus` (a scanner's verdict
/// on the content, not the reader's wish), `auth-failure` (DMARC reports,
/// RFC 6591) or `other`, which says nothing of the reader: a complaint stops
/// mail to the address for good, so only a reader's own word counts.
const COMPLAINTS: [&str; 2] = ["abuse", "fraud"];

/// The complaint a `message/feedback-report` part makes, one per reported
/// recipient; the `To` of the returned original when it names none.
pub(super) fn findings(report: &Fields, original: Option<&Fields>) -> Vec<Finding> {
    let Some(feedback_type) = report
        .get("Feedback-Type")
        .and_then(|value| value.split_whitespace().next())
        .map(str::to_ascii_lowercase)
    else {
        return Vec::new();
    };
    if !COMPLAINTS.contains(&feedback_type.as_str()) {
        return Vec::new();
    }
    let mut recipients: Vec<Option<String>> = report
        .all("Original-Rcpt-To")
        .filter_map(visible_address)
        .map(Some)
        .collect();
    if recipients.is_empty() {
        let to = original.and_then(|original| original.get("To"));
        recipients.push(to.and_then(visible_address));
    }
    // The detail says who reported it. The time is left to the report's
    // `Date`, when the reader complained: `Arrival-Date` is when the
    // original arrived, maybe days before.
    let reporter = report.get("User-Agent").map(detail).unwrap_or_default();
    recipients
        .into_iter()
        .map(|recipient| Finding {
            kind: Kind::Complaint,
            recipient,
            status: feedback_type.clone(),
            detail: reporter.clone(),
            occurred_at: None,
        })
        .collect()
}

/// An address as reported, unless the provider redacted it: some loops
/// replace the reader's local part (`redacted@…`, `xxxxxx@…`) to protect
/// them, and then only the return path or our own header tells who it was.
fn visible_address(value: &str) -> Option<String> {
    let address = address_in(value)?;
    let (local, _) = address.rsplit_once('@')?;
    let redacted = local.to_ascii_lowercase().contains("redacted")
        || local.chars().all(|c| matches!(c, 'x' | 'X' | '*'));
    (!redacted).then(|| address.to_owned())
}
