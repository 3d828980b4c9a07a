//! Editors' controls over campaigns: list, watch, pause, resume, cancel.

use serde_json::json;

use crate::{
    audit::{self, Actor},
    clock::Clock,
    store::{
        self, Store,
        campaign_figures::{Figures, Kind},
        campaigns::CampaignSummary,
    },
};

/// A campaign as editors watch it: its state and counts, what is left and
/// how fast it goes. Serialised flat, the row's fields and then these.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CampaignProgress {
    #[serde(flatten)]
    pub campaign: CampaignSummary,
    /// Recipients not yet sent, failed or cancelled.
    pub pending: i64,
    /// Messages sent per second since the campaign started.
    pub rate_per_s: f64,
    /// What each SMTP relay, and each receiving domain with limits, did
    /// for it (read for one campaign, not for lists).
    pub relays: Vec<Figures>,
    pub domains: Vec<Figures>,
}

impl CampaignProgress {
    /// The campaign as of `now`.
    pub fn of(mut campaign: CampaignSummary, now: i64) -> Self {
        let (pending, rate_per_s) = pending_and_rate(&campaign, now);
        // A hold that has passed says nothing about the campaign now.
        if campaign.held_until.is_none_or(|until| until <= now) {
            (campaign.held_until, campaign.held_by) = (None, None);
        }
        Self {
            campaign,
            pending,
            rate_per_s,
            relays: Vec::new(),
            domains: Vec::new(),
        }
    }
}

/// Recipients not yet sent, failed or cancelled, and messages sent per
/// second (to a tenth) from the campaign's start to its end or `now`.
pub fn pending_and_rate(campaign: &CampaignSummary, now: i64) -> (i64, f64) {
    let c = campaign;
    let pending = (c.recipients - c.sent - c.failed - c.cancelled).max(0);
    let elapsed_ms = c.finished_at.unwrap_or(now) - c.created_at;
    let mut rate = 0.0;
    #[allow(clippy::cast_precision_loss)] // counts and milliseconds far below 2^52
    if elapsed_ms > 0 {
        rate = (c.sent as f64 * 1000.0 / elapsed_ms as f64 * 10.0).round() / 10.0;
    }
    (pending, rate)
}

/// What an editor may ask of a campaign.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Pause,
    Resume,
    Cancel,
}

impl Control {
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pause" => Some(Self::Pause),
            "resume" => Some(Self::Resume),
            "cancel" => Some(Self::Cancel),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pause => "pause",
            Self::Resume => "resume",
            Self::Cancel => "cancel",
        }
    }

    /// The controls that apply to a campaign in `status`: none once it is
    /// done or cancelled.
    pub fn applying_to(status: &str) -> Vec<&'static str> {
        [Self::Pause, Self::Resume, Self::Cancel]
            .into_iter()
            .filter(|control| control.transition().0.contains(&status))
            .map(Self::as_str)
            .collect()
    }

    /// The states it applies to, and the state it leads to.
    fn transition(self) -> (&'static [&'static str], &'static str) {
        match self {
            Self::Pause => (&["queued", "sending"], "paused"),
            Self::Resume => (&["paused"], "sending"),
            Self::Cancel => (&["queued", "sending", "paused"], "cancelled"),
        }
    }
}

/// What a control did.
#[derive(Debug, Clone)]
pub enum Controlled {
    Done(CampaignProgress),
    NotFound,
    /// The campaign is in a state the control does not apply to.
    Conflict(CampaignProgress),
}

/// Pauses, resumes or cancels a campaign. Cancelling cancels its pending
/// deliveries; messages already in flight still go out.
pub async fn apply(
    store: &Store,
    clock: &Clock,
    id: &str,
    control: Control,
    actor: &Actor,
) -> anyhow::Result<Controlled> {
    let now = clock.now_ms();
    let (from, to) = control.transition();
    let mut tx = store.begin().await?;
    if !store::campaigns::set_status(&mut tx, id, from, to, now).await? {
        drop(tx);
        return Ok(match summary(store, clock, id).await? {
            Some(campaign) => Controlled::Conflict(campaign),
            None => Controlled::NotFound,
        });
    }
    if control == Control::Cancel {
        store::deliveries::cancel_pending_of_campaign(&mut tx, id, now).await?;
        store::webhooks::tell_campaign_finished(&mut tx, id, now).await?;
    }
    audit::record(
        &mut tx,
        now,
        actor,
        &format!("digest.{}", control.as_str()),
        id,
        json!({}),
    )
    .await?;
    tx.commit().await?;
    store::campaigns::refresh_campaign(store, id, now).await?;
    let campaign = summary(store, clock, id).await?;
    Ok(campaign.map_or(Controlled::NotFound, Controlled::Done))
}

/// A campaign's state, counts and send rate.
pub async fn summary(
    store: &Store,
    clock: &Clock,
    id: &str,
) -> anyhow::Result<Option<CampaignProgress>> {
    let Some(found) = store::campaigns::summary(store, id).await? else {
        return Ok(None);
    };
    let mut progress = CampaignProgress::of(found, clock.now_ms());
    progress.relays = store::campaign_figures::of_campaign(store, id, Kind::Relay).await?;
    progress.domains = store::campaign_figures::of_campaign(store, id, Kind::Domain).await?;
    Ok(Some(progress))
}

/// The newest campaigns first.
pub async fn recent(
    store: &Store,
    clock: &Clock,
    limit: i64,
) -> anyhow::Result<Vec<CampaignProgress>> {
    let now = clock.now_ms();
    let found = store::campaigns::recent(store, limit).await?;
    Ok(found
        .into_iter()
        .map(|c| CampaignProgress::of(c, now))
        .collect())
}
