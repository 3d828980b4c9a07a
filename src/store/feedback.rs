//! Bounce and complaint reports (`feedback_events`), the lookups that tie a
//! report to its reader and campaign, and the figures the dashboard shows.

use anyhow::Context;

use super::Conn;

/// A report tied to its reader, as it is stored.
pub struct NewEvent<'a> {
    pub event_key: &'a str,
    pub source: &'a str,
    pub kind: &'a str,
    pub subscriber_id: &'a str,
    pub campaign_id: Option<&'a str>,
    pub status: &'a str,
    pub detail: &'a str,
    pub occurred_at: i64,
}

/// Stores a report; `None` if one with the same key was stored before.
pub async fn insert(
    conn: &mut Conn,
    event: &NewEvent<'_>,
    now: i64,
) -> anyhow::Result<Option<String>> {
    let id = super::new_id();
    let inserted = sqlx::query(
        "INSERT INTO feedback_events (id, event_key, source, kind, subscriber_id, campaign_id,
                                      status, detail, occurred_at, received_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
         ON CONFLICT (event_key) DO NOTHING",
    )
    .bind(&id)
    .bind(event.event_key)
    .bind(event.source)
    .bind(event.kind)
    .bind(event.subscriber_id)
    .bind(event.campaign_id)
    .bind(event.status)
    .bind(event.detail)
    .bind(event.occurred_at)
    .bind(now)
    .execute(&mut *conn)
    .await
    .context("while storing a bounce or complaint")?;
    Ok((inserted.rows_affected() == 1).then_some(id))
}

/// The campaign of the reader's digest whose id ends in `suffix` (six hex
/// digits, from a return path's tag), the latest if two do.
pub async fn campaign_by_suffix(
    conn: &mut Conn,
    subscriber_id: &str,
    suffix: &str,
) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT campaign_id FROM deliveries
         WHERE subscriber_id = $1 AND campaign_id LIKE $2
         ORDER BY sent_at DESC LIMIT 1",
    )
    .bind(subscriber_id)
    .bind(format!("%{suffix}"))
    .fetch_optional(&mut *conn)
    .await
    .context("while finding a bounced digest")
}

/// The reader an account email went to.
pub async fn outbox_subscriber(conn: &mut Conn, outbox_id: &str) -> anyhow::Result<Option<String>> {
    let found: Option<Option<String>> =
        sqlx::query_scalar("SELECT subscriber_id FROM outbox WHERE id = $1")
            .bind(outbox_id)
            .fetch_optional(&mut *conn)
            .await
            .context("while finding a bounced email")?;
    Ok(found.flatten())
}

/// The reader's latest digest sent at or before `at`: what a report that
/// names only the address is most likely about.
pub async fn latest_campaign(
    conn: &mut Conn,
    subscriber_id: &str,
    at: i64,
) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "SELECT campaign_id FROM deliveries
         WHERE subscriber_id = $1 AND status = 'sent' AND sent_at <= $2
         ORDER BY sent_at DESC LIMIT 1",
    )
    .bind(subscriber_id)
    .bind(at)
    .fetch_optional(&mut *conn)
    .await
    .context("while finding the latest digest")
}

/// Whether any email (an account email or a digest) was sent to the
/// reader between `since` and `until`.
pub async fn emailed_since(
    conn: &mut Conn,
    subscriber_id: &str,
    since: i64,
    until: i64,
) -> anyhow::Result<bool> {
    let found: Option<i64> = sqlx::query_scalar(
        "SELECT 1 FROM outbox WHERE subscriber_id = $1 AND sent_at BETWEEN $2 AND $3
         UNION ALL
         SELECT 1 FROM deliveries WHERE subscriber_id = $1 AND sent_at BETWEEN $2 AND $3
         LIMIT 1",
    )
    .bind(subscriber_id)
    .bind(since)
    .bind(until)
    .fetch_optional(&mut *conn)
    .await
    .context("while looking for mail sent to a reader")?;
    Ok(found.is_some())
}

/// The reader's digests sent since `since`, oldest first, each with
/// whether it drew a soft bounce: the soft-bounce rule counts runs of them.
pub async fn sent_with_soft_bounces(
    conn: &mut Conn,
    subscriber_id: &str,
    since: i64,
) -> anyhow::Result<Vec<(String, bool)>> {
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT d.campaign_id,
                CASE WHEN EXISTS (SELECT 1 FROM feedback_events f
                                  WHERE f.subscriber_id = d.subscriber_id
                                    AND f.campaign_id = d.campaign_id
                                    AND f.kind = 'soft_bounce') THEN 1 ELSE 0 END
         FROM deliveries d
         WHERE d.subscriber_id = $1 AND d.status = 'sent' AND d.sent_at >= $2
         ORDER BY d.sent_at, d.campaign_id",
    )
    .bind(subscriber_id)
    .bind(since)
    .fetch_all(&mut *conn)
    .await
    .context("while counting soft bounces")?;
    Ok(rows.into_iter().map(|(id, soft)| (id, soft != 0)).collect())
}

/// A stored report, as the console and the export show it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EventRow {
    pub id: String,
    pub source: String,
    pub kind: String,
    pub campaign_id: Option<String>,
    pub status: String,
    pub detail: String,
    pub occurred_at: i64,
    pub received_at: i64,
}

/// The reader's reports, oldest first.
pub async fn of_subscriber(conn: &mut Conn, subscriber_id: &str) -> anyhow::Result<Vec<EventRow>> {
    sqlx::query_as(
        "SELECT id, source, kind, campaign_id, status, detail, occurred_at, received_at
         FROM feedback_events WHERE subscriber_id = $1 ORDER BY occurred_at, id",
    )
    .bind(subscriber_id)
    .fetch_all(&mut *conn)
    .await
    .context("while reading a reader's reports")
}

/// Reports of each kind: hard bounces, soft bounces, complaints.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub hard: i64,
    pub soft: i64,
    pub complaints: i64,
}

const COUNTS: &str = "SELECT COALESCE(SUM(CASE WHEN kind = 'hard_bounce' THEN 1 ELSE 0 END), 0),
                             COALESCE(SUM(CASE WHEN kind = 'soft_bounce' THEN 1 ELSE 0 END), 0),
                             COALESCE(SUM(CASE WHEN kind = 'complaint' THEN 1 ELSE 0 END), 0)
                      FROM feedback_events";

/// A campaign's reports.
pub async fn campaign_counts(conn: &mut Conn, campaign_id: &str) -> anyhow::Result<Counts> {
    let (hard, soft, complaints) = sqlx::query_as(&format!("{COUNTS} WHERE campaign_id = $1"))
        .bind(campaign_id)
        .fetch_one(&mut *conn)
        .await
        .context("while counting a campaign's reports")?;
    Ok(Counts {
        hard,
        soft,
        complaints,
    })
}

/// Reports of things that happened since `since`, and the messages sent
/// since then (digests and account emails) to rate them against.
pub async fn counts_since(conn: &mut Conn, since: i64) -> anyhow::Result<(Counts, i64)> {
    let (hard, soft, complaints) = sqlx::query_as(&format!("{COUNTS} WHERE occurred_at >= $1"))
        .bind(since)
        .fetch_one(&mut *conn)
        .await
        .context("while counting recent reports")?;
    let sent: i64 = sqlx::query_scalar(
        "SELECT (SELECT COUNT(*) FROM deliveries WHERE status = 'sent' AND sent_at >= $1)
              + (SELECT COUNT(*) FROM outbox WHERE status = 'sent' AND sent_at >= $1)",
    )
    .bind(since)
    .fetch_one(&mut *conn)
    .await
    .context("while counting recent sends")?;
    Ok((
        Counts {
            hard,
            soft,
            complaints,
        },
        sent,
    ))
}

/// Takes the bounce mailbox's read for poll interval `slot`; false if
/// another instance took it. Slots older than a day are let go.
pub async fn claim_mailbox_poll(store: &super::Store, slot: i64, now: i64) -> anyhow::Result<bool> {
    let mut tx = store.begin().await?;
    sqlx::query("DELETE FROM mailbox_polls WHERE polled_at < $1")
        .bind(now - 86_400_000)
        .execute(&mut *tx)
        .await
        .context("while forgetting old mailbox reads")?;
    let claimed = sqlx::query(
        "INSERT INTO mailbox_polls (slot, polled_at) VALUES ($1, $2) ON CONFLICT (slot) DO NOTHING",
    )
    .bind(slot)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("while taking the mailbox's read")?;
    tx.commit().await?;
    Ok(claimed.rows_affected() == 1)
}

/// Whether a webhook request with this replay key was accepted before.
pub async fn replay_seen(store: &super::Store, key: &str) -> anyhow::Result<bool> {
    let seen: Option<i64> = sqlx::query_scalar("SELECT 1 FROM webhook_replays WHERE token = $1")
        .bind(key)
        .fetch_optional(store.pool())
        .await
        .context("while looking for a replayed webhook")?;
    Ok(seen.is_some())
}

/// Remembers an accepted request's replay key; keys older than
/// `forget_before` are let go.
pub async fn remember_replay(
    store: &super::Store,
    key: &str,
    now: i64,
    forget_before: i64,
) -> anyhow::Result<()> {
    let mut tx = store.begin().await?;
    sqlx::query("DELETE FROM webhook_replays WHERE received_at < $1")
        .bind(forget_before)
        .execute(&mut *tx)
        .await
        .context("while forgetting old webhook requests")?;
    sqlx::query(
        "INSERT INTO webhook_replays (token, received_at) VALUES ($1, $2)
         ON CONFLICT (token) DO NOTHING",
    )
    .bind(key)
    .bind(now)
    .execute(&mut *tx)
    .await
    .context("while remembering a webhook request")?;
    tx.commit().await?;
    Ok(())
}

/// A signing certificate fetched before, as PEM.
pub async fn certificate(store: &super::Store, url: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT pem FROM webhook_certificates WHERE url = $1")
        .bind(url)
        .fetch_optional(store.pool())
        .await
        .context("while reading a signing certificate")
}

pub async fn save_certificate(
    store: &super::Store,
    url: &str,
    pem: &str,
    now: i64,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO webhook_certificates (url, pem, fetched_at) VALUES ($1, $2, $3)
         ON CONFLICT (url) DO NOTHING",
    )
    .bind(url)
    .bind(pem)
    .bind(now)
    .execute(store.pool())
    .await
    .context("while keeping a signing certificate")?;
    Ok(())
}
