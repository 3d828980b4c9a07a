//! Timed jobs, run by tokio-cron-scheduler in the processes that run workers:
//! the daily retention purge (G-16/G-17). Every job is safe to run on
//! several instances at once.

use std::sync::Arc;

use anyhow::Context;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::{clock::Clock, config::Config, privacy, store::Store};

/// Starts the scheduler with its jobs; stop it with `shutdown`.
pub async fn start(
    store: Store,
    clock: Clock,
    config: Arc<Config>,
) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    let cron = config.privacy.purge_cron.clone();
    let purge = Job::new_async(cron.as_str(), move |_, _| {
        let (store, clock, config) = (store.clone(), clock.clone(), config.clone());
        Box::pin(async move {
            let idle = config.accounts.session_idle_h;
            if let Err(error) = privacy::purge(&store, &clock, &config.privacy, idle).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "retention purge failed; it runs again next time"
                );
            }
        })
    })
    .with_context(|| {
        format!("privacy.purge_cron {cron:?} is not a 6-field cron expression (seconds first)")
    })?;
    scheduler
        .add(purge)
        .await
        .context("cannot schedule the purge")?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    Ok(scheduler)
}
