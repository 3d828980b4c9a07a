//! Campaigns (`campaigns`, `campaign_articles`): one digest of a schedule,
//! its articles, and the counts of its deliveries.

use anyhow::Context;
use sqlx::{FromRow, Row};

use super::{Conn, Store, campaign_articles::unsent};

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

/// A campaign as a worker renders it.
#[derive(Debug, Clone, FromRow)]
pub struct CampaignRow {
    pub id: String,
    pub schedule: String,
    pub subject: String,
    pub covers_until: i64,
    /// Retries give up a configured time after this: the campaign's start,
    /// or the end of its latest hold (a warm-up can hold readers for days,
    /// and their retries must not be given up before they were tried).
    pub retries_from: i64,
}

pub async fn campaign(store: &Store, id: &str) -> anyhow::Result<Option<CampaignRow>> {
    sqlx::query_as(
        "SELECT id, schedule, subject, covers_until,
                CASE WHEN held_until > created_at THEN held_until ELSE created_at END AS retries_from
         FROM campaigns WHERE id = $1",
    )
    .bind(id)
    .fetch_optional(store.pool())
    .await
    .context("while reading a campaign")
}

/// Stores a campaign's counts and moves it to `sending` or, with nothing
/// pending any more, to `done`, telling webhooks so once (the instance
/// whose statement moved it).
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
    let mut tx = store.begin().await?;
    sqlx::query(
        "UPDATE campaigns SET sent = $1, failed = $2, cancelled = $3,
                status = CASE WHEN status = 'queued' AND $4 > 0 THEN 'sending' ELSE status END
         WHERE id = $5",
    )
    .bind(sent)
    .bind(failed)
    .bind(cancelled)
    .bind(pending)
    .bind(campaign_id)
    .execute(&mut *tx)
    .await
    .context("while updating a campaign")?;
    if pending == 0 {
        let closed = sqlx::query(
            "UPDATE campaigns SET status = 'done', finished_at = COALESCE(finished_at, $1)
             WHERE id = $2 AND status IN ('queued', 'sending')",
        )
        .bind(now)
        .bind(campaign_id)
        .execute(&mut *tx)
        .await
        .context("while closing a campaign")?;
        if closed.rows_affected() == 1 {
            super::webhooks::tell_campaign_finished(&mut tx, campaign_id, now).await?;
        }
    }
    tx.commit().await?;
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
    super::webhooks::tell_campaign_finished(conn, id, now).await
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
/// `done` once nothing is pending. `next_retry_at` only moves later: a
/// batch is recorded in chunks, and the campaign's retries are all due
/// only when the latest of any chunk is. Cheap per batch, unlike a recount over
/// every delivery of the campaign ([`refresh_campaign`] does that when idle).
pub async fn add_counts(
    store: &Store,
    campaign_id: &str,
    counts: BatchCounts,
    now: i64,
) -> anyhow::Result<()> {
    let (next_retry_at, last_error) = counts.last_retry.unzip();
    let left: Option<i64> = sqlx::query_scalar(
        "UPDATE campaigns SET sent = sent + $1, failed = failed + $2, cancelled = cancelled + $3,
                retries = retries + $4,
                next_retry_at = CASE WHEN next_retry_at IS NULL OR $5 > next_retry_at
                                     THEN $5 ELSE next_retry_at END,
                last_error = COALESCE($6, last_error),
                status = CASE WHEN status = 'queued' THEN 'sending' ELSE status END
         WHERE id = $7
         RETURNING recipients - sent - failed - cancelled",
    )
    .bind(counts.sent)
    .bind(counts.failed)
    .bind(counts.cancelled)
    .bind(counts.retried)
    .bind(next_retry_at)
    .bind(last_error)
    .bind(campaign_id)
    .fetch_optional(store.pool())
    .await
    .context("while counting a batch")?;
    // The counters say when the last delivery is recorded; a look for a
    // pending row instead was a scan of every row sent so far on
    // PostgreSQL, per batch (its statistics, taken at enqueue, say all
    // are pending). Done: one exact recount. A delivery cancelled outside
    // any batch (a withdrawal) is in no counter: that campaign is closed
    // by [`close_finished`] once a claim finds nothing due.
    if left.is_some_and(|left| left <= 0) {
        refresh_campaign(store, campaign_id, now).await?;
    }
    Ok(())
}

/// A campaign's row as editors watch it; `digest::control` adds what is
/// left and how fast it goes.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
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
    /// Deliveries put back after a transient failure.
    pub retries: i64,
    /// When the latest of those retries falls due (milliseconds since the epoch).
    pub next_retry_at: Option<i64>,
    /// The error behind the latest retry.
    pub last_error: Option<String>,
    pub created_at: i64,
    pub finished_at: Option<i64>,
    /// Until when some of its digests wait for a domain limit, a domain's
    /// deferral or the warm-up ceiling, and which.
    pub held_until: Option<i64>,
    pub held_by: Option<String>,
}

const SUMMARY_COLUMNS: &str = "id, schedule, period_key, subject, status, recipients, sent, failed, cancelled, \
     retries, next_retry_at, last_error, created_at, finished_at, held_until, held_by";

/// Notes that some of the campaign's digests wait until `until`, and why.
pub async fn held(store: &Store, campaign_id: &str, until: i64, by: &str) -> anyhow::Result<()> {
    sqlx::query("UPDATE campaigns SET held_until = $1, held_by = $2 WHERE id = $3")
        .bind(until)
        .bind(by)
        .bind(campaign_id)
        .execute(store.pool())
        .await
        .context("while noting a campaign held back")?;
    Ok(())
}

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
