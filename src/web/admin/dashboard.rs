//! The console's first page: readers by state, 90 days of signups and
//! unsubscribes as an inline SVG chart, 30 days of bounce and complaint
//! rates against the providers' limits, the last campaigns, and how mail
//! leaves now (relays, held domains, the warm-up); for admins, the webhook
//! endpoints that are off.

use axum::{extract::State, response::Response};

use super::Console;
use crate::{
    stats::Chart,
    web::{AppError, AppState},
};

const CHART_DAYS: i64 = 90;

/// Mailbox providers judge a sender on the last 30 days or so (Gmail's
/// Postmaster Tools, Yahoo's sender hub).
const RATE_DAYS: i64 = 30;

pub async fn page(State(state): State<AppState>, console: Console) -> Result<Response, AppError> {
    let stats = state.stats.collect(CHART_DAYS).await?;
    let rates = state.stats.deliverability(RATE_DAYS).await?;
    let campaigns = state.digests.recent(5).await?;
    let sending = state.digests.sending().await?;
    // Admins manage webhooks: they hear of an endpoint turned off.
    let webhooks_off = if console.editor.role == crate::editors::Role::Admin {
        state.webhook_endpoints.turned_off_by_failures().await?
    } else {
        Vec::new()
    };
    let chart = Chart::of(&stats.days);
    let (signups, unsubscribes) = stats
        .days
        .iter()
        .fold((0, 0), |(s, u), d| (s + d.signups, u + d.unsubscribes));
    console.render(
        &state,
        "admin/dashboard.html",
        minijinja::context! {
            readers => stats.readers,
            chart,
            signups,
            unsubscribes,
            days => CHART_DAYS,
            rates,
            rate_days => RATE_DAYS,
            campaigns,
            sending,
            webhooks_off,
        },
    )
}
