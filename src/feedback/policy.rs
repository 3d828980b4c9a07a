//! One policy for every source of reports: a hard bounce suppresses the
//! address at once; soft bounces suppress it when `bounces.soft_limit`
//! consecutive digests drew one within `bounces.soft_window_days` (a digest
//! delivered in between breaks the run); a complaint withdraws the digest
//! consent in the ledger (source `complaint`), cancels what is pending and
//! suppresses. Every report is stored once, however often it arrives.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use sha2::{Digest, Sha256};

use super::{Feedback, Kind, Source};
use crate::{
    clock::{self, Clock},
    consent,
    domain::{EmailAddress, EventType, ReturnPathSigner, Tagged, WebhookEvent, mask_addresses},
    privacy::suppression_hash,
    store::{
        self, Conn, Store,
        suppressions::{NewSuppression, Reason},
    },
};

/// `[bounces]`: the soft-bounce rule.
#[derive(Debug, Clone)]
pub struct SoftRule {
    pub limit: u32,
    pub window: Duration,
}

/// What became of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// Stored; `suppressed` if it put the address on the suppression list.
    Stored { suppressed: bool },
    /// The same report was stored before: nothing more is done.
    Duplicate,
    /// No reader could be tied to it (an unknown address, or a mailbox
    /// report whose return path tag is missing or forged).
    Unmatched,
}

/// Applies reports from any source.
#[derive(Clone)]
pub struct Feedbacks {
    store: Store,
    clock: Clock,
    tags: ReturnPathSigner,
    suppression_key: Arc<[u8]>,
    soft: SoftRule,
}

/// A report's reader and, when it was about a digest, its campaign.
struct Target {
    subscriber_id: String,
    campaign_id: Option<String>,
}

/// How long after a send its record may be written (sends are recorded in chunks).
const RECORDING_SLACK_MS: i64 = 15 * 60 * 1000;
/// How far back a report naming only an address looks for mail we sent it.
const ADDRESS_ONLY_LOOKBACK_MS: i64 = 30 * 24 * 3600 * 1000;

/// The longest `detail` and `status` kept.
const DETAIL_CHARS: usize = 300;
const STATUS_CHARS: usize = 64;

/// Text from outside, cut to `chars` and without control characters
/// (PostgreSQL refuses a NUL; none belongs in a status line).
fn printable(text: &str, chars: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(chars)
        .collect()
}

/// What outgoing webhooks tell of a report stored: `delivery.bounced`
/// (hard or soft) or `delivery.complained`.
fn webhook_event(
    report: &Feedback,
    target: &Target,
    report_id: &str,
    status: &str,
) -> WebhookEvent {
    let mut data = json!({
        "source": report.source.as_str(),
        "report_id": report_id,
        "status": status,
        "campaign_id": target.campaign_id,
    });
    let kind = match report.kind {
        Kind::HardBounce | Kind::SoftBounce => {
            let hard = report.kind == Kind::HardBounce;
            data["bounce"] = json!(if hard { "hard" } else { "soft" });
            EventType::DeliveryBounced
        }
        Kind::Complaint => EventType::DeliveryComplained,
    };
    WebhookEvent::reader(kind, &target.subscriber_id, data)
}

impl Feedbacks {
    pub fn new(
        store: Store,
        clock: Clock,
        tags: ReturnPathSigner,
        suppression_key: &[u8],
        soft: SoftRule,
    ) -> Self {
        Self {
            store,
            clock,
            tags,
            suppression_key: suppression_key.into(),
            soft,
        }
    }

    /// Stores `report` and acts on it, in one transaction.
    pub async fn apply(&self, report: &Feedback) -> anyhow::Result<Applied> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let occurred_at = report.occurred_at.map_or(now, |at| at.timestamp_millis());
        let Some(target) = self.target(&mut tx, report, occurred_at).await? else {
            return Ok(self.counted(report, Applied::Unmatched));
        };
        // One report at a time per reader: the soft-bounce count reads
        // what the others wrote.
        if !store::subscribers::lock(&mut tx, &target.subscriber_id).await? {
            return Ok(self.counted(report, Applied::Unmatched));
        }
        let key = event_key(report);
        let detail = printable(&mask_addresses(&report.detail), DETAIL_CHARS);
        let status = printable(&report.status, STATUS_CHARS);
        let event = store::feedback::NewEvent {
            event_key: &key,
            source: report.source.as_str(),
            kind: report.kind.as_str(),
            subscriber_id: &target.subscriber_id,
            campaign_id: target.campaign_id.as_deref(),
            status: &status,
            detail: &detail,
            occurred_at,
        };
        let Some(event_id) = store::feedback::insert(&mut tx, &event, now).await? else {
            return Ok(self.counted(report, Applied::Duplicate));
        };
        let told = webhook_event(report, &target, &event_id, &status);
        store::webhooks::queue(&mut tx, &told, now).await?;
        let reason = match report.kind {
            Kind::HardBounce => Some(Reason::HardBounce),
            Kind::SoftBounce => self
                .soft_run_complete(&mut tx, &target, now)
                .await?
                .then_some(Reason::SoftBounces),
            Kind::Complaint => {
                let id = &target.subscriber_id;
                consent::withdraw_newsletter(&mut tx, id, consent::Source::Complaint, now).await?;
                Some(Reason::Complaint)
            }
        };
        let suppressed = match reason {
            Some(reason) => {
                self.suppress(&mut tx, &target, reason, &event_id, now)
                    .await?
            }
            None => false,
        };
        tx.commit().await?;
        tracing::info!(
            event = "feedback",
            source = report.source.as_str(),
            kind = report.kind.as_str(),
            subscriber_id = %target.subscriber_id,
            suppressed,
            "bounce or complaint recorded"
        );
        Ok(self.counted(report, Applied::Stored { suppressed }))
    }

    /// The reader (and campaign) a report is about: by its return path's
    /// tag, or else, from an authenticated source, by the address. A report
    /// mailed to the bounce mailbox must carry a valid tag: anyone can mail
    /// that address, and an address alone would let them suppress a reader.
    async fn target(
        &self,
        conn: &mut Conn,
        report: &Feedback,
        occurred_at: i64,
    ) -> anyhow::Result<Option<Target>> {
        match report
            .return_path
            .as_deref()
            .and_then(|tag| self.tags.read(tag))
        {
            Some(Tagged::Digest {
                subscriber_id,
                campaign_suffix,
            }) => {
                let campaign_id =
                    store::feedback::campaign_by_suffix(conn, &subscriber_id, &campaign_suffix)
                        .await?;
                return Ok(Some(Target {
                    subscriber_id,
                    campaign_id,
                }));
            }
            Some(Tagged::Account { outbox_id }) => {
                let subscriber = store::feedback::outbox_subscriber(conn, &outbox_id).await?;
                return Ok(subscriber.map(|subscriber_id| Target {
                    subscriber_id,
                    campaign_id: None,
                }));
            }
            None if report.source == Source::Mailbox => return Ok(None),
            None => {}
        }
        let Some(address) = report.recipient.as_deref() else {
            return Ok(None);
        };
        let Ok(address) = EmailAddress::parse(address) else {
            return Ok(None);
        };
        let Some(subscriber_id) =
            store::subscribers::find_id_by_email(conn, address.canonical()).await?
        else {
            return Ok(None);
        };
        // A report naming only the address must follow mail we sent it
        // (a provider shared with another application reports theirs too).
        // Sends are recorded a little after they leave: some slack.
        let until = occurred_at + RECORDING_SLACK_MS;
        let since = occurred_at - ADDRESS_ONLY_LOOKBACK_MS;
        let campaign_id = store::feedback::latest_campaign(conn, &subscriber_id, until).await?;
        if campaign_id.is_none()
            && !store::feedback::emailed_since(conn, &subscriber_id, since, until).await?
        {
            return Ok(None);
        }
        Ok(Some(Target {
            subscriber_id,
            campaign_id,
        }))
    }

    /// Whether the digest just soft-bounced completes a run of
    /// `soft.limit` consecutive soft-bounced digests within the window.
    /// Reports may arrive out of order, so the run is the one around it.
    async fn soft_run_complete(
        &self,
        conn: &mut Conn,
        target: &Target,
        now: i64,
    ) -> anyhow::Result<bool> {
        let Some(campaign_id) = &target.campaign_id else {
            return Ok(false);
        };
        let since = now - clock::ms(self.soft.window);
        let sent =
            store::feedback::sent_with_soft_bounces(conn, &target.subscriber_id, since).await?;
        Ok(run_around(&sent, campaign_id) >= self.soft.limit as usize)
    }

    async fn suppress(
        &self,
        conn: &mut Conn,
        target: &Target,
        reason: Reason,
        event_id: &str,
        now: i64,
    ) -> anyhow::Result<bool> {
        let Some(profile) = store::subscribers::profile(conn, &target.subscriber_id).await? else {
            return Ok(false);
        };
        let hash = suppression_hash(&self.suppression_key, &profile.email_canonical);
        let entry = NewSuppression {
            email_hash: &hash,
            reason,
            subscriber_id: Some(&target.subscriber_id),
            event_id: Some(event_id),
            note: None,
        };
        store::suppressions::add(conn, &entry, now).await
    }

    fn counted(&self, report: &Feedback, applied: Applied) -> Applied {
        let outcome = match applied {
            Applied::Stored { .. } => "stored",
            Applied::Duplicate => "duplicate",
            Applied::Unmatched => "unmatched",
        };
        crate::metrics::feedback(report.source.as_str(), report.kind.as_str(), outcome);
        applied
    }
}

/// The number of consecutive soft-bounced digests in the run that holds
/// `campaign_id` (0 if it is not among them).
fn run_around(sent: &[(String, bool)], campaign_id: &str) -> usize {
    let Some(at) = sent.iter().position(|(id, _)| id == campaign_id) else {
        return 0;
    };
    if !sent[at].1 {
        return 0;
    }
    let before = sent[..at]
        .iter()
        .rev()
        .take_while(|(_, soft)| *soft)
        .count();
    let after = sent[at + 1..].iter().take_while(|(_, soft)| *soft).count();
    before + 1 + after
}

/// The key a report is stored under: its source's own event id, or else a
/// digest of what it says, so the same report read twice is one.
fn event_key(report: &Feedback) -> String {
    let source = report.source.as_str();
    match &report.event_id {
        Some(id) => format!("{source}:{id}"),
        None => {
            let mut digest = Sha256::new();
            for part in [
                report.kind.as_str(),
                report.recipient.as_deref().unwrap_or(""),
                report.return_path.as_deref().unwrap_or(""),
                &report.status,
                &report
                    .occurred_at
                    .map(|t| t.to_rfc3339())
                    .unwrap_or_default(),
            ] {
                digest.update(part.as_bytes());
                digest.update([0]);
            }
            format!("{source}:{}", hex::encode(digest.finalize()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::run_around;

    fn sent(marks: &str) -> Vec<(String, bool)> {
        marks
            .chars()
            .enumerate()
            .map(|(i, mark)| (format!("c{i}"), mark == 's'))
            .collect()
    }

    #[test]
    fn a_run_counts_neighbours_on_both_sides_until_a_delivered_digest() {
        assert_eq!(run_around(&sent("ssdss"), "c4"), 2);
        assert_eq!(run_around(&sent("ssdss"), "c1"), 2);
        assert_eq!(run_around(&sent("sss"), "c0"), 3);
        assert_eq!(run_around(&sent("sds"), "c1"), 0);
        assert_eq!(run_around(&sent("sss"), "c9"), 0);
    }
}
