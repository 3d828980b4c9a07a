//! `campaign_figures`: what each SMTP relay, and each receiving domain with
//! limits, did for a campaign.

use anyhow::Context;
use sqlx::FromRow;

use super::Store;

/// What the figures are of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    Relay,
    Domain,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Relay => "relay",
            Kind::Domain => "domain",
        }
    }
}

/// One relay's or domain's figures for one campaign.
#[derive(Debug, Clone, Default, PartialEq, Eq, FromRow, serde::Serialize)]
pub struct Figures {
    pub name: String,
    pub sent: i64,
    pub deferred: i64,
    pub failed: i64,
    pub held: i64,
}

/// Adds `figures` to the campaign's for `figures.name` of `kind`.
pub async fn add(
    store: &Store,
    campaign_id: &str,
    kind: Kind,
    figures: &Figures,
) -> anyhow::Result<()> {
    sqlx::query(
        "INSERT INTO campaign_figures (campaign_id, kind, name, sent, deferred, failed, held)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (campaign_id, kind, name) DO UPDATE SET
             sent = campaign_figures.sent + excluded.sent,
             deferred = campaign_figures.deferred + excluded.deferred,
             failed = campaign_figures.failed + excluded.failed,
             held = campaign_figures.held + excluded.held",
    )
    .bind(campaign_id)
    .bind(kind.as_str())
    .bind(&figures.name)
    .bind(figures.sent)
    .bind(figures.deferred)
    .bind(figures.failed)
    .bind(figures.held)
    .execute(store.pool())
    .await
    .context("while adding to a campaign's figures")?;
    Ok(())
}

/// The campaign's figures of `kind`, by name.
pub async fn of_campaign(
    store: &Store,
    campaign_id: &str,
    kind: Kind,
) -> anyhow::Result<Vec<Figures>> {
    sqlx::query_as(
        "SELECT name, sent, deferred, failed, held FROM campaign_figures
         WHERE campaign_id = $1 AND kind = $2 ORDER BY name",
    )
    .bind(campaign_id)
    .bind(kind.as_str())
    .fetch_all(store.pool())
    .await
    .context("while reading a campaign's figures")
}
