//! What the mail world reports back after a message left: bounces and
//! complaints, from a bounce mailbox (`report`: delivery status
//! notifications, ARF complaint reports and the common non-standard bounce
//! shapes) or from a sending provider's webhook (`webhooks`). Each source
//! turns what it received into [`Feedback`], the one shape the policy acts on.

mod intake;
mod mailbox;
mod policy;
pub mod report;
mod suppressions;
/// Sending providers' webhooks: proof of origin, and their reports read as [`Feedback`].
pub mod webhooks;

pub use crate::domain::{Feedback, Kind, Source};
pub use crate::store::suppressions::SuppressionRow;
pub use intake::{Provider, Received, WebhookError, WebhookRequest, Webhooks};
pub use mailbox::{BounceMailbox, MailboxRead};
pub use policy::{Applied, Feedbacks, SoftRule};
pub use suppressions::{
    NOTE_CHARS as SUPPRESSION_NOTE_CHARS, PAGE as SUPPRESSIONS_PAGE, Refused as SuppressionRefused,
    Suppressions,
};
