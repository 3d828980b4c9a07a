//! Digests: schedules fire, a campaign collects the articles published since
//! the schedule's watermark, and one delivery per consenting reader is
//! queued for the workers (DESIGN "Scheduler", "Durable mail").

pub mod control;
mod schedule;

pub use schedule::Schedule;
pub(crate) use schedule::whole_second;

use chrono::{DateTime, Utc};

use crate::{
    audit::{self, Actor},
    clock::Clock,
    store::{self, Conn, Store, digests::NewCampaign},
};

/// What starting a campaign did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Started {
    /// A campaign was created with this many recipients.
    Campaign {
        id: String,
        period_key: String,
        articles: u64,
        recipients: u64,
    },
    /// No article was published in the period: no campaign (the watermark moves on).
    NothingNew,
    /// Another instance (or an earlier run) has this period already.
    AlreadyStarted,
}

/// Fires every schedule whose latest cron time has not been acted on yet;
/// run it every minute on any number of instances. After downtime, the
/// missed firing is caught up once.
pub async fn run_due(
    store: &Store,
    clock: &Clock,
    schedules: &[Schedule],
) -> anyhow::Result<Vec<Started>> {
    let now = clock.now();
    let mut started = Vec::new();
    for schedule in schedules {
        let Some(fire) = schedule.last_fire(now) else {
            continue;
        };
        let mut tx = store.begin().await?;
        // First sight: remember the latest firing without acting on it, so a
        // new installation does not send at once.
        store::digests::schedule_state(&mut tx, &schedule.name, fire.timestamp_millis()).await?;
        if !store::digests::claim_firing(&mut tx, &schedule.name, fire.timestamp_millis()).await? {
            tx.commit().await?;
            continue;
        }
        let key = schedule.period_key(fire);
        let outcome = start(&mut tx, schedule, &key, fire, clock.now_ms()).await?;
        tx.commit().await?;
        analyze_if_created(store, &outcome).await?;
        tracing::info!(schedule = %schedule.name, period = %key, ?outcome, "schedule fired");
        started.push(outcome);
    }
    Ok(started)
}

/// An editor's "send now": a campaign of its own covering everything since
/// the watermark, which then moves, so the next scheduled run covers only
/// newer articles.
/// With `dry_run`, everything is computed and then rolled back.
pub async fn send_now(
    store: &Store,
    clock: &Clock,
    schedule: &Schedule,
    dry_run: bool,
    actor: &Actor,
) -> anyhow::Result<Started> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let last_fire = schedule.last_fire(now).map_or(0, |t| t.timestamp_millis());
    store::digests::schedule_state(&mut tx, &schedule.name, last_fire).await?;
    let key = format!("{}:now:{}", schedule.name, store::new_id());
    let outcome = start(&mut tx, schedule, &key, now, now.timestamp_millis()).await?;
    if let Started::Campaign { id, recipients, .. } = &outcome {
        let detail = serde_json::json!({ "schedule": schedule.name, "recipients": recipients });
        audit::record(
            &mut tx,
            now.timestamp_millis(),
            actor,
            "digest.send_now",
            id,
            detail,
        )
        .await?;
    }
    if dry_run {
        tx.rollback().await?;
    } else {
        tx.commit().await?;
        analyze_if_created(store, &outcome).await?;
    }
    Ok(outcome)
}

/// True while any campaign still has deliveries to make.
pub async fn unfinished(store: &Store) -> anyhow::Result<Vec<store::digests::CampaignStatus>> {
    store::digests::running(store).await
}

/// Creates the campaign for the period ending at `until`, inside `conn`'s transaction.
async fn start(
    conn: &mut Conn,
    schedule: &Schedule,
    key: &str,
    until: DateTime<Utc>,
    now: i64,
) -> anyhow::Result<Started> {
    let (covered_until, _) = store::digests::schedule_state(conn, &schedule.name, 0).await?;
    let until_ms = until.timestamp_millis();
    // The first digest covers one period.
    let from = if covered_until > 0 {
        covered_until
    } else {
        (until - schedule.period()).timestamp_millis()
    };
    let id = store::new_id();
    let subject = schedule.subject.clone().unwrap_or_default();
    let campaign = NewCampaign {
        id: &id,
        schedule: &schedule.name,
        period_key: key,
        subject: &subject,
        covers_from: from,
        covers_until: until_ms,
        articles: None,
    };
    let articles = match store::digests::create_campaign(conn, &campaign, now).await? {
        // Another run owns this period: the watermark stays, so no article is skipped.
        None => return Ok(Started::AlreadyStarted),
        Some(n) => n,
    };
    store::digests::advance_watermark(conn, &schedule.name, until_ms).await?;
    enqueue(conn, schedule, id, key, articles, now).await
}

/// Queues a new campaign's deliveries; an empty campaign is dropped.
async fn enqueue(
    conn: &mut Conn,
    schedule: &Schedule,
    id: String,
    key: &str,
    articles: u64,
    now: i64,
) -> anyhow::Result<Started> {
    if articles == 0 {
        store::digests::delete_campaign(conn, &id).await?;
        return Ok(Started::NothingNew);
    }
    let recipients =
        store::digests::enqueue_recipients(conn, &id, schedule.frequency.as_str(), now).await?;
    if recipients == 0 {
        store::digests::mark_done(conn, &id, now).await?;
    }
    Ok(Started::Campaign {
        id,
        period_key: key.to_owned(),
        articles,
        recipients,
    })
}

/// An editor's digest of chosen published articles, sent now to the
/// schedule's readers; the schedule's watermark stays where it is.
pub async fn send_articles(
    store: &Store,
    clock: &Clock,
    schedule: &Schedule,
    articles: &[String],
    actor: &Actor,
) -> anyhow::Result<Started> {
    let now = clock.now_ms();
    let id = store::new_id();
    let key = format!("{}:articles:{id}", schedule.name);
    let subject = schedule.subject.clone().unwrap_or_default();
    let campaign = NewCampaign {
        id: &id,
        schedule: &schedule.name,
        period_key: &key,
        subject: &subject,
        covers_from: now,
        covers_until: now,
        articles: Some(articles),
    };
    let mut tx = store.begin().await?;
    let chosen = store::digests::create_campaign(&mut tx, &campaign, now)
        .await?
        .unwrap_or(0);
    let outcome = enqueue(&mut tx, schedule, id, &key, chosen, now).await?;
    if let Started::Campaign { id, recipients, .. } = &outcome {
        let detail = serde_json::json!({ "schedule": schedule.name, "articles": articles, "recipients": recipients });
        audit::record(&mut tx, now, actor, "digest.send_articles", id, detail).await?;
    }
    tx.commit().await?;
    analyze_if_created(store, &outcome).await?;
    Ok(outcome)
}

/// The configured schedules, parsed (config loading has validated them).
pub fn schedules(config: &crate::config::Config) -> anyhow::Result<Vec<Schedule>> {
    config
        .digest
        .schedules
        .iter()
        .map(|s| {
            Schedule::parse(s).map_err(|e| anyhow::anyhow!("digest.schedules {:?}: {e}", s.name))
        })
        .collect()
}

/// The articles the schedule's next digest would cover if it ran now.
pub async fn upcoming_articles(
    store: &Store,
    clock: &Clock,
    schedule: &Schedule,
) -> anyhow::Result<(Vec<store::digests::CampaignArticle>, i64)> {
    let now = clock.now();
    let from = match store::digests::watermark(store, &schedule.name).await? {
        Some(covered) if covered > 0 => covered,
        _ => (now - schedule.period()).timestamp_millis(),
    };
    let until = now.timestamp_millis();
    Ok((
        store::digests::articles_between(store, from, until).await?,
        until,
    ))
}

/// A new campaign's deliveries change the table's shape at once; the
/// planner's statistics follow, so claims keep using the right index.
async fn analyze_if_created(store: &Store, outcome: &Started) -> anyhow::Result<()> {
    if matches!(outcome, Started::Campaign { .. }) {
        store.analyze(&["deliveries", "campaign_articles"]).await?;
    }
    Ok(())
}
