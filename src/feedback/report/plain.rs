//! Bounces that are not RFC 3464 reports: the notices qmail and Exim still
//! send, each known by its fixed wording, and any other mail system's notice
//! that has a bounce's subject, a status code and a recipient together. All
//! must come from a mail system, so that a reader quoting a bounce, or
//! writing "550" in a reply, is not taken for one.

mod exim;
mod generic;
mod qmail;

use super::fields::Fields;
use super::{Finding, detail};
use crate::feedback::Kind;

/// A notice as the shapes read it.
pub(super) struct Notice<'a> {
    /// The notice's own header.
    pub(super) top: &'a Fields,
    /// Its subject, decoded.
    pub(super) subject: &'a str,
    /// Its first text part.
    pub(super) body: &'a str,
}

/// One parser per shape: what it found if the notice has the shape's
/// markers (maybe nothing), `None` if it does not.
type Shape = fn(&Notice<'_>) -> Option<Vec<Finding>>;

/// Tried in turn; the generic shape last, its markers being the loosest.
const SHAPES: [Shape; 3] = [qmail::findings, exim::findings, generic::findings];

/// Words in the sender of a mail system's notice (lower case).
const MAIL_SYSTEMS: [&str; 4] = [
    "mailer-daemon",
    "postmaster",
    "mail delivery system",
    "mail delivery subsystem",
];

/// Where notices that quote the returned message start its copy.
const COPY_MARKERS: [&str; 4] = [
    // qmail
    "--- Below this line is a copy of the message.",
    // Exim, with the whole message or with its header only
    "------ This is a copy of the message, including all the headers. ------",
    "------ This is a copy of the message's headers. ------",
    // Gmail's older notices, and others after them
    "----- Original message -----",
];

/// The failures a plain notice reports; none unless a mail system sent it.
pub(super) fn findings(notice: &Notice<'_>) -> Vec<Finding> {
    if !from_mail_system(notice.top) {
        return Vec::new();
    }
    SHAPES
        .iter()
        .find_map(|shape| shape(notice))
        .unwrap_or_default()
}

/// The header of the original a notice quotes after its copy marker.
pub(super) fn inline_original(body: &str) -> Option<Fields> {
    let (_, copy) = COPY_MARKERS
        .into_iter()
        .find_map(|marker| body.split_once(marker))?;
    Some(Fields::header(copy.trim_start()))
}

/// Whether a mail system sent the notice: a daemon's or postmaster's name or
/// address, or the null return path notices are sent from (RFC 5321 §4.5.5).
fn from_mail_system(top: &Fields) -> bool {
    let from = top.get("From").unwrap_or_default().to_ascii_lowercase();
    let return_path = top
        .get("Return-Path")
        .unwrap_or_default()
        .to_ascii_lowercase();
    return_path == "<>"
        || MAIL_SYSTEMS
            .into_iter()
            .any(|words| from.contains(words) || return_path.contains(words))
}

/// The notice without the returned message: up to the first line that
/// starts with `--`, as the copy markers all do.
fn before_copy(body: &str) -> &str {
    let mut end = 0;
    for line in body.split_inclusive('\n') {
        if line.starts_with("--") {
            break;
        }
        end += line.len();
    }
    &body[..end]
}

/// One recipient of a notice whose wording says whether the mail system
/// gave up for good or for now (`temporary`). The status the reason gives
/// comes first; without one, the class's undefined status (RFC 3463 §3.1,
/// X.0.0) stands for the wording.
fn finding(recipient: &str, reason: &str, temporary: bool) -> Finding {
    let undefined = if temporary { "4.0.0" } else { "5.0.0" };
    let status = failure_code(reason).unwrap_or(undefined);
    let kind = if temporary || status.starts_with('4') {
        Kind::SoftBounce
    } else {
        Kind::HardBounce
    };
    Finding {
        kind,
        recipient: Some(recipient.to_owned()),
        status: status.to_owned(),
        detail: detail(reason),
        occurred_at: None,
    }
}

/// The failure status a text gives: its first enhanced status code of a
/// failure class (RFC 3463: 4.x.x or 5.x.x), else its first such SMTP reply
/// code (RFC 5321 §4.2: 4yz or 5yz). Words are cut at punctuation so that
/// `550-5.1.1` and qmail's `(#5.1.1)` are read, but not within an address.
fn failure_code(text: &str) -> Option<&str> {
    let words = || {
        text.split(|c: char| c.is_whitespace() || "()[]<>#;:,=\"'-".contains(c))
            .map(|word| word.trim_end_matches('.'))
    };
    words()
        .find(|word| is_enhanced_code(word))
        .or_else(|| words().find(|word| is_reply_code(word)))
}

fn is_enhanced_code(word: &str) -> bool {
    let parts: Vec<&str> = word.split('.').collect();
    matches!(
        parts.as_slice(),
        ["4" | "5", subject, specific] if is_short_number(subject) && is_short_number(specific)
    )
}

fn is_short_number(text: &str) -> bool {
    (1..=3).contains(&text.len()) && text.bytes().all(|byte| byte.is_ascii_digit())
}

fn is_reply_code(word: &str) -> bool {
    matches!(word.as_bytes(), [b'4' | b'5', b'0'..=b'5', last] if last.is_ascii_digit())
}

/// Whether the text says these words, however its lines are wrapped.
fn says(text: &str, words: &str) -> bool {
    text.split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .contains(words)
}
