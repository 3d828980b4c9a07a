//! Digest schedules' state, campaigns, and their per-reader deliveries.

use anyhow::Context;
use sqlx::{FromRow, Row};

use super::{Backend, Conn, Store};

/// Who may be sent a digest, over `subscribers s LEFT JOIN preferences p`:
/// confirmed, not suppressed (E-24), not paused, and whose latest newsletter
/// event is `confirmed` (L-02). Checked when recipients are chosen and again
/// when each delivery is claimed (G-10, E-26).
const SENDABLE: &str = "s.status = 'confirmed' AND s.suppressed_at IS NULL
    AND COALESCE(p.paused, 0) = 0
    AND (SELECT e.action FROM consent_events e
         WHERE e.subject_kind = 'subscriber' AND e.subject = s.id AND e.purpose = 'newsletter'
         ORDER BY e.created_at DESC, e.id DESC LIMIT 1) = 'confirmed'";

/// Locks a schedule's row for the rest of the transaction, creating it on
/// first sight with `last_fire_at` as its last acted-on firing.
/// Every campaign of the schedule is created under this lock, so a "send
/// now" and a scheduled firing never choose the same unsent articles.
pub async fn lock_schedule(conn: &mut Conn, name: &str, last_fire_at: i64) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO digest_schedules (name, last_fire_at) VALUES ($1, $2)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(name)
    .bind(last_fire_at)
    .execute(&mut *conn)
    .await
    .context("while creating schedule state")?;
    // A write locks the row on both databases; on PostgreSQL the statements
    // after it see what the transaction that held the lock committed.
    sqlx::query("UPDATE digest_schedules SET last_fire_at = last_fire_at WHERE name = $1")
        .bind(name)
        .execute(&mut *conn)
        .await
        .context("while locking schedule state")?;
    Ok(())
}

/// Claims a firing: true for the one instance that moves `last_fire_at` forward.
pub async fn claim_firing(conn: &mut Conn, name: &str, fire_at: i64) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "UPDATE digest_schedules SET last_fire_at = $1 WHERE name = $2 AND last_fire_at < $1",
    )
    .bind(fire_at)
    .bind(name)
    .execute(&mut *conn)
    .await
    .context("while claiming a firing")?;
    Ok(result.rows_affected() == 1)
}

/// A campaign `c` that carries its articles to readers: it has recipients,
/// and was not cancelled before it sent anything (an editor who stops a
/// digest at once has its articles go with the next one).
const CARRIES: &str = "c.recipients > 0 AND (c.status <> 'cancelled' OR c.sent > 0)";

/// The articles a schedule has not sent yet, over `articles a`, with three
/// parameters from `$first`: the oldest publication time (exclusive), the
/// newest (inclusive), the schedule. An article counts as sent once a
/// campaign of the schedule carries it ([`CARRIES`]); which campaign, and
/// the article's own date, do not matter.
fn unsent(first: usize) -> String {
    let (oldest, newest, schedule) = (first, first + 1, first + 2);
    format!(
        "a.draft = 0 AND a.published_at > ${oldest} AND a.published_at <= ${newest}
         AND NOT EXISTS (SELECT 1 FROM campaign_articles ca JOIN campaigns c ON c.id = ca.campaign_id
                         WHERE ca.article_id = a.id AND c.schedule = ${schedule} AND {CARRIES})"
    )
}

/// A campaign about to be created.
pub struct NewCampaign<'a> {
    pub id: &'a str,
    pub schedule: &'a str,
    pub period_key: &'a str,
    pub subject: &'a str,
    pub covers_from: i64,
    pub covers_until: i64,
    /// An editor's choice of articles; `None`: every article of the window
    /// (`covers_from`, `covers_until`] the schedule has not sent yet.
    pub articles: Option<&'a [String]>,
}

/// Creates the campaign with its articles; `None` if one with this period
/// key exists already (another instance fired first) or no article is new.
pub async fn create_campaign(
    conn: &mut Conn,
    campaign: &NewCampaign<'_>,
    now: i64,
) -> anyhow::Result<Option<u64>> {
    let created = sqlx::query(
        "INSERT INTO campaigns (id, schedule, period_key, status, subject, covers_from, covers_until, created_at)
         VALUES ($1, $2, $3, 'queued', $4, $5, $6, $7) ON CONFLICT (period_key) DO NOTHING",
    )
    .bind(campaign.id)
    .bind(campaign.schedule)
    .bind(campaign.period_key)
    .bind(campaign.subject)
    .bind(campaign.covers_from)
    .bind(campaign.covers_until)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while creating a campaign")?;
    if created.rows_affected() == 0 {
        return Ok(None);
    }
    if let Some(chosen) = campaign.articles {
        // A handful of ids: one statement each is simpler than a list.
        let mut added = 0;
        for article in chosen {
            let result = sqlx::query(
                "INSERT INTO campaign_articles (campaign_id, article_id)
                 SELECT $1, id FROM articles WHERE id = $2 AND draft = 0 ON CONFLICT DO NOTHING",
            )
            .bind(campaign.id)
            .bind(article)
            .execute(&mut *conn)
            .await
            .context("while adding a chosen article")?;
            added += result.rows_affected();
        }
        return Ok(Some(added));
    }
    let sql = format!(
        "INSERT INTO campaign_articles (campaign_id, article_id)
         SELECT $1, a.id FROM articles a WHERE {}",
        unsent(2)
    );
    let articles = sqlx::query(&sql)
        .bind(campaign.id)
        .bind(campaign.covers_from)
        .bind(campaign.covers_until)
        .bind(campaign.schedule)
        .execute(&mut *conn)
        .await
        .context("while choosing a campaign's articles")?;
    Ok(Some(articles.rows_affected()))
}

/// Inserts one delivery per eligible reader in a single statement, never
/// loading readers into memory: confirmed, latest newsletter event
/// `confirmed` (L-02), not suppressed (E-24), not paused, of this frequency,
/// and with at least one article in their topics (none chosen means all).
pub async fn enqueue_recipients(
    conn: &mut Conn,
    campaign_id: &str,
    frequency: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let sql = format!(
        "INSERT INTO deliveries (campaign_id, subscriber_id, status, next_attempt_at)
         SELECT $1, s.id, 'pending', $3
         FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id
         WHERE {SENDABLE} AND COALESCE(p.frequency, 'daily') = $2
           AND (NOT EXISTS (SELECT 1 FROM preference_topics t WHERE t.subscriber_id = s.id)
                OR EXISTS (SELECT 1 FROM preference_topics t
                           JOIN article_categories c ON c.category = t.category
                           JOIN campaign_articles ca ON ca.article_id = c.article_id
                           WHERE t.subscriber_id = s.id AND ca.campaign_id = $1))
         ON CONFLICT (campaign_id, subscriber_id) DO NOTHING"
    );
    let result = sqlx::query(&sql)
        .bind(campaign_id)
        .bind(frequency)
        .bind(now)
        .execute(&mut *conn)
        .await
        .context("while enqueueing recipients")?;
    let recipients = result.rows_affected();
    sqlx::query("UPDATE campaigns SET recipients = $1 WHERE id = $2")
        .bind(i64::try_from(recipients).unwrap_or(i64::MAX))
        .bind(campaign_id)
        .execute(&mut *conn)
        .await
        .context("while counting recipients")?;
    Ok(recipients)
}

/// A delivery a worker holds the lease on.
#[derive(Debug, Clone, FromRow)]
pub struct ClaimedDelivery {
    pub campaign_id: String,
    pub subscriber_id: String,
    pub attempts: i64,
}

/// Leases up to `limit` due deliveries of running campaigns to `owner`.
pub async fn claim(
    store: &Store,
    owner: &str,
    now: i64,
    lease_until: i64,
    limit: i64,
) -> anyhow::Result<Vec<ClaimedDelivery>> {
    // SQLite is told which index to walk: its planner may otherwise scan
    // and sort every delivery for each claim.
    let (index, lock) = match store.backend() {
        Backend::Postgres => ("", "FOR UPDATE OF d SKIP LOCKED"),
        Backend::Sqlite => ("INDEXED BY deliveries_pending", ""),
    };
    let sql = format!(
        "UPDATE deliveries SET lease_owner = $1, lease_until = $2, attempts = attempts + 1
         WHERE (campaign_id, subscriber_id) IN (
             SELECT d.campaign_id, d.subscriber_id FROM deliveries d {index}
             JOIN campaigns c ON c.id = d.campaign_id
             WHERE d.status = 'pending' AND d.next_attempt_at <= $3
               AND (d.lease_until IS NULL OR d.lease_until < $3)
               AND c.status IN ('queued', 'sending')
             ORDER BY d.next_attempt_at LIMIT $4 {lock})
         RETURNING campaign_id, subscriber_id, attempts"
    );
    sqlx::query_as(&sql)
        .bind(owner)
        .bind(lease_until)
        .bind(now)
        .bind(limit)
        .fetch_all(store.pool())
        .await
        .context("while claiming deliveries")
}

/// What a worker needs to know about a claimed reader, checked again at
/// claim time (G-10, E-26): may they still be sent to?
#[derive(Debug, Clone, FromRow)]
pub struct Recipient {
    pub id: String,
    pub email_canonical: String,
    pub name: Option<String>,
    pub eligible: i64,
}

pub async fn recipients(store: &Store, ids: &[String]) -> anyhow::Result<Vec<Recipient>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT s.id, s.email_canonical, s.name,
                CASE WHEN {SENDABLE} THEN 1 ELSE 0 END AS eligible
         FROM subscribers s LEFT JOIN preferences p ON p.subscriber_id = s.id WHERE s.id IN ({ids})",
        ids = store.json_list(1)
    );
    sqlx::query_as(&sql)
        .bind(serde_json::to_string(ids)?)
        .fetch_all(store.pool())
        .await
        .context("while loading recipients")
}

/// Each reader's topics, for a batch.
pub async fn topics(store: &Store, ids: &[String]) -> anyhow::Result<Vec<(String, String)>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT subscriber_id, category FROM preference_topics WHERE subscriber_id IN ({})",
        store.json_list(1)
    );
    sqlx::query_as(&sql)
        .bind(serde_json::to_string(ids)?)
        .fetch_all(store.pool())
        .await
        .context("while loading topics")
}

/// A campaign as a worker renders it.
#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub schedule: String,
    pub subject: String,
    pub covers_until: i64,
    /// Retries give up a configured time after this.
    pub created_at: i64,
}

pub async fn campaign(store: &Store, id: &str) -> anyhow::Result<Option<CampaignRow>> {
    sqlx::query_as(
        "SELECT id, schedule, subject, covers_until, created_at FROM campaigns WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .context("while reading a campaign")
}

/// One article of a campaign, with one of its categories ('' for none).
#[derive(Debug, Clone, FromRow)]
pub struct CampaignArticle {
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub published_at: i64,
    pub category: String,
}

pub async fn campaign_articles(
    store: &Store,
    campaign_id: &str,
) -> anyhow::Result<Vec<CampaignArticle>> {
    sqlx::query_as(
        "SELECT a.slug, a.title, a.teaser, a.author, a.published_at, COALESCE(c.category, '') AS category
         FROM campaign_articles ca JOIN articles a ON a.id = ca.article_id
         LEFT JOIN article_categories c ON c.article_id = a.id
         WHERE ca.campaign_id = $1 ORDER BY a.published_at DESC, a.id",
    )
    .bind(campaign_id)
    .fetch_all(store.pool())
    .await
    .context("while reading a campaign's articles")
}

/// Final states for several deliveries of one campaign at once; returns how
/// many were still pending and changed.
pub async fn finish(
    store: &Store,
    campaign_id: &str,
    subscriber_ids: &[String],
    status: &str,
    error: Option<&str>,
    now: i64,
) -> anyhow::Result<i64> {
    if subscriber_ids.is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE deliveries SET status = $1, last_error = $2, sent_at = CASE WHEN $1 = 'sent' THEN $3 ELSE NULL END,
                lease_owner = NULL, lease_until = NULL
         WHERE campaign_id = $4 AND status = 'pending' AND subscriber_id IN ({})",
        store.json_list(5)
    );
    let result = sqlx::query(&sql)
        .bind(status)
        .bind(error)
        .bind(now)
        .bind(campaign_id)
        .bind(serde_json::to_string(subscriber_ids)?)
        .execute(store.pool())
        .await
        .context("while recording deliveries")?;
    Ok(i64::try_from(result.rows_affected()).unwrap_or(i64::MAX))
}

/// A transient failure: try this delivery again at `next_attempt_at`.
pub async fn retry(
    store: &Store,
    campaign_id: &str,
    subscriber_id: &str,
    next_attempt_at: i64,
    error: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET next_attempt_at = $1, last_error = $2, lease_owner = NULL, lease_until = NULL
         WHERE campaign_id = $3 AND subscriber_id = $4 AND status = 'pending'",
    )
    .bind(next_attempt_at)
    .bind(error)
    .bind(campaign_id)
    .bind(subscriber_id)
    .execute(store.pool())
    .await
    .context("while rescheduling a delivery")?;
    Ok(())
}

/// Extends `owner`'s leases on these pending deliveries of one campaign to
/// `until`; returns the readers whose lease it extended (a lease that ran
/// out and was taken by another worker is not among them).
pub async fn renew(
    store: &Store,
    owner: &str,
    campaign_id: &str,
    subscriber_ids: &[String],
    until: i64,
) -> anyhow::Result<Vec<String>> {
    let sql = format!(
        "UPDATE deliveries SET lease_until = $1
         WHERE campaign_id = $2 AND lease_owner = $3 AND status = 'pending'
           AND subscriber_id IN ({})
         RETURNING subscriber_id",
        store.json_list(4)
    );
    sqlx::query_scalar(&sql)
        .bind(until)
        .bind(campaign_id)
        .bind(owner)
        .bind(serde_json::to_string(subscriber_ids)?)
        .fetch_all(store.pool())
        .await
        .context("while renewing delivery leases")
}

/// Hands back a claimed delivery that was not attempted (shutdown).
pub async fn release(
    store: &Store,
    campaign_id: &str,
    subscriber_id: &str,
    owner: &str,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE deliveries SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1
         WHERE campaign_id = $1 AND subscriber_id = $2 AND lease_owner = $3 AND status = 'pending'",
    )
    .bind(campaign_id)
    .bind(subscriber_id)
    .bind(owner)
    .execute(store.pool())
    .await
    .context("while releasing a delivery")?;
    Ok(())
}

/// Stores a campaign's counts and moves it to `sending` or, with nothing
/// pending any more, to `done`.
pub async fn refresh_campaign(store: &Store, campaign_id: &str, now: i64) -> anyhow::Result<()> {
    let row = sqlx::query(
        "SELECT COALESCE(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END), 0) AS pending,
                COALESCE(SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), 0) AS sent,
                COALESCE(SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), 0) AS failed,
                COALESCE(SUM(CASE WHEN status = 'cancelled' THEN 1 ELSE 0 END), 0) AS cancelled
         FROM deliveries WHERE campaign_id = $1",
    )
    .bind(campaign_id)
    .fetch_one(store.pool())
    .await
    .context("while counting deliveries")?;
    let count = |name: &str| -> anyhow::Result<i64> { Ok(row.try_get(name)?) };
    let (pending, sent, failed, cancelled) = (
        count("pending")?,
        count("sent")?,
        count("failed")?,
        count("cancelled")?,
    );
    sqlx::query(
        "UPDATE campaigns SET sent = $1, failed = $2, cancelled = $3,
                status = CASE WHEN status IN ('queued', 'sending') THEN CASE WHEN $4 = 0 THEN 'done' ELSE 'sending' END ELSE status END,
                finished_at = CASE WHEN $4 = 0 AND finished_at IS NULL THEN $5 ELSE finished_at END
         WHERE id = $6",
    )
    .bind(sent)
    .bind(failed)
    .bind(cancelled)
    .bind(pending)
    .bind(now)
    .bind(campaign_id)
    .execute(store.pool())
    .await
    .context("while updating a campaign")?;
    Ok(())
}

/// A campaign's status and counts.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct CampaignStatus {
    pub id: String,
    pub period_key: String,
    pub status: String,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
}

pub async fn campaign_status(store: &Store, id: &str) -> anyhow::Result<Option<CampaignStatus>> {
    sqlx::query_as("SELECT id, period_key, status, recipients, sent, failed, cancelled FROM campaigns WHERE id = $1")
        .bind(id)
        .fetch_optional(store.pool())
        .await
        .context("while reading a campaign's status")
}

/// A hard bounce: the reader is never selected or sent to again (E-24).
pub async fn suppress_subscriber(
    store: &Store,
    subscriber_id: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "UPDATE subscribers SET suppressed_at = $1 WHERE id = $2 AND suppressed_at IS NULL",
    )
    .bind(now)
    .bind(subscriber_id)
    .execute(store.pool())
    .await
    .context("while suppressing a reader")?;
    Ok(())
}

/// Withdrawal cancels a reader's pending digests at once (G-10).
pub async fn cancel_pending_for(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
         WHERE subscriber_id = $1 AND status = 'pending'",
    )
    .bind(subscriber_id)
    .execute(&mut *conn)
    .await
    .context("while cancelling deliveries")?;
    Ok(result.rows_affected())
}

/// Drops a campaign that turned out to cover nothing.
pub async fn delete_campaign(conn: &mut Conn, id: &str) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM campaigns WHERE id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while dropping an empty campaign")?;
    Ok(())
}

/// A campaign with nobody to send to is done at once.
pub async fn mark_done(conn: &mut Conn, id: &str, now: i64) -> anyhow::Result<()> {
    sqlx::query("UPDATE campaigns SET status = 'done', finished_at = $1 WHERE id = $2")
        .bind(now)
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while closing a campaign")?;
    Ok(())
}

/// Campaigns still queued or sending.
pub async fn running(store: &Store) -> anyhow::Result<Vec<CampaignStatus>> {
    sqlx::query_as(
        "SELECT id, period_key, status, recipients, sent, failed, cancelled FROM campaigns
         WHERE status IN ('queued', 'sending') ORDER BY created_at",
    )
    .fetch_all(store.pool())
    .await
    .context("while listing running campaigns")
}

/// Closes campaigns left with nothing pending (e.g. every remaining reader
/// withdrew), so none stays `queued` or `sending` for ever.
pub async fn close_finished(store: &Store, now: i64) -> anyhow::Result<()> {
    let idle: Vec<String> = sqlx::query_scalar(
        "SELECT c.id FROM campaigns c WHERE c.status IN ('queued', 'sending')
           AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.campaign_id = c.id AND d.status = 'pending')",
    )
    .fetch_all(store.pool())
    .await
    .context("while looking for finished campaigns")?;
    for id in idle {
        refresh_campaign(store, &id, now).await?;
    }
    Ok(())
}

/// The articles the schedule's next campaign would carry if it were
/// created now with the window (`oldest`, `newest`], as a campaign holds them.
pub async fn unsent_articles(
    store: &Store,
    schedule: &str,
    oldest: i64,
    newest: i64,
) -> anyhow::Result<Vec<CampaignArticle>> {
    let sql = format!(
        "SELECT a.slug, a.title, a.teaser, a.author, a.published_at, COALESCE(c.category, '') AS category
         FROM articles a LEFT JOIN article_categories c ON c.article_id = a.id
         WHERE {} ORDER BY a.published_at DESC, a.id",
        unsent(1)
    );
    sqlx::query_as(&sql)
        .bind(oldest)
        .bind(newest)
        .bind(schedule)
        .fetch_all(store.pool())
        .await
        .context("while reading articles for a preview")
}

/// When the schedule's latest campaign that carries its articles to
/// readers was created; `None` if no digest of it has been sent yet.
pub async fn last_sent(store: &Store, schedule: &str) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(&format!(
        "SELECT MAX(c.created_at) FROM campaigns c WHERE c.schedule = $1 AND {CARRIES}"
    ))
    .bind(schedule)
    .fetch_one(store.pool())
    .await
    .context("while reading a schedule's last digest")
}

/// What one batch did to a campaign.
#[derive(Debug, Clone, Default)]
pub struct BatchCounts {
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
    pub retried: i64,
    /// When the latest retry of the batch falls due, and its error.
    pub last_retry: Option<(i64, String)>,
}

impl BatchCounts {
    pub fn add_retry(&mut self, due: i64, error: String) {
        self.retried += 1;
        if self
            .last_retry
            .as_ref()
            .is_none_or(|(latest, _)| due >= *latest)
        {
            self.last_retry = Some((due, error));
        }
    }
}

/// Adds a batch's counts to its campaign, which is then `sending`, or
/// `done` once nothing is pending. Cheap per batch, unlike a recount over
/// every delivery of the campaign ([`refresh_campaign`] does that when idle).
pub async fn add_counts(
    store: &Store,
    campaign_id: &str,
    counts: BatchCounts,
    now: i64,
) -> anyhow::Result<()> {
    let (next_retry_at, last_error) = counts.last_retry.unzip();
    sqlx::query(
        "UPDATE campaigns SET sent = sent + $1, failed = failed + $2, cancelled = cancelled + $3,
                retries = retries + $4,
                next_retry_at = COALESCE($5, next_retry_at), last_error = COALESCE($6, last_error),
                status = CASE WHEN status = 'queued' THEN 'sending' ELSE status END
         WHERE id = $7",
    )
    .bind(counts.sent)
    .bind(counts.failed)
    .bind(counts.cancelled)
    .bind(counts.retried)
    .bind(next_retry_at)
    .bind(last_error)
    .bind(campaign_id)
    .execute(store.pool())
    .await
    .context("while counting a batch")?;
    let pending: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM deliveries WHERE campaign_id = $1 AND status = 'pending' LIMIT 1",
    )
    .bind(campaign_id)
    .fetch_optional(store.pool())
    .await
    .context("while looking for pending deliveries")?;
    if pending.is_none() {
        // Done: one exact recount, which also takes in readers whose
        // withdrawal cancelled their delivery outside any batch.
        refresh_campaign(store, campaign_id, now).await?;
    }
    Ok(())
}

/// A campaign as editors watch it.
#[derive(Debug, Clone, FromRow, serde::Serialize, utoipa::ToSchema)]
pub struct CampaignSummary {
    pub id: String,
    pub schedule: String,
    pub period_key: String,
    pub subject: String,
    pub status: String,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Deliveries put back after a transient failure (an SMTP server down
    /// or answering 4xx), each time one was.
    pub retries: i64,
    /// When the latest of those retries falls due (milliseconds since the
    /// epoch): the backoff now in force.
    pub next_retry_at: Option<i64>,
    /// The error behind the latest retry.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Recipients not yet sent, failed or cancelled.
    #[sqlx(skip)]
    pub pending: i64,
    /// Messages sent per second since the campaign started.
    #[sqlx(skip)]
    pub rate_per_s: f64,
}

impl CampaignSummary {
    pub fn with_rate(mut self, now: i64) -> Self {
        self.pending = (self.recipients - self.sent - self.failed - self.cancelled).max(0);
        let elapsed_ms = self.finished_at.unwrap_or(now) - self.created_at;
        #[allow(clippy::cast_precision_loss)] // counts and milliseconds far below 2^52
        if elapsed_ms > 0 {
            self.rate_per_s = (self.sent as f64 * 1000.0 / elapsed_ms as f64 * 10.0).round() / 10.0;
        }
        self
    }
}

const SUMMARY_COLUMNS: &str = "id, schedule, period_key, subject, status, recipients, sent, failed, cancelled, \
     retries, next_retry_at, last_error, created_at, finished_at";

pub async fn summary(store: &Store, id: &str) -> anyhow::Result<Option<CampaignSummary>> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM campaigns WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .context("while reading a campaign")
}

pub async fn recent(store: &Store, limit: i64) -> anyhow::Result<Vec<CampaignSummary>> {
    sqlx::query_as(&format!(
        "SELECT {SUMMARY_COLUMNS} FROM campaigns ORDER BY created_at DESC, id DESC LIMIT $1"
    ))
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("while listing campaigns")
}

/// Moves a campaign from one of `from` to `to`; `false` if it is in none of them.
pub async fn set_status(
    conn: &mut Conn,
    id: &str,
    from: &[&str],
    to: &str,
    now: i64,
) -> anyhow::Result<bool> {
    // At most three states; the list is padded so the statement is one text.
    let state = |i: usize| from.get(i).or(from.last()).copied().unwrap_or("");
    let result = sqlx::query(
        "UPDATE campaigns SET status = $1,
           finished_at = CASE WHEN $1 = 'cancelled' THEN $2 ELSE finished_at END
         WHERE id = $3 AND status IN ($4, $5, $6)",
    )
    .bind(to)
    .bind(now)
    .bind(id)
    .bind(state(0))
    .bind(state(1))
    .bind(state(2))
    .execute(&mut *conn)
    .await
    .context("while changing a campaign's status")?;
    Ok(result.rows_affected() == 1)
}

/// A cancelled campaign's pending deliveries are cancelled with it; those a
/// worker is sending now are left to be recorded as what they become.
pub async fn cancel_pending_of_campaign(
    conn: &mut Conn,
    id: &str,
    now: i64,
) -> anyhow::Result<u64> {
    let result = sqlx::query(
        "UPDATE deliveries SET status = 'cancelled', lease_owner = NULL, lease_until = NULL
         WHERE campaign_id = $1 AND status = 'pending' AND (lease_until IS NULL OR lease_until < $2)",
    )
    .bind(id)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while cancelling a campaign's deliveries")?;
    Ok(result.rows_affected())
}

/// One digest delivery of a reader's, as editors see it.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ReaderDelivery {
    pub campaign_id: String,
    pub period_key: String,
    pub status: String,
    pub attempts: i64,
    pub sent_at: Option<i64>,
    pub last_error: Option<String>,
}

pub async fn deliveries_of(
    store: &Store,
    subscriber_id: &str,
    limit: i64,
) -> anyhow::Result<Vec<ReaderDelivery>> {
    sqlx::query_as(
        "SELECT d.campaign_id, c.period_key, d.status, d.attempts, d.sent_at, d.last_error
         FROM deliveries d JOIN campaigns c ON c.id = d.campaign_id
         WHERE d.subscriber_id = $1 ORDER BY c.created_at DESC LIMIT $2",
    )
    .bind(subscriber_id)
    .bind(limit)
    .fetch_all(store.pool())
    .await
    .context("while listing a reader's deliveries")
}
