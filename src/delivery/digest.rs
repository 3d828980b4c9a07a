//! Sending digests: claim deliveries under a lease, re-check each reader at
//! claim time (G-10, E-26), render their digest, send, and record results
//! a batch at a time.

use std::collections::{BTreeMap, HashMap};

use futures_util::{StreamExt, stream};
use lettre::message::Mailbox;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use super::{Worker, backoff::retry_delay_ms, worker::BatchOutcome};
use crate::{
    clock::hours_ms,
    domain::{LinkPurpose, LinkSigner},
    mail::{Envelope, SendError, build_message},
    store::digests::{self, CampaignArticle, CampaignRow, ClaimedDelivery, Recipient},
};

/// What digests need beyond transactional mail.
#[derive(Clone)]
pub struct DigestSettings {
    /// Digests may come from another sender than account mail (E-13).
    pub from: Mailbox,
    pub list_id: String,
    pub base_url: String,
    pub site_name: String,
    pub unsubscribe_mailto: String,
    pub links: LinkSigner,
}

/// A campaign's shared parts, loaded once per batch.
struct CampaignContext {
    row: CampaignRow,
    articles: Vec<CampaignArticle>,
    /// The digest's date as readers see it, formatted once per campaign.
    date: String,
}

impl CampaignContext {
    fn new(row: CampaignRow, articles: Vec<CampaignArticle>) -> Self {
        let date = chrono::DateTime::from_timestamp_millis(row.covers_until)
            .map(|t| t.format("%-d %B %Y").to_string())
            .unwrap_or_default();
        Self {
            row,
            articles,
            date,
        }
    }
}

enum Outcome {
    Sent,
    Retried,
    Failed(String),
    /// No longer eligible, or nothing left in their topics.
    Cancelled,
    Released,
}

/// A preview of the next digest: its text part, and the message itself.
pub struct Preview {
    pub text: String,
    pub message: lettre::Message,
}

impl Worker {
    /// Renders the digest `articles` would make for a reader of every topic
    /// at `to`, without a campaign; `None` if there is nothing to show.
    pub fn preview(
        &self,
        articles: Vec<CampaignArticle>,
        covers_until: i64,
        subject: &str,
        to: &str,
    ) -> anyhow::Result<Option<Preview>> {
        let row = CampaignRow {
            id: "preview".into(),
            schedule: String::new(),
            subject: subject.to_owned(),
            covers_until,
            created_at: covers_until,
        };
        let campaign = CampaignContext::new(row, articles);
        // The nil id: links in a preview lead to no reader at all.
        let recipient = Recipient {
            id: uuid::Uuid::nil().to_string(),
            email_canonical: to.to_owned(),
            name: None,
            eligible: 1,
        };
        let Some(context) = self.digest_context(&campaign, &recipient, &[]) else {
            return Ok(None);
        };
        let text = self.templates.render("digest", &context)?.text;
        let message = self.build_digest(&campaign, &recipient, &context)?;
        Ok(Some(Preview { text, message }))
    }

    /// Sends a preview (a test message), recording nothing.
    pub async fn send_preview(&self, preview: Preview) -> anyhow::Result<()> {
        self.transport
            .send(preview.message)
            .await
            .map_err(|e| anyhow::anyhow!("the test message was not sent: {e}"))
    }

    /// Claims and sends one batch of digest deliveries.
    pub async fn deliver_digest_batch(
        &self,
        cancel: &CancellationToken,
    ) -> anyhow::Result<BatchOutcome> {
        let now = self.clock.now_ms();
        let lease_until = now + crate::clock::secs_ms(self.config.lease_s);
        let claimed = digests::claim(
            &self.store,
            &self.owner,
            now,
            lease_until,
            i64::from(self.config.batch_size),
        )
        .await?;
        let mut outcome = BatchOutcome {
            claimed: claimed.len(),
            ..BatchOutcome::default()
        };
        if claimed.is_empty() {
            digests::close_finished(&self.store, now).await?;
            return Ok(outcome);
        }
        let campaigns = self.load_campaigns(&claimed).await?;
        let ids: Vec<String> = claimed.iter().map(|d| d.subscriber_id.clone()).collect();
        let recipients: HashMap<String, Recipient> = digests::recipients(&self.store, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut topics: HashMap<String, Vec<String>> = HashMap::new();
        for (id, topic) in digests::topics(&self.store, &ids).await? {
            topics.entry(id).or_default().push(topic);
        }
        let results: Vec<(ClaimedDelivery, anyhow::Result<Outcome>)> = stream::iter(claimed)
            .map(|delivery| {
                let campaign = campaigns.get(&delivery.campaign_id);
                let recipient = recipients.get(&delivery.subscriber_id);
                let reader_topics = topics
                    .get(&delivery.subscriber_id)
                    .map(Vec::as_slice)
                    .unwrap_or_default();
                async move {
                    let result = self
                        .deliver_digest(&delivery, campaign, recipient, reader_topics, cancel)
                        .await;
                    (delivery, result)
                }
            })
            .buffer_unordered(self.concurrency)
            .collect()
            .await;
        self.record(results, &mut outcome).await?;
        Ok(outcome)
    }

    async fn load_campaigns(
        &self,
        claimed: &[ClaimedDelivery],
    ) -> anyhow::Result<HashMap<String, CampaignContext>> {
        let mut campaigns = HashMap::new();
        for delivery in claimed {
            if campaigns.contains_key(&delivery.campaign_id) {
                continue;
            }
            if let Some(row) = digests::campaign(&self.store, &delivery.campaign_id).await? {
                let articles = digests::campaign_articles(&self.store, &row.id).await?;
                campaigns.insert(row.id.clone(), CampaignContext::new(row, articles));
            }
        }
        Ok(campaigns)
    }

    async fn deliver_digest(
        &self,
        delivery: &ClaimedDelivery,
        campaign: Option<&CampaignContext>,
        recipient: Option<&Recipient>,
        topics: &[String],
        cancel: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        if cancel.is_cancelled() {
            digests::release(
                &self.store,
                &delivery.campaign_id,
                &delivery.subscriber_id,
                &self.owner,
            )
            .await?;
            return Ok(Outcome::Released);
        }
        let (Some(campaign), Some(recipient)) = (campaign, recipient) else {
            return Ok(Outcome::Cancelled);
        };
        if recipient.eligible == 0 {
            return Ok(Outcome::Cancelled);
        }
        let Some(context) = self.digest_context(campaign, recipient, topics) else {
            return Ok(Outcome::Cancelled);
        };
        let message = match self.build_digest(campaign, recipient, &context) {
            Ok(message) => message,
            Err(error) => {
                return self
                    .retry_digest(delivery, campaign, &format!("{error:#}"))
                    .await;
            }
        };
        if let Some(limiter) = &self.limiter {
            limiter.until_ready().await;
        }
        match self.transport.send(message).await {
            Ok(()) => Ok(Outcome::Sent),
            Err(SendError::Permanent(error)) => {
                // E-24: 5.1.1, 5.1.2 and 5.1.10 say the mailbox or its domain does
                // not exist; other 5.1.x (such as a bad sender, 5.1.7) are ours.
                let unknown_mailbox = error
                    .split_whitespace()
                    .any(|word| matches!(word, "5.1.1" | "5.1.2" | "5.1.10"));
                if unknown_mailbox {
                    digests::suppress_subscriber(&self.store, &recipient.id, self.clock.now_ms())
                        .await?;
                }
                Ok(Outcome::Failed(error))
            }
            Err(SendError::Transient(error)) => self.retry_digest(delivery, campaign, &error).await,
        }
    }

    fn build_digest(
        &self,
        campaign: &CampaignContext,
        recipient: &Recipient,
        context: &Value,
    ) -> anyhow::Result<lettre::Message> {
        let digest = &self.digest;
        let rendered = self.templates.render("digest", context)?;
        let unsubscribe = context["unsubscribe_url"].as_str().unwrap_or_default();
        let mut list_unsubscribe = format!("<{unsubscribe}>");
        if !digest.unsubscribe_mailto.is_empty() {
            list_unsubscribe.push_str(&format!(
                ", <mailto:{}?subject=unsubscribe>",
                digest.unsubscribe_mailto
            ));
        }
        let extra = [
            (
                "List-Id",
                format!("{} <{}>", digest.site_name, digest.list_id),
            ),
            ("List-Unsubscribe", list_unsubscribe),
            (
                "List-Unsubscribe-Post",
                "List-Unsubscribe=One-Click".to_owned(),
            ),
        ];
        let domain = digest.from.email.domain();
        let message_id = format!("<{}.{}@{domain}>", campaign.row.id, recipient.id);
        let envelope = Envelope {
            from: &digest.from,
            to: &recipient.email_canonical,
            message_id: &message_id,
            date: self.clock.now().into(),
            extra: &extra,
            dkim: self.dkim.as_deref(),
        };
        build_message(&envelope, &rendered)
    }

    /// The reader's digest: the campaign's articles in their topics (all if
    /// they chose none), grouped by category. `None` if nothing is left.
    fn digest_context(
        &self,
        campaign: &CampaignContext,
        recipient: &Recipient,
        topics: &[String],
    ) -> Option<Value> {
        let digest = &self.digest;
        let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut seen = Vec::new();
        for article in &campaign.articles {
            let wanted = topics.is_empty() || topics.contains(&article.category);
            if !wanted || seen.contains(&article.slug.as_str()) {
                continue;
            }
            seen.push(article.slug.as_str());
            groups
                .entry(article.category.as_str())
                .or_default()
                .push(json!({
                    "title": article.title,
                    "teaser": article.teaser,
                    "author": article.author,
                    "url": format!("{}/articles/{}", digest.base_url, article.slug),
                }));
        }
        if seen.is_empty() {
            return None;
        }
        let link = |purpose, prefix: &str| {
            digest
                .links
                .token(purpose, &recipient.id)
                .map(|t| format!("{}/{prefix}/{t}", digest.base_url))
        };
        Some(json!({
            "site_name": digest.site_name,
            "base_url": digest.base_url,
            "date": campaign.date,
            "count": seen.len(),
            "subject": campaign.row.subject,
            "name": recipient.name,
            "groups": groups.into_iter().map(|(category, articles)| json!({
                "category": if category.is_empty() { "More" } else { category },
                "articles": articles,
            })).collect::<Vec<_>>(),
            "unsubscribe_url": link(LinkPurpose::Unsubscribe, "unsubscribe"),
            "preferences_url": link(LinkPurpose::Preferences, "preferences"),
        }))
    }

    async fn retry_digest(
        &self,
        delivery: &ClaimedDelivery,
        campaign: &CampaignContext,
        error: &str,
    ) -> anyhow::Result<Outcome> {
        let now = self.clock.now_ms();
        if now - campaign.row.created_at >= hours_ms(self.config.give_up_after_h) {
            return Ok(Outcome::Failed(format!("gave up: {error}")));
        }
        let delay = retry_delay_ms(
            delivery.attempts,
            self.config.retry_base_s,
            self.config.retry_max_s,
        );
        digests::retry(
            &self.store,
            &delivery.campaign_id,
            &delivery.subscriber_id,
            now + delay,
            error,
        )
        .await?;
        Ok(Outcome::Retried)
    }

    /// Records final outcomes with one statement per campaign and outcome.
    async fn record(
        &self,
        results: Vec<(ClaimedDelivery, anyhow::Result<Outcome>)>,
        outcome: &mut BatchOutcome,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut sent: HashMap<String, Vec<String>> = HashMap::new();
        let mut cancelled: HashMap<String, Vec<String>> = HashMap::new();
        let mut failed: HashMap<String, i64> = HashMap::new();
        let mut first_error = None;
        for (delivery, result) in results {
            let result = match result {
                Ok(result) => result,
                Err(error) => {
                    // Record everyone else's outcome first: sent mail must not
                    // stay pending and go out again.
                    first_error.get_or_insert(error);
                    continue;
                }
            };
            match result {
                Outcome::Sent => {
                    outcome.sent += 1;
                    sent.entry(delivery.campaign_id)
                        .or_default()
                        .push(delivery.subscriber_id);
                }
                Outcome::Cancelled => {
                    outcome.cancelled += 1;
                    cancelled
                        .entry(delivery.campaign_id)
                        .or_default()
                        .push(delivery.subscriber_id);
                }
                Outcome::Failed(error) => {
                    outcome.failed += 1;
                    let ids = [delivery.subscriber_id];
                    digests::finish(
                        &self.store,
                        &delivery.campaign_id,
                        &ids,
                        "failed",
                        Some(&error),
                        now,
                    )
                    .await?;
                    *failed.entry(delivery.campaign_id).or_default() += 1;
                }
                Outcome::Retried => outcome.retried += 1,
                Outcome::Released => outcome.released += 1,
            }
        }
        for (campaign, ids) in &sent {
            digests::finish(&self.store, campaign, ids, "sent", None, now).await?;
        }
        for (campaign, ids) in &cancelled {
            digests::finish(&self.store, campaign, ids, "cancelled", None, now).await?;
        }
        let touched: std::collections::HashSet<&String> = sent
            .keys()
            .chain(cancelled.keys())
            .chain(failed.keys())
            .collect();
        for campaign in touched {
            let count = |ids: Option<&Vec<String>>| ids.map_or(0, |ids| ids.len() as i64);
            let counts = digests::BatchCounts {
                sent: count(sent.get(campaign)),
                failed: failed.get(campaign).copied().unwrap_or(0),
                cancelled: count(cancelled.get(campaign)),
            };
            digests::add_counts(&self.store, campaign, counts, now).await?;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
