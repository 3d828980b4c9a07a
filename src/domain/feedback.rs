//! A report about one message for one recipient after it left: a bounce
//! or a complaint, whatever its source. A value with no behaviour, so the
//! sources (SMTP refusals in `delivery`, the bounce mailbox and providers'
//! webhooks in `feedback`) and the policy that acts on reports share it.

use chrono::{DateTime, Utc};

/// What happened to one message for one recipient.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Permanent: the address does not exist or will never take mail (5.x.x).
    HardBounce,
    /// Temporary: mailbox full, greylisted, delayed (4.x.x, `delayed`).
    SoftBounce,
    /// The reader marked the message as spam.
    Complaint,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::HardBounce => "hard_bounce",
            Self::SoftBounce => "soft_bounce",
            Self::Complaint => "complaint",
        }
    }
}

/// Where a report came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Refused by the SMTP server during the conversation.
    Smtp,
    /// A message in the bounce mailbox.
    Mailbox,
    Ses,
    Postmark,
    Mailgun,
    Sendgrid,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Smtp => "smtp",
            Self::Mailbox => "mailbox",
            Self::Ses => "ses",
            Self::Postmark => "postmark",
            Self::Mailgun => "mailgun",
            Self::Sendgrid => "sendgrid",
        }
    }
}

/// One report about one recipient, as its source gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Feedback {
    pub kind: Kind,
    pub source: Source,
    /// The recipient the report is about, as reported (may be absent when
    /// only the return path identifies the message).
    pub recipient: Option<String>,
    /// The local part's tag of the envelope sender the report was sent to
    /// (`bounces+<tag>@…`), or the return path a provider reports: it names
    /// the delivery even when the relay stripped the original headers.
    pub return_path: Option<String>,
    /// The status as reported: an enhanced status code ("5.1.1"), a
    /// provider's bounce type, or the feedback type of a complaint ("abuse").
    pub status: String,
    /// The server's words (`Diagnostic-Code`, a provider's description),
    /// cut to a few hundred characters.
    pub detail: String,
    /// The source's own id for this event, when it has one, so the same
    /// event received twice is acted on once.
    pub event_id: Option<String>,
    /// When it happened, by the source's account; the receiving time if absent.
    pub occurred_at: Option<DateTime<Utc>>,
}
