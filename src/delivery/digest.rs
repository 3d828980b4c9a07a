//! Sending digests: claim deliveries under a lease, re-check each reader at
//! claim time (G-10, E-26), render their digest, send, and record results
//! a batch at a time.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
};

use anyhow::Context;
use lettre::message::Mailbox;
use serde_json::{Value, json};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::sync::CancellationToken;

use super::{
    Worker,
    backoff::retry_delay_ms,
    lease::{Leases, Row},
    shape::{self, Personal, Shape},
    worker::BatchOutcome,
};
use crate::{
    clock::hours_ms,
    domain::{LinkPurpose, LinkSigner},
    mail::{Envelope, RenderedEmail, SendError, build_message},
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

/// A campaign's shared parts, loaded once per run of the worker.
struct CampaignContext {
    row: CampaignRow,
    articles: Vec<CampaignArticle>,
    /// The digest's date as readers see it, formatted once per campaign.
    date: String,
    /// How readers of each set of topics (with a name or without) get
    /// their digest, worked out once per campaign.
    renderings: Mutex<HashMap<RenderingKey, Arc<Rendering>>>,
}

/// A reader's topics, sorted, and whether they gave a name.
type RenderingKey = (Vec<String>, bool);

/// Sets of topics a campaign keeps the rendering of; readers of any other
/// set are rendered in full, so memory stays bounded.
const MAX_RENDERINGS: usize = 256;

/// How the readers of one set of topics get their digest.
enum Rendering {
    /// Nothing of this campaign is in their topics.
    Nothing,
    /// Rendered once; each copy writes in the reader's own values.
    Shaped(Shape),
    /// The template does more with a personal value than show it (an
    /// operator's own template may): each copy is rendered in full.
    InFull,
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
            renderings: Mutex::default(),
        }
    }
}

/// Results recorded in one go, unless waiting for them takes longer than
/// `RECORD_WAIT`: together they bound what a crash leaves sent but unrecorded.
const RECORD_AT_LEAST: usize = 100;
const RECORD_WAIT: std::time::Duration = std::time::Duration::from_millis(50);

/// A claimed delivery with what sending it needs.
struct Job {
    delivery: ClaimedDelivery,
    campaign: Option<Arc<CampaignContext>>,
    recipient: Option<Recipient>,
    topics: Vec<String>,
}

impl Job {
    fn row(&self) -> Row {
        held(&self.delivery)
    }
}

/// How a claimed delivery is known to the batch's [`Leases`].
fn held(delivery: &ClaimedDelivery) -> Row {
    Row::Delivery {
        campaign: delivery.campaign_id.clone(),
        subscriber: delivery.subscriber_id.clone(),
    }
}

/// Claims batches of due deliveries ahead of the sends, so the connections
/// never wait for a claim, and hands each job on with its reader and campaign.
struct Claims<'a> {
    worker: &'a Worker,
    leases: Arc<Leases>,
    cancel: CancellationToken,
    /// Campaigns seen by this run, loaded once.
    campaigns: HashMap<String, Option<Arc<CampaignContext>>>,
    /// One permit per claimed delivery not yet recorded: claiming waits for
    /// the recorder here, where waiting holds up nothing in flight.
    unrecorded: Arc<Semaphore>,
}

impl<'a> Claims<'a> {
    fn new(
        worker: &'a Worker,
        leases: Arc<Leases>,
        cancel: CancellationToken,
        unrecorded: Arc<Semaphore>,
    ) -> Self {
        Self {
            worker,
            leases,
            cancel,
            campaigns: HashMap::new(),
            unrecorded,
        }
    }

    /// Claims batches into `jobs` until none is due, `cancel` fires, or
    /// claiming fails (the error is the last thing sent).
    async fn run(mut self, jobs: mpsc::UnboundedSender<anyhow::Result<Job>>) {
        while !self.cancel.is_cancelled() {
            match self.claim().await {
                Ok(batch) if batch.is_empty() => return,
                Ok(batch) => {
                    for job in batch {
                        if jobs.send(Ok(job)).is_err() {
                            return; // nobody sends any more; the leases run out
                        }
                    }
                }
                Err(error) => {
                    let _ = jobs.send(Err(error));
                    return;
                }
            }
        }
    }

    /// One batch of jobs; none once nothing is due.
    async fn claim(&mut self) -> anyhow::Result<Vec<Job>> {
        let worker = self.worker;
        let batch = u32::try_from(worker.digest_batch).unwrap_or(u32::MAX);
        self.unrecorded.acquire_many(batch).await?.forget();
        // After the wait: the lease runs from the claim, not from before it.
        let now = worker.clock.now_ms();
        let lease_until = now + crate::clock::secs_ms(worker.config.lease_s);
        let claimed = digests::claim(
            &worker.store,
            &worker.owner,
            now,
            lease_until,
            worker.digest_batch,
        )
        .await?;
        self.unrecorded
            .add_permits((batch as usize).saturating_sub(claimed.len()));
        if claimed.is_empty() {
            digests::close_finished(&worker.store, now).await?;
            return Ok(Vec::new());
        }
        for delivery in &claimed {
            if !self.campaigns.contains_key(&delivery.campaign_id) {
                let campaign = worker.load_campaign(&delivery.campaign_id).await?;
                self.campaigns
                    .insert(delivery.campaign_id.clone(), campaign);
            }
        }
        let ids: Vec<String> = claimed.iter().map(|d| d.subscriber_id.clone()).collect();
        let mut recipients: HashMap<String, Recipient> = digests::recipients(&worker.store, &ids)
            .await?
            .into_iter()
            .map(|r| (r.id.clone(), r))
            .collect();
        let mut topics: HashMap<String, Vec<String>> = HashMap::new();
        for (id, topic) in digests::topics(&worker.store, &ids).await? {
            topics.entry(id).or_default().push(topic);
        }
        let mut jobs = Vec::with_capacity(claimed.len());
        for delivery in claimed {
            // Claimed again while its first job still waits (its lease ran
            // out unrenewed): that job stands, no second one is made.
            if !self.leases.hold(held(&delivery), lease_until) {
                self.unrecorded.add_permits(1);
                continue;
            }
            jobs.push(Job {
                campaign: self.campaigns.get(&delivery.campaign_id).cloned().flatten(),
                recipient: recipients.remove(&delivery.subscriber_id),
                topics: topics.remove(&delivery.subscriber_id).unwrap_or_default(),
                delivery,
            });
        }
        Ok(jobs)
    }
}

enum Outcome {
    Sent,
    /// Put back until `due` after a transient `error`.
    Retried {
        due: i64,
        error: String,
    },
    Failed(String),
    /// No longer eligible, or nothing left in their topics.
    Cancelled,
    Released,
}

/// What the next digest of a schedule would be.
pub enum NextDigest {
    Ready(Box<Preview>),
    /// The schedule has no article to send ([`crate::digest::nothing_to_send`] says why).
    NothingNew,
    /// Articles are waiting, but none in the topics of the reader the
    /// preview was asked for.
    NothingInTopics,
    /// No reader has the address the preview was asked for.
    UnknownReader,
}

/// Whose digest a preview shows: links still lead to nobody.
#[derive(Debug, Clone, Default)]
pub struct PreviewReader {
    pub name: Option<String>,
    pub topics: Vec<String>,
}

/// A preview of the next digest: its text part, and the message itself.
pub struct Preview {
    pub text: String,
    pub html: String,
    pub subject: String,
    pub message: lettre::Message,
}

impl Worker {
    /// Renders and builds a campaign's digest of `articles` for each of
    /// `readers` (with their topics) on the calling thread, exactly as a
    /// delivery does but without claiming or sending, and hands `sink` the
    /// bytes each message would put on the wire. `benches/render.rs` times it.
    #[doc(hidden)]
    pub fn render_each(
        &self,
        articles: Vec<CampaignArticle>,
        readers: &[(Recipient, Vec<String>)],
        mut sink: impl FnMut(&[u8]),
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let row = CampaignRow {
            id: crate::store::new_id(),
            schedule: String::new(),
            subject: String::new(),
            covers_until: now,
            created_at: now,
        };
        let campaign = CampaignContext::new(row, articles);
        for (recipient, topics) in readers {
            if let Some((_, message)) = self.digest(&campaign, recipient, topics)? {
                sink(&message.formatted());
            }
        }
        Ok(())
    }

    /// Renders the digest `articles` would make, without a campaign, for
    /// `as_reader` (their name and topics) or a reader of every topic, sent
    /// to `to`; `None` if there is nothing to show.
    fn preview(
        &self,
        articles: Vec<CampaignArticle>,
        covers_until: i64,
        subject: &str,
        to: &str,
        as_reader: Option<&PreviewReader>,
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
            name: as_reader.and_then(|r| r.name.clone()),
            eligible: 1,
        };
        let topics = as_reader.map_or(&[][..], |r| &r.topics);
        Ok(self
            .digest(&campaign, &recipient, topics)?
            .map(|(rendered, message)| Preview {
                text: rendered.text,
                html: rendered.html,
                subject: rendered.subject,
                message,
            }))
    }

    /// The schedule's next digest as it stands now, addressed to `to`,
    /// as `reader` (an address) would get it (their name and topics) or,
    /// without one, as a reader of every topic.
    pub async fn next_digest(
        &self,
        schedule: &crate::domain::Schedule,
        to: &str,
        reader: Option<&crate::domain::EmailAddress>,
    ) -> anyhow::Result<NextDigest> {
        let as_reader = match reader {
            None => None,
            Some(address) => match self.preview_reader(address).await? {
                Some(found) => Some(found),
                None => return Ok(NextDigest::UnknownReader),
            },
        };
        let (articles, until) =
            crate::digest::upcoming_articles(&self.store, &self.clock, schedule).await?;
        if articles.is_empty() {
            return Ok(NextDigest::NothingNew);
        }
        let subject = schedule.subject.clone().unwrap_or_default();
        Ok(
            match self.preview(articles, until, &subject, to, as_reader.as_ref())? {
                Some(preview) => NextDigest::Ready(Box::new(preview)),
                None => NextDigest::NothingInTopics,
            },
        )
    }

    /// A reader's name and topics, for a preview of their digest.
    async fn preview_reader(
        &self,
        address: &crate::domain::EmailAddress,
    ) -> anyhow::Result<Option<PreviewReader>> {
        let mut conn = self.store.pool().acquire().await?;
        let id =
            crate::store::subscribers::find_id_by_email(&mut conn, address.canonical()).await?;
        drop(conn);
        let Some(id) = id else {
            return Ok(None);
        };
        let ids = [id];
        let Some(found) = digests::recipients(&self.store, &ids).await?.pop() else {
            return Ok(None);
        };
        let topics = digests::topics(&self.store, &ids).await?;
        Ok(Some(PreviewReader {
            name: found.name,
            topics: topics.into_iter().map(|(_, topic)| topic).collect(),
        }))
    }

    /// Sends a preview (a test message), recording nothing.
    pub async fn send_preview(&self, preview: Preview) -> anyhow::Result<()> {
        self.transport
            .send(preview.message)
            .await
            .map_err(|e| anyhow::anyhow!("the test message was not sent: {e}"))
    }

    /// Sends digest deliveries until none is due, or `cancel` fires. The next
    /// batch is claimed while the last one's messages are still going out,
    /// and results are recorded as they arrive, a few at a time, so the
    /// connections never wait for the database and a crash leaves only the
    /// messages in flight unrecorded (they are sent again after the lease).
    pub async fn deliver_digests(
        &self,
        cancel: &CancellationToken,
    ) -> anyhow::Result<BatchOutcome> {
        // At most two batches claimed and not yet recorded: one going out,
        // one claimed ahead. This bounds what a crash leaves sent but
        // unrecorded, without ever blocking the sends themselves (a send side
        // waiting on the recorder stops polling replies that are in flight).
        let batch = usize::try_from(self.digest_batch).unwrap_or(usize::MAX);
        let unrecorded = Arc::new(Semaphore::new(batch.saturating_mul(2)));
        let leases = self.leases();
        let (jobs, claimed) = mpsc::unbounded_channel();
        let claim = Claims::new(self, leases.clone(), cancel.clone(), unrecorded.clone()).run(jobs);
        let (results, mut arrived) = mpsc::unbounded_channel();
        // One task per connection, so rendering and sending spread over the
        // runtime's threads; each takes the next claimed job when it is free.
        // (One task per message cost more than it saved: BENCHMARKS.md.)
        // Dropped with this future (an error, a shutdown), the tasks stop.
        let claimed = Arc::new(tokio::sync::Mutex::new(claimed));
        let mut senders = tokio::task::JoinSet::new();
        for _ in 0..self.concurrency {
            let (worker, cancel, leases) = (self.clone(), cancel.clone(), leases.clone());
            let (claimed, results) = (claimed.clone(), results.clone());
            senders.spawn(async move {
                loop {
                    // Its own statement: the lock is let go before sending.
                    let next = claimed.lock().await.recv().await;
                    let Some(job) = next else { break };
                    let result = match job {
                        Ok(job) => {
                            let result = worker.deliver_digest(&job, &leases, &cancel).await;
                            Ok((job.delivery, result))
                        }
                        Err(error) => Err(error),
                    };
                    if results.send(result).is_err() {
                        break; // recording failed: stop; the leases run out
                    }
                }
            });
        }
        drop(results);
        let send = async move {
            while let Some(ended) = senders.join_next().await {
                if let Err(error) = ended {
                    tracing::error!(%error, "a digest sender stopped");
                }
            }
        };
        let recording = leases.clone();
        let record = async move {
            let mut outcome = BatchOutcome::default();
            let mut chunk = Vec::new();
            let limit = batch;
            let enough = batch.min(RECORD_AT_LEAST);
            while arrived.recv_many(&mut chunk, limit).await > 0 {
                // A few larger writes cost far less than one per result:
                // wait a moment for more (recv_many is cancel-safe).
                let gather = async {
                    while chunk.len() < enough {
                        let room = limit - chunk.len();
                        if arrived.recv_many(&mut chunk, room).await == 0 {
                            break;
                        }
                    }
                };
                let _ = tokio::time::timeout(RECORD_WAIT, gather).await;
                let recorded = chunk.len();
                let mut recorded_now = BatchOutcome {
                    claimed: recorded,
                    ..BatchOutcome::default()
                };
                let taken = std::mem::take(&mut chunk);
                // Renewed until recorded: a sent row still pending must not
                // be taken by another worker meanwhile.
                let rows: Vec<Row> = taken.iter().flatten().map(|(d, _)| held(d)).collect();
                if let Err(error) = self.record(taken, &mut recorded_now).await {
                    // Claiming must not wait for permits nobody will return.
                    unrecorded.close();
                    return Err(error);
                }
                for row in &rows {
                    recording.let_go(row);
                }
                crate::metrics::emails("digest", &recorded_now);
                outcome.add(recorded_now);
                unrecorded.add_permits(recorded);
            }
            anyhow::Ok(outcome)
        };
        let ((), (), outcome) = leases
            .while_renewing(async { tokio::join!(claim, send, record) })
            .await;
        outcome
    }

    async fn load_campaign(&self, id: &str) -> anyhow::Result<Option<Arc<CampaignContext>>> {
        let Some(row) = digests::campaign(&self.store, id).await? else {
            return Ok(None);
        };
        let articles = digests::campaign_articles(&self.store, &row.id).await?;
        Ok(Some(Arc::new(CampaignContext::new(row, articles))))
    }

    async fn deliver_digest(
        &self,
        job: &Job,
        leases: &Leases,
        cancel: &CancellationToken,
    ) -> anyhow::Result<Outcome> {
        let delivery = &job.delivery;
        let row = job.row();
        // Shutting down, or too late to finish within the lease (a slow
        // server, a rate limit): hand it back untouched.
        if cancel.is_cancelled() || !self.may_send(leases, &row) {
            return self.release(delivery).await;
        }
        let (Some(campaign), Some(recipient)) = (&job.campaign, &job.recipient) else {
            return Ok(Outcome::Cancelled);
        };
        if recipient.eligible == 0 {
            return Ok(Outcome::Cancelled);
        }
        let message = match self.digest(campaign, recipient, &job.topics) {
            Ok(Some((_, message))) => message,
            Ok(None) => return Ok(Outcome::Cancelled),
            Err(error) => {
                return self
                    .retry_digest(delivery, campaign, &format!("{error:#}"))
                    .await;
            }
        };
        if !self.ready_to_send(leases, &row).await {
            return self.release(delivery).await;
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

    async fn release(&self, delivery: &ClaimedDelivery) -> anyhow::Result<Outcome> {
        digests::release(
            &self.store,
            &delivery.campaign_id,
            &delivery.subscriber_id,
            &self.owner,
        )
        .await?;
        Ok(Outcome::Released)
    }

    /// The reader's digest, rendered and built into a message; `None` if
    /// nothing of the campaign is in their topics.
    fn digest(
        &self,
        campaign: &CampaignContext,
        recipient: &Recipient,
        topics: &[String],
    ) -> anyhow::Result<Option<(RenderedEmail, lettre::Message)>> {
        let Some((rendered, unsubscribe_url)) = self.render_digest(campaign, recipient, topics)?
        else {
            return Ok(None);
        };
        let message = self.build_digest(campaign, recipient, &rendered, &unsubscribe_url)?;
        Ok(Some((rendered, message)))
    }

    fn build_digest(
        &self,
        campaign: &CampaignContext,
        recipient: &Recipient,
        rendered: &RenderedEmail,
        unsubscribe_url: &str,
    ) -> anyhow::Result<lettre::Message> {
        let digest = &self.digest;
        let mut list_unsubscribe = format!("<{unsubscribe_url}>");
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
            eight_bit_mime: self.transport.eight_bit_mime(),
        };
        build_message(&envelope, rendered)
    }

    /// The reader's digest and their unsubscribe link; `None` if nothing
    /// of the campaign is in their topics.
    fn render_digest(
        &self,
        campaign: &CampaignContext,
        recipient: &Recipient,
        topics: &[String],
    ) -> anyhow::Result<Option<(RenderedEmail, String)>> {
        let link = |purpose, prefix: &str| {
            self.digest
                .links
                .token(purpose, &recipient.id)
                .map(|t| format!("{}/{prefix}/{t}", self.digest.base_url))
                .context("a reader's links need a UUID")
        };
        let unsubscribe_url = link(LinkPurpose::Unsubscribe, "unsubscribe")?;
        let preferences_url = link(LinkPurpose::Preferences, "preferences")?;
        let personal = Personal {
            name: recipient.name.as_deref(),
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
        };
        let mut sorted = topics.to_vec();
        sorted.sort_unstable();
        let key = (sorted, personal.name.is_some());
        let (known, full) = {
            let renderings = campaign
                .renderings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let known = renderings.get(&key).cloned();
            (known, renderings.len() >= MAX_RENDERINGS)
        };
        let rendering = match known {
            Some(rendering) => rendering,
            // Working out a shape costs three renders: not for one reader.
            None if full => Arc::new(Rendering::InFull),
            None => {
                let rendering = Arc::new(self.rendering(campaign, topics, &personal)?);
                campaign
                    .renderings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, rendering.clone());
                rendering
            }
        };
        let rendered = match &*rendering {
            Rendering::Nothing => return Ok(None),
            Rendering::Shaped(shape) => shape.fill(&personal),
            Rendering::InFull => {
                let Some(context) = self.digest_context(campaign, &personal, topics) else {
                    return Ok(None);
                };
                self.templates.render("digest", &context)?
            }
        };
        Ok(Some((rendered, unsubscribe_url)))
    }

    /// Renders the digest of these topics once with markers for the
    /// personal values, and trusts the result only if filling it in gives
    /// exactly the full render for `personal`.
    fn rendering(
        &self,
        campaign: &CampaignContext,
        topics: &[String],
        personal: &Personal<'_>,
    ) -> anyhow::Result<Rendering> {
        let markers = shape::markers(personal.name.is_some());
        let (Some(marked), Some(context)) = (
            self.digest_context(campaign, &markers, topics),
            self.digest_context(campaign, personal, topics),
        ) else {
            return Ok(Rendering::Nothing);
        };
        let Some(shape) = Shape::cut(self.templates.render("digest", &marked)?) else {
            return Ok(Rendering::InFull);
        };
        let full = self.templates.render("digest", &context)?;
        Ok(if shape.fill(personal) == full {
            Rendering::Shaped(shape)
        } else {
            Rendering::InFull
        })
    }

    /// The reader's digest: the campaign's articles in their topics (all if
    /// they chose none), grouped by category. `None` if nothing is left.
    fn digest_context(
        &self,
        campaign: &CampaignContext,
        personal: &Personal<'_>,
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
        Some(json!({
            "site_name": digest.site_name,
            "base_url": digest.base_url,
            "date": campaign.date,
            "count": seen.len(),
            "subject": campaign.row.subject,
            "name": personal.name,
            "groups": groups.into_iter().map(|(category, articles)| json!({
                "category": if category.is_empty() { "More" } else { category },
                "articles": articles,
            })).collect::<Vec<_>>(),
            "unsubscribe_url": personal.unsubscribe_url,
            "preferences_url": personal.preferences_url,
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
        Ok(Outcome::Retried {
            due: now + delay,
            error: error.to_owned(),
        })
    }

    /// Records final outcomes with one statement per campaign and outcome,
    /// and counts what changed: a reader who withdrew meanwhile is already
    /// `cancelled` and is not counted again.
    async fn record(
        &self,
        results: Vec<anyhow::Result<(ClaimedDelivery, anyhow::Result<Outcome>)>>,
        outcome: &mut BatchOutcome,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let mut sent: HashMap<String, Vec<String>> = HashMap::new();
        let mut cancelled: HashMap<String, Vec<String>> = HashMap::new();
        let mut counts: HashMap<String, digests::BatchCounts> = HashMap::new();
        let mut first_error = None;
        for result in results {
            // Record everyone else's outcome first: sent mail must not stay
            // pending and go out again.
            let (delivery, result) = match result {
                Ok((delivery, Ok(result))) => (delivery, result),
                Ok((_, Err(error))) | Err(error) => {
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
                    let changed = digests::finish(
                        &self.store,
                        &delivery.campaign_id,
                        &ids,
                        "failed",
                        Some(&error),
                        now,
                    )
                    .await?;
                    counts.entry(delivery.campaign_id).or_default().failed += changed;
                }
                Outcome::Retried { due, error } => {
                    outcome.retried += 1;
                    counts
                        .entry(delivery.campaign_id)
                        .or_default()
                        .add_retry(due, error);
                }
                Outcome::Released => outcome.released += 1,
            }
        }
        for (campaign, ids) in &sent {
            let changed = digests::finish(&self.store, campaign, ids, "sent", None, now).await?;
            counts.entry(campaign.clone()).or_default().sent += changed;
        }
        for (campaign, ids) in &cancelled {
            let changed =
                digests::finish(&self.store, campaign, ids, "cancelled", None, now).await?;
            counts.entry(campaign.clone()).or_default().cancelled += changed;
        }
        for (campaign, counts) in counts {
            digests::add_counts(&self.store, &campaign, counts, now).await?;
        }
        match first_error {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }
}
