//! Builds RFC 5322 messages with lettre's builder, never by concatenating
//! header text (E-17/E-20).

use std::time::SystemTime;

use anyhow::Context;
use lettre::{
    Message,
    message::{
        Mailbox, MultiPart,
        header::{HeaderName, HeaderValue},
    },
};

use super::RenderedEmail;

/// multipart/alternative, text first and HTML last (E-15), with Date, a fixed
/// Message-ID (retries reuse it) and `Auto-Submitted: auto-generated` (E-19).
pub fn build_message(
    from: &Mailbox,
    to: &str,
    message_id: &str,
    date: SystemTime,
    email: &RenderedEmail,
) -> anyhow::Result<Message> {
    let to: Mailbox = to.parse().context("the recipient is not a valid address")?;
    Message::builder()
        .from(from.clone())
        .to(to)
        .subject(email.subject.clone())
        .date(date)
        .message_id(Some(message_id.to_owned()))
        .raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str("Auto-Submitted"),
            "auto-generated".into(),
        ))
        .multipart(MultiPart::alternative_plain_html(
            email.text.clone(),
            email.html.clone(),
        ))
        .context("while building a message")
}

/// The domain Message-IDs are made in: the sender's.
pub fn message_id_domain(from: &Mailbox) -> String {
    from.email.domain().to_owned()
}
