//! Exim's own notices (when it does not send DSNs): "Mail delivery failed"
//! lists the addresses that failed, "Warning: message … delayed" those still
//! waiting, each address indented once and its reason indented deeper.

use super::{Notice, before_copy, finding, says};
use crate::feedback::report::Finding;
use crate::feedback::report::fields::address_in;

const AUTOMATIC: &str = "This message was created automatically by mail delivery software.";
const FAILED: &str = "could not be delivered to one or more of its recipients";
const DELAYED: &str = "has not yet been delivered to one or more of its recipients";

/// How the line before each list ends.
const FAILED_HEADINGS: &[&str] = &["failed:"];
const DELAYED_HEADINGS: &[&str] = &["delivered is:", "delivered are:"];

/// Exim's words for an address it gave up on after temporary failures only.
const TIMED_OUT: &str = "retry timeout exceeded";

/// The recipients an Exim notice lists; `None` if it is not one.
pub(super) fn findings(notice: &Notice<'_>) -> Option<Vec<Finding>> {
    let body = notice.body.trim_start();
    if !body.starts_with(AUTOMATIC) {
        return None;
    }
    let report = before_copy(body);
    let delayed = match (says(report, FAILED), says(report, DELAYED)) {
        (true, _) => false,
        (false, true) => true,
        (false, false) => return None,
    };
    let headings = if delayed {
        DELAYED_HEADINGS
    } else {
        FAILED_HEADINGS
    };
    let list: Vec<&str> = report
        .lines()
        .skip_while(|line| !headings.iter().any(|&end| line.trim_end().ends_with(end)))
        .skip(1)
        .collect();
    let findings = listed(&list)
        .into_iter()
        .map(|(address, reason)| {
            let temporary = delayed || says(&reason, TIMED_OUT);
            finding(address, &reason, temporary)
        })
        .collect();
    Some(findings)
}

/// The addresses of a list with their reasons. An address is on a line
/// indented as the list's first line is, its reason on the lines indented
/// deeper; the list ends at the first line that is not indented.
fn listed<'a>(lines: &[&'a str]) -> Vec<(&'a str, String)> {
    let mut entries: Vec<(&'a str, Vec<&'a str>)> = Vec::new();
    let mut address_indent = None;
    for line in lines {
        let text = line.trim_start();
        let indent = line.len() - text.len();
        if text.is_empty() {
            continue;
        }
        if indent == 0 {
            break;
        }
        if indent <= *address_indent.get_or_insert(indent) {
            if let Some(address) = address_in(text) {
                entries.push((address, Vec::new()));
            }
        } else if let Some((_, reason)) = entries.last_mut() {
            reason.push(text);
        }
    }
    entries
        .into_iter()
        .map(|(address, reason)| (address, reason.join(" ")))
        .collect()
}
