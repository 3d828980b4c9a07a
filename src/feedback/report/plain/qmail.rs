//! qmail's failure notice (qmail-send): a fixed greeting, then one paragraph
//! per recipient, `<address>:` on its own line and the reason under it.

use super::{Notice, before_copy, finding, says};
use crate::feedback::report::Finding;
use crate::feedback::report::fields::paragraphs;

const GREETING: &str = "Hi. This is the qmail-send program at";
const SORRY: &str = "I'm afraid I wasn't able to deliver your message to the following addresses.";

/// qmail's words for a recipient it gave up on after temporary failures
/// only, its time in the queue run out: the address may well be fine. Any
/// other recipient of the notice failed for good.
const TIMED_OUT: &str = "I'm not going to try again";

/// The recipients a qmail notice lists; `None` if it is not one.
pub(super) fn findings(notice: &Notice<'_>) -> Option<Vec<Finding>> {
    let body = notice.body.trim_start();
    if !body.starts_with(GREETING) || !says(body, SORRY) {
        return None;
    }
    let findings = paragraphs(before_copy(body))
        .iter()
        .filter_map(|paragraph| recipient(paragraph))
        .collect();
    Some(findings)
}

/// A recipient's paragraph: `<address>:`, then the reason.
fn recipient(paragraph: &[&str]) -> Option<Finding> {
    let (first, reason) = paragraph.split_first()?;
    let address = first.trim().strip_prefix('<')?.strip_suffix(">:")?;
    let reason = reason.join(" ");
    Some(finding(address, &reason, says(&reason, TIMED_OUT)))
}
