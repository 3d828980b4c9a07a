//! `Digests`: schedules, campaigns and test sends as the console and the
//! API see them, over the store, the clock and the configured schedules.

use std::{sync::Arc, time::Duration};

use super::{
    Started,
    control::{self, CampaignProgress, Control, Controlled},
};
use crate::{
    audit::{self, Actor},
    clock::{self, Clock},
    config::WarmupConfig,
    domain::{EmailAddress, Schedule, mask_email},
    mail::{RelayStatus, Relays},
    store::{self, Store, campaign_articles::CampaignArticle},
};

/// The audit log's name for a test send; the hourly limit counts them there.
const TEST_SEND: &str = "digest.test";

/// A schedule as the console lists it.
#[derive(Debug, serde::Serialize)]
pub struct ScheduleOverview {
    pub name: String,
    pub frequency: &'static str,
    pub next_fire: Option<i64>,
    /// When it last sent a digest to anyone; `None`: never.
    pub last_sent: Option<i64>,
    pub upcoming_articles: usize,
    pub max_article_age: String,
}

/// Digests for handlers.
#[derive(Clone)]
pub struct Digests {
    store: Store,
    clock: Clock,
    /// `[[digest.schedules]]`, parsed with the config.
    schedules: Arc<[Schedule]>,
    /// `editors.test_sends_per_hour`.
    test_sends_per_hour: u32,
    /// The SMTP relays this instance sends through, if any.
    relays: Option<Arc<Relays>>,
    /// `delivery.warmup`, for the day's figures.
    warmup: WarmupConfig,
}

/// How mail leaves now, for the dashboard.
#[derive(Debug, serde::Serialize)]
pub struct SendingOverview {
    /// This instance's relays.
    pub relays: Vec<RelayStatus>,
    /// Receiving domains held back after a deferral, over every instance.
    pub held_domains: Vec<HeldDomain>,
    /// Digests let through today and today's ceiling, during a warm-up.
    pub warmup: Option<(i64, u32)>,
}

#[derive(Debug, serde::Serialize)]
pub struct HeldDomain {
    pub domain: String,
    pub until: i64,
    pub reason: String,
}

impl Digests {
    pub fn new(
        store: Store,
        clock: Clock,
        schedules: Vec<Schedule>,
        test_sends_per_hour: u32,
    ) -> Self {
        Self {
            store,
            clock,
            schedules: schedules.into(),
            test_sends_per_hour,
            relays: None,
            warmup: WarmupConfig::default(),
        }
    }

    /// The configured schedule called `name`.
    pub fn schedule(&self, name: &str) -> Option<&Schedule> {
        self.schedules.iter().find(|s| s.name == name)
    }

    /// Every schedule with its next run, its last send and the articles
    /// its next digest would carry now.
    pub async fn overview(&self) -> anyhow::Result<Vec<ScheduleOverview>> {
        let now = self.clock.now();
        let mut schedules = Vec::new();
        for schedule in self.schedules.iter() {
            let (articles, _) =
                super::upcoming_articles(&self.store, &self.clock, schedule).await?;
            schedules.push(ScheduleOverview {
                frequency: schedule.frequency.as_str(),
                next_fire: schedule.next_fire(now).map(|t| t.timestamp_millis()),
                last_sent: super::last_sent(&self.store, schedule).await?,
                upcoming_articles: distinct_articles(&articles),
                max_article_age: schedule.max_article_age_text(),
                name: schedule.name.clone(),
            });
        }
        Ok(schedules)
    }

    /// An editor's "send now" (see [`super::send_now`]).
    pub async fn send_now(&self, schedule: &Schedule, actor: &Actor) -> anyhow::Result<Started> {
        super::send_now(&self.store, &self.clock, schedule, false, actor).await
    }

    /// An editor's digest of chosen articles (see [`super::send_articles`]).
    pub async fn send_articles(
        &self,
        schedule: &Schedule,
        articles: &[String],
        actor: &Actor,
    ) -> anyhow::Result<Started> {
        super::send_articles(&self.store, &self.clock, schedule, articles, actor).await
    }

    /// Why the schedule has nothing to send now, in words for editors.
    pub async fn nothing_to_send(&self, schedule: &Schedule) -> anyhow::Result<String> {
        super::nothing_to_send(&self.store, schedule).await
    }

    /// These digests, with the relays this instance sends through and the
    /// warm-up in force.
    #[must_use]
    pub fn with_sending(self, relays: Option<Arc<Relays>>, warmup: WarmupConfig) -> Self {
        Self {
            relays,
            warmup,
            ..self
        }
    }

    /// This instance's relays: their breakers, rates and counts since start.
    pub fn relays(&self) -> Vec<RelayStatus> {
        self.relays.as_ref().map(|r| r.status()).unwrap_or_default()
    }

    /// The relays, the domains held back and the warm-up's day.
    pub async fn sending(&self) -> anyhow::Result<SendingOverview> {
        let now = self.clock.now_ms();
        let held_domains = store::send_budgets::held_domains(&self.store, now)
            .await?
            .into_iter()
            .map(|(domain, until, reason)| HeldDomain {
                domain,
                until,
                reason,
            })
            .collect();
        Ok(SendingOverview {
            relays: self.relays(),
            held_domains,
            warmup: crate::delivery::warmup_today(&self.store, &self.warmup, now).await?,
        })
    }

    /// The newest campaigns first.
    pub async fn recent(&self, limit: i64) -> anyhow::Result<Vec<CampaignProgress>> {
        control::recent(&self.store, &self.clock, limit).await
    }

    /// A campaign's state, counts and send rate.
    pub async fn campaign(&self, id: &str) -> anyhow::Result<Option<CampaignProgress>> {
        control::summary(&self.store, &self.clock, id).await
    }

    /// Pauses, resumes or cancels a campaign.
    pub async fn control(
        &self,
        id: &str,
        control: Control,
        actor: &Actor,
    ) -> anyhow::Result<Controlled> {
        control::apply(&self.store, &self.clock, id, control, actor).await
    }

    /// Test digests each editor may send per hour.
    pub fn test_sends_per_hour(&self) -> u32 {
        self.test_sends_per_hour
    }

    /// The test digests `actor` sent in the last hour, as the audit log
    /// counts them.
    pub async fn test_sends_in_the_last_hour(&self, actor: &Actor) -> anyhow::Result<i64> {
        let since = self.clock.now_ms() - clock::ms(Duration::from_secs(3600));
        let mut conn = self.store.pool().acquire().await?;
        store::audit::count_recent(&mut conn, &actor.label, TEST_SEND, since).await
    }

    /// The audit log's line for a test send, which the hourly limit counts.
    pub async fn record_test_send(
        &self,
        actor: &Actor,
        schedule: &str,
        to: &EmailAddress,
        sent_before: i64,
    ) -> anyhow::Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        // Masked: the log outlives erasures, and any editor reads it.
        let detail = serde_json::json!({
            "to": mask_email(to.canonical()),
            "sent_this_hour": sent_before + 1,
        });
        let now = self.clock.now_ms();
        audit::record(&mut conn, now, actor, TEST_SEND, schedule, detail).await
    }
}

/// Campaign articles come one row per category.
fn distinct_articles(rows: &[CampaignArticle]) -> usize {
    let mut slugs: Vec<&str> = rows.iter().map(|a| a.slug.as_str()).collect();
    slugs.sort_unstable();
    slugs.dedup();
    slugs.len()
}
