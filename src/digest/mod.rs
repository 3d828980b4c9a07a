//! Digests: schedules fire, a campaign collects every published article its
//! schedule has not sent yet (within the schedule's age limit, whatever the
//! article's date and whenever it arrived: feeds and imports deliver items
//! late and dated in the past), and one delivery per consenting reader is
//! queued for the workers (DESIGN "Scheduler", "Durable mail"). The
//! schedules themselves are `domain::Schedule`s, parsed with the config
//! (`config.digest.schedules`).

mod compose;
pub mod control;
mod previews;
mod service;
mod shape;

pub use compose::{Campaign, Composer, DigestSettings};
pub use previews::{NextDigest, Preview, PreviewReader, Previews};
pub use service::{Digests, ScheduleOverview};

use chrono::{DateTime, Utc};

use crate::{
    audit::{self, Actor},
    clock::Clock,
    domain::{EventType, Schedule, WebhookEvent},
    store::{self, Conn, Store, campaigns::NewCampaign},
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
    /// Every article within the age limit is in an earlier digest of the
    /// schedule, or none was published: no campaign ([`nothing_to_send`] says which).
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
        lock_schedule(&mut tx, schedule, now).await?;
        if !store::schedules::claim_firing(&mut tx, &schedule.name, fire.timestamp_millis()).await?
        {
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

/// An editor's "send now": a campaign of its own carrying every article the
/// schedule has not sent yet, which the next scheduled run then leaves out.
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
    lock_schedule(&mut tx, schedule, now).await?;
    let key = format!("{}:now:{}", schedule.name, store::new_id());
    let outcome = start(&mut tx, schedule, &key, now, now.timestamp_millis()).await?;
    // A dry run changes nothing, so no editor's action is recorded (or logged).
    if !dry_run && let Started::Campaign { id, recipients, .. } = &outcome {
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
pub async fn unfinished(store: &Store) -> anyhow::Result<Vec<store::campaigns::CampaignStatus>> {
    store::campaigns::running(store).await
}

/// Locks the schedule's state for the rest of `conn`'s transaction (see
/// [`store::schedules::lock_schedule`]); on first sight its latest firing
/// counts as acted on.
async fn lock_schedule(
    conn: &mut Conn,
    schedule: &Schedule,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let last_fire = schedule.last_fire(now).map_or(0, |t| t.timestamp_millis());
    store::schedules::lock_schedule(conn, &schedule.name, last_fire).await
}

/// Creates the campaign sent at `until`, inside `conn`'s transaction, which
/// holds the schedule's lock.
async fn start(
    conn: &mut Conn,
    schedule: &Schedule,
    key: &str,
    until: DateTime<Utc>,
    now: i64,
) -> anyhow::Result<Started> {
    let id = store::new_id();
    let subject = schedule.subject.clone().unwrap_or_default();
    let campaign = NewCampaign {
        id: &id,
        schedule: &schedule.name,
        period_key: key,
        subject: &subject,
        covers_from: schedule.oldest_article(until).timestamp_millis(),
        covers_until: until.timestamp_millis(),
        articles: None,
    };
    let articles = match store::campaigns::create_campaign(conn, &campaign, now).await? {
        // Another run owns this period.
        None => return Ok(Started::AlreadyStarted),
        Some(n) => n,
    };
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
        store::campaigns::delete_campaign(conn, &id).await?;
        return Ok(Started::NothingNew);
    }
    let recipients =
        store::deliveries::enqueue_recipients(conn, &id, schedule.frequency.as_str(), now).await?;
    let data = serde_json::json!({
        "schedule": schedule.name,
        "period_key": key,
        "articles": articles,
        "recipients": recipients,
    });
    let started = WebhookEvent::campaign(EventType::CampaignStarted, &id, data);
    store::webhooks::queue(conn, &started, now).await?;
    if recipients == 0 {
        store::campaigns::mark_done(conn, &id, now).await?;
    }
    Ok(Started::Campaign {
        id,
        period_key: key.to_owned(),
        articles,
        recipients,
    })
}

/// An editor's digest of chosen published articles, sent now to the
/// schedule's readers, even those it sent before; its next digest leaves
/// them out.
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
    lock_schedule(&mut tx, schedule, clock.now()).await?;
    let chosen = store::campaigns::create_campaign(&mut tx, &campaign, now)
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

/// The articles the schedule's next digest would carry if it were sent now,
/// and that time.
pub async fn upcoming_articles(
    store: &Store,
    clock: &Clock,
    schedule: &Schedule,
) -> anyhow::Result<(Vec<store::campaign_articles::CampaignArticle>, i64)> {
    let now = clock.now();
    let oldest = schedule.oldest_article(now).timestamp_millis();
    let until = now.timestamp_millis();
    let articles =
        store::campaign_articles::unsent_articles(store, &schedule.name, oldest, until).await?;
    Ok((articles, until))
}

/// When the schedule last sent a digest to anyone; `None` if it never has.
pub async fn last_sent(store: &Store, schedule: &Schedule) -> anyhow::Result<Option<i64>> {
    store::campaign_articles::last_sent(store, &schedule.name).await
}

/// Why the schedule has nothing to send now, in words for editors.
pub async fn nothing_to_send(store: &Store, schedule: &Schedule) -> anyhow::Result<String> {
    let age = schedule.max_article_age_text();
    Ok(match last_sent(store, schedule).await? {
        None => format!(
            "No digest of this schedule has been sent yet, and no article was published in the last {age}."
        ),
        Some(_) => format!(
            "Every article published in the last {age} is in an earlier digest of this schedule."
        ),
    })
}

/// A new campaign's deliveries change the table's shape at once; the
/// planner's statistics follow, so claims keep using the right index.
async fn analyze_if_created(store: &Store, outcome: &Started) -> anyhow::Result<()> {
    if matches!(outcome, Started::Campaign { .. }) {
        store.analyze(&["deliveries", "campaign_articles"]).await?;
    }
    Ok(())
}
