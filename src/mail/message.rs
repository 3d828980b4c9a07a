//! Builds RFC 5322 messages with lettre's builder, never by concatenating
//! header text (E-17/E-20).

use std::time::SystemTime;

use anyhow::Context;
use lettre::{
    Address, Message,
    message::dkim::DkimConfig,
    message::{
        Body, Mailbox, MultiPart, SinglePart,
        header::{ContentTransferEncoding, ContentType, HeaderName, HeaderValue},
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
    /// Whether the transport carries 8-bit bodies (`Transport::eight_bit_mime`).
    pub eight_bit_mime: bool,
    /// Names the message for bounces and complaints about it.
    pub bounce: BounceTag<'a>,
}

/// The tag that names one message (`domain::ReturnPathSigner`), carried in
/// its envelope sender when a return path is configured
/// (`bounces+<tag>@domain`, VERP) and always in an `X-Broadsheet-Delivery`
/// header, which complaint reports and providers' events quote back.
#[derive(Clone, Copy)]
pub struct BounceTag<'a> {
    pub tag: &'a str,
    /// `bounces.return_path`; `None` sends from the From address, untagged.
    pub return_path: Option<&'a Address>,
    pub providers: ProviderTags,
}

/// Relays whose webhooks report bounces: each is asked, in its own SMTP
/// header, to quote the tag back in its events (Postmark's metadata,
/// SendGrid's unique arguments), since they replace the return path.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProviderTags {
    pub postmark: bool,
    pub sendgrid: bool,
}

/// The name the tag has in providers' metadata (`feedback::webhooks`).
pub const PROVIDER_TAG_NAME: &str = "broadsheet_delivery";

/// How messages are tagged: the configured return path and the signer of
/// tags, shared by account mail and digests.
#[derive(Clone)]
pub struct ReturnPaths {
    pub return_path: Option<Address>,
    pub tags: crate::domain::ReturnPathSigner,
    pub providers: ProviderTags,
}

impl ReturnPaths {
    pub fn digest_tag(&self, campaign_id: &str, subscriber_id: &str) -> String {
        self.tags.digest_tag(campaign_id, subscriber_id)
    }

    pub fn account_tag(&self, outbox_id: &str) -> String {
        self.tags.account_tag(outbox_id)
    }

    pub fn bounce_tag<'a>(&'a self, tag: &'a str) -> BounceTag<'a> {
        BounceTag {
            tag,
            return_path: self.return_path.as_ref(),
            providers: self.providers,
        }
    }
}

/// The header that carries a message's tag.
pub const DELIVERY_HEADER: &str = "X-Broadsheet-Delivery";

impl BounceTag<'_> {
    /// The headers that carry the tag: ours, and those of the providers
    /// whose webhooks are configured. The tag is hex: no quoting needed.
    fn headers(&self) -> impl Iterator<Item = (&'static str, String)> {
        let tag = self.tag;
        let postmark = self
            .providers
            .postmark
            .then(|| ("X-PM-Metadata-broadsheet_delivery", tag.to_owned()));
        let sendgrid = self.providers.sendgrid.then(|| {
            let args = format!(r#"{{"unique_args":{{"{PROVIDER_TAG_NAME}":"{tag}"}}}}"#);
            ("X-SMTPAPI", args)
        });
        std::iter::once((DELIVERY_HEADER, tag.to_owned()))
            .chain(postmark)
            .chain(sendgrid)
    }

    /// The envelope sender: the return path with the tag, or `from`.
    fn sender(&self, from: &Address) -> anyhow::Result<Address> {
        match self.return_path {
            Some(path) => Address::new(format!("{}+{}", path.user(), self.tag), path.domain())
                .context("while tagging the return path"),
            None => Ok(from.clone()),
        }
    }
}

/// A mailing list's headers (RFC 2369, RFC 8058): which list a message
/// belongs to, and how to leave it in one click (E-01, E-13).
pub struct ListHeaders<'a> {
    /// The list's name as readers see it (the site's name).
    pub name: &'a str,
    pub id: &'a str,
    pub unsubscribe_url: &'a str,
    /// An address that also unsubscribes, by mail; empty for none.
    pub unsubscribe_mailto: &'a str,
}

impl ListHeaders<'_> {
    pub fn headers(&self) -> [(&'static str, String); 3] {
        let mut unsubscribe = format!("<{}>", self.unsubscribe_url);
        if !self.unsubscribe_mailto.is_empty() {
            unsubscribe.push_str(&format!(
                ", <mailto:{}?subject=unsubscribe>",
                self.unsubscribe_mailto
            ));
        }
        [
            ("List-Id", format!("{} <{}>", self.name, self.id)),
            ("List-Unsubscribe", unsubscribe),
            (
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ),
        ]
    }
}

/// multipart/alternative, text first and HTML last (E-15), with Date, a fixed
/// Message-ID (retries reuse it) and `Auto-Submitted: auto-generated` (E-19).
pub fn build_message(envelope: &Envelope<'_>, email: &RenderedEmail) -> anyhow::Result<Message> {
    let to: Mailbox = envelope
        .to
        .parse()
        .context("the recipient is not a valid address")?;
    let (from, message_id, date) = (envelope.from, envelope.message_id, envelope.date);
    // Given, not worked out again from the headers just written (a tenth
    // of the cost of building a digest, BENCHMARKS.md).
    let sender = envelope.bounce.sender(&from.email)?;
    let smtp_envelope = lettre::address::Envelope::new(Some(sender), vec![to.email.clone()])
        .context("while building a message's envelope")?;
    let mut builder = Message::builder().envelope(smtp_envelope);
    for (name, value) in envelope.bounce.headers() {
        builder = builder.raw_header(HeaderValue::new(
            HeaderName::new_from_ascii_str(name),
            value,
        ));
    }
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
    // A relay that turns 8bit into 7bit would break a DKIM body hash
    // (RFC 6376 5.3): signed mail keeps lettre's encoding.
    let eight_bit = envelope.eight_bit_mime && envelope.dkim.is_none();
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
        .multipart(
            MultiPart::alternative()
                .singlepart(part(ContentType::TEXT_PLAIN, &email.text, eight_bit))
                .singlepart(part(ContentType::TEXT_HTML, &email.html, eight_bit)),
        )
        .context("while building a message")?;
    if let Some(dkim) = envelope.dkim {
        message.sign(dkim);
    }
    Ok(message)
}

/// A UTF-8 body part. Sent as it is when every line fits SMTP's 998
/// octets: 7bit if ASCII, or 8bit (lettre then asks for 8BITMIME) where
/// `eight_bit` allows. Encoding every copy of a digest as quoted-printable,
/// with lettre's CRLF pass and choice of encoding, was 43 % of the cost of
/// building it (BENCHMARKS.md). Anything else (non-ASCII text for a
/// 7-bit path, overlong lines) leaves the choice of encoding to lettre.
fn part(content_type: ContentType, text: &str, eight_bit: bool) -> SinglePart {
    let encoding = if text.is_ascii() {
        Some(ContentTransferEncoding::SevenBit)
    } else {
        eight_bit.then_some(ContentTransferEncoding::EightBit)
    };
    let body = match (encoding, crlf_lines(text)) {
        (Some(encoding), Some(crlf)) => Body::dangerous_pre_encoded(crlf, encoding),
        _ => Body::new(text.to_owned()),
    };
    SinglePart::builder().header(content_type).body(body)
}

/// `text` with CRLF line endings, as SMTP carries it; `None` if a line is
/// longer than 998 octets (RFC 5322 2.1.1) or holds a NUL or a lone CR,
/// which 7bit and 8bit bodies may not.
fn crlf_lines(text: &str) -> Option<Vec<u8>> {
    const MAX_LINE: usize = 998;
    if text.contains('\0') {
        return None;
    }
    let mut out = Vec::with_capacity(text.len() + text.len() / 32);
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if line.len() > MAX_LINE || line.contains('\r') {
            return None;
        }
        out.extend_from_slice(line.as_bytes());
        if lines.peek().is_some() {
            out.extend_from_slice(b"\r\n");
        }
    }
    Some(out)
}

/// The domain Message-IDs are made in: the sender's.
pub fn message_id_domain(from: &Mailbox) -> String {
    from.email.domain().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_go_out_with_crlf_line_endings_only() {
        let crlf = crlf_lines("one\ntwo\r\nthree\n").expect("short lines");
        assert_eq!(crlf, b"one\r\ntwo\r\nthree\r\n");
    }

    #[test]
    fn long_lines_and_nul_are_left_to_an_encoding() {
        assert!(crlf_lines(&"x".repeat(998)).is_some());
        assert!(crlf_lines(&format!("short\n{}", "x".repeat(999))).is_none());
        assert!(crlf_lines("a\0b").is_none());
        assert!(crlf_lines("lone\rcarriage return").is_none());
        let long = "é".repeat(600);
        let message = part(ContentType::TEXT_PLAIN, &long, true).formatted();
        let head = String::from_utf8_lossy(&message);
        assert!(!head.contains("8bit"), "{head}");
    }

    #[test]
    fn non_ascii_text_is_sent_as_8bit_and_ascii_as_7bit() {
        let utf8 =
            String::from_utf8(part(ContentType::TEXT_PLAIN, "Café · news", true).formatted())
                .expect("8bit part is UTF-8");
        assert!(utf8.contains("Content-Transfer-Encoding: 8bit"), "{utf8}");
        assert!(utf8.contains("Café · news"), "{utf8}");
        let ascii =
            String::from_utf8(part(ContentType::TEXT_HTML, "<p>news</p>", true).formatted())
                .expect("ASCII");
        assert!(ascii.contains("Content-Transfer-Encoding: 7bit"), "{ascii}");
        let signed = part(ContentType::TEXT_PLAIN, "Café · news", false).formatted();
        let signed = String::from_utf8_lossy(&signed);
        assert!(signed.contains("quoted-printable"), "{signed}");
    }
}
