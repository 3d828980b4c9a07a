//! Refusals during the SMTP conversation, as reports: the server we talk
//! to said at once that the mailbox does not exist.

use std::sync::Arc;

use super::Worker;
use crate::domain::{Feedback, Kind, Source};

/// Takes a hard bounce learnt during sending (the server refused an
/// unknown mailbox) to the policy every report goes through (`feedback`).
pub type Refusals = Arc<
    dyn Fn(Feedback) -> futures_util::future::BoxFuture<'static, anyhow::Result<()>> + Send + Sync,
>;

impl Worker {
    /// A refusal that says the mailbox does not exist is a hard bounce,
    /// under the one policy for every source ([`Refusals`]).
    /// A report that cannot be stored is logged, not returned: the message
    /// must still be recorded as failed, or it would be sent again.
    pub(super) async fn report_refusal(
        &self,
        reply: &str,
        recipient: &str,
        tag: &str,
        message: &str,
    ) {
        let report = refusal(reply, recipient, tag, message.to_owned());
        if let (Some(report), Some(refusals)) = (report, &self.refusals)
            && let Err(error) = refusals(report).await
        {
            tracing::warn!(
                error = crate::telemetry::error_text(&error),
                "a hard bounce could not be recorded"
            );
        }
    }
}

/// A permanent refusal that says the mailbox or its domain does not exist
/// (5.1.1, 5.1.2, 5.1.10) as a hard bounce; other 5.x.x refusals (a bad
/// sender, 5.1.7; policy, 5.7.x) are about us, not the address, and are
/// only recorded on the message. `tag` names the message, `event_id` makes
/// a second refusal of the same message one report.
fn refusal(reply: &str, recipient: &str, tag: &str, event_id: String) -> Option<Feedback> {
    let status = reply
        .split(|c: char| c.is_whitespace() || c == ',' || c == ';')
        .find(|word| matches!(*word, "5.1.1" | "5.1.2" | "5.1.10"))?;
    Some(Feedback {
        kind: Kind::HardBounce,
        source: Source::Smtp,
        recipient: Some(recipient.to_owned()),
        return_path: Some(tag.to_owned()),
        status: status.to_owned(),
        detail: reply.to_owned(),
        event_id: Some(event_id),
        occurred_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_unknown_mailboxes_are_hard_bounces() {
        let bounce = refusal("550 5.1.1 <x@y>: no such user", "x@y", "t", "e".into());
        assert_eq!(
            bounce.map(|b| (b.kind, b.status)),
            Some((Kind::HardBounce, "5.1.1".into()))
        );
        assert!(refusal("550 5.7.1 rejected by policy", "x@y", "t", "e".into()).is_none());
        assert!(refusal("553 5.1.7 bad sender", "x@y", "t", "e".into()).is_none());
    }
}
