//! `campaign_relays`: what each SMTP relay did for a campaign.

use anyhow::Context;
use sqlx::FromRow;

use super::Store;

/// One relay's figures for one campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct RelayCounts {
    pub relay: String,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
}

/// Adds `counts` to the campaign's figures for `counts.relay`.
pub async fn add(store: &Store, campaign_id: &str, counts: &RelayCounts) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO campaign_relays (campaign_id, relay, sent, deferred, failed)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (campaign_id, relay) DO UPDATE SET
             sent = campaign_relays.sent + excluded.sent,
             deferred = campaign_relays.deferred + excluded.deferred,
             failed = campaign_relays.failed + excluded.failed",
    )
    .bind(campaign_id)
    .bind(&counts.relay)
    .bind(counts.sent)
    .bind(counts.deferred)
    .bind(counts.failed)
    .execute(store.pool())
    .await
    .context("while counting a campaign's relays")?;
    Ok(())
}

/// The campaign's figures by relay, by name.
pub async fn of_campaign(store: &Store, campaign_id: &str) -> anyhow::Result<Vec<RelayCounts>> {
    sqlx::query_as(
        "SELECT relay, sent, deferred, failed FROM campaign_relays
         WHERE campaign_id = $1 ORDER BY relay",
    )
    .bind(campaign_id)
    .fetch_all(store.pool())
    .await
    .context("while reading a campaign's relays")
}
