//! Builds RFC 5322 messages with lettre's builder, never by concatenating
//! header text (E-17/E-20).

use std::time::SystemTime;

use anyhow::Context;
use lettre::{
    Message,
    message::dkim::DkimConfig,
    message::{
        Mailbox, MultiPart,
        header::{HeaderName, HeaderValue},
    },
};

use super::RenderedEmail;

/// The headers of one message besides its body.
pub struct Envelope<'a> {
    pub from: &'a Mailbox,
    pub to: &'a str,
    pub message_id: &'a str,
    pub date: SystemTime,
    /// Further headers, such as `List-Id` and `List-Unsubscribe` (E-01, E-13).
    pub extra: &'a [(&'static str, String)],
    /// Signs the message when DKIM is configured (E-06).
    pub dkim: Option<&'a DkimConfig>,
}

/// multipart/alternative, text first and HTML last (E-15), with Date, a fixed
/// Message-ID (retries reuse it) and `Auto-Submitted: auto-generated` (E-19).
pub fn build_message(envelope: &Envelope<'_>, email: &RenderedEmail) -> anyhow::Result<Message> {
    let to: Mailbox = envelope
        .to
        .parse()
        .context("the recipient is not a valid address")?;
    let (from, message_id, date) = (envelope.from, envelope.message_id, envelope.date);
    let mut builder = Message::builder();
    for (name, value) in envelope.extra {
        // E-17: refused, not stripped; our own values never hold these.
        anyhow::ensure!(
            !value.contains(['\r', '\n', '\0']),
            "header {name} holds a line break"
        );
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value.clone(),
        ));
    }
    let mut message = builder
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
        .context("while building a message")?;
    if let Some(dkim) = envelope.dkim {
        message.sign(dkim);
    }
    Ok(message)
}

/// The domain Message-IDs are made in: the sender's.
pub fn message_id_domain(from: &Mailbox) -> String {
    from.email.domain().to_owned()
}
