//! Any other mail system's notice ("Undelivered Mail Returned to Sender",
//! "Delivery Status Notification (Failure)"): read only when it has a
//! bounce's subject, a status code and a recipient, all three, on top of the
//! mail system's sender every plain notice needs.

use super::{Notice, before_copy, failure_code, finding};
use crate::feedback::report::Finding;
use crate::feedback::report::fields::{Fields, paragraphs};

/// Words of the subjects mail systems give their notices (lower case).
const SUBJECTS: [&str; 7] = [
    "undeliver",
    "delivery status notification",
    "delivery failure",
    "mail delivery failed",
    "failure notice",
    "returned mail",
    "could not be delivered",
];

/// The notice's own addresses, never the recipient it reports.
const OWN_ADDRESSES: [&str; 6] = [
    "From",
    "Return-Path",
    "To",
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
];

/// Mail systems' own local parts, never the recipient either.
const MAIL_SYSTEMS: [&str; 2] = ["mailer-daemon@", "postmaster@"];

/// The one recipient a notice reports: the first address it names, with
/// the reason of the first paragraph that gives a status code.
pub(super) fn findings(notice: &Notice<'_>) -> Option<Vec<Finding>> {
    let subject = notice.subject.to_ascii_lowercase();
    if !SUBJECTS.into_iter().any(|words| subject.contains(words)) {
        return None;
    }
    let report = before_copy(notice.body);
    let reason = paragraphs(report)
        .into_iter()
        .map(|lines| lines.join(" "))
        .find(|text| failure_code(text).is_some())?;
    let address = recipient(report, notice.top)?;
    Some(vec![finding(address, &reason, false)])
}

/// The first address the notice names that is neither its own nor a mail
/// system's.
fn recipient<'a>(report: &'a str, top: &Fields) -> Option<&'a str> {
    let own: Vec<String> = OWN_ADDRESSES
        .into_iter()
        .flat_map(|name| top.all(name))
        .flat_map(addresses)
        .map(str::to_ascii_lowercase)
        .collect();
    addresses(report).find(|address| {
        let address = address.to_ascii_lowercase();
        !own.contains(&address)
            && !MAIL_SYSTEMS
                .into_iter()
                .any(|local| address.starts_with(local))
    })
}

/// The addresses written in a text: words with an `@` and a dot after it.
fn addresses(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| c.is_whitespace() || "<>()[]:;,\"'".contains(c))
        .map(|word| word.trim_end_matches('.'))
        .filter(|word| {
            word.split_once('@')
                .is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'))
        })
}
