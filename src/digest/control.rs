//! Editors' controls over campaigns: list, watch, pause, resume, cancel.

use serde_json::json;

use crate::{
    audit::{self, Actor},
    clock::Clock,
    store::{self, Store, campaigns::CampaignSummary},
};

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
    Done(CampaignSummary),
    NotFound,
    /// The campaign is in a state the control does not apply to.
    Conflict(CampaignSummary),
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
) -> anyhow::Result<Option<CampaignSummary>> {
    let found = store::campaigns::summary(store, id).await?;
    Ok(found.map(|c| c.with_rate(clock.now_ms())))
}

/// The newest campaigns first.
pub async fn recent(
    store: &Store,
    clock: &Clock,
    limit: i64,
) -> anyhow::Result<Vec<CampaignSummary>> {
    let now = clock.now_ms();
    let found = store::campaigns::recent(store, limit).await?;
    Ok(found.into_iter().map(|c| c.with_rate(now)).collect())
}
