//! Timed jobs, run by tokio-cron-scheduler in the processes that run workers:
//! a tick every 10 seconds that fires due digest schedules, a minute tick that
//! polls due feeds,
//! and the daily retention
//! purge (G-16/G-17). Every job is safe to run on several instances at once.
//!
//! Digest schedules are not cron jobs of their own: tokio-cron-scheduler fixes
//! a time zone's UTC offset when a job is created, so 07:00 in London would
//! drift by an hour across daylight saving. The tick asks [`digest::run_due`],
//! which does the time-zone math per firing and catches up after downtime.

use std::sync::Arc;

use anyhow::Context;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::{clock::Clock, config::Config, digest, feeds, privacy, store::Store};

/// Starts the scheduler with its jobs; stop it with `shutdown`.
pub async fn start(
    store: Store,
    clock: Clock,
    config: Arc<Config>,
) -> anyhow::Result<JobScheduler> {
    let scheduler = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    scheduler
        .add(purge_job(store.clone(), clock.clone(), config.clone())?)
        .await?;
    scheduler
        .add(digest_tick(store.clone(), clock.clone(), &config)?)
        .await?;
    scheduler
        .add(feed_tick(store, clock, config.clone())?)
        .await?;
    scheduler
        .start()
        .await
        .context("cannot start the scheduler")?;
    Ok(scheduler)
}

fn purge_job(store: Store, clock: Clock, config: Arc<Config>) -> anyhow::Result<Job> {
    let cron = config.privacy.purge_cron.clone();
    Job::new_async(cron.as_str(), move |_, _| {
        let (store, clock, config) = (store.clone(), clock.clone(), config.clone());
        Box::pin(async move {
            let idle = config.accounts.session_idle;
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
    })
}

fn digest_tick(store: Store, clock: Clock, config: &Config) -> anyhow::Result<Job> {
    let schedules = config.digest.schedules.clone();
    // Every 10 seconds: cheap (one small transaction per schedule), and a
    // firing starts within 10 s of its time.
    Job::new_async("*/10 * * * * *", move |_, _| {
        let (store, clock, schedules) = (store.clone(), clock.clone(), schedules.clone());
        Box::pin(async move {
            if let Err(error) = digest::run_due(&store, &clock, &schedules).await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "digest schedules could not run; trying again in 10 s"
                );
            }
        })
    })
    .context("cannot create the digest tick")
}

/// Every minute at second 35 (between digest ticks): polls the feeds whose
/// cron time has come (once across instances, see [`feeds::poll_due`]).
/// Editors' feeds are read each time, so one added in the console is polled
/// without a restart; the configured ones were parsed with the config.
fn feed_tick(store: Store, clock: Clock, config: Arc<Config>) -> anyhow::Result<Job> {
    Job::new_async("35 * * * * *", move |_, _| {
        let (store, clock, config) = (store.clone(), clock.clone(), config.clone());
        Box::pin(async move {
            let polled = async {
                let feeds = feeds::all(&store, &config.feeds).await?;
                feeds::poll_due(&store, &clock, &feeds).await
            };
            if let Err(error) = polled.await {
                tracing::warn!(
                    error = format!("{error:#}"),
                    "feeds could not be polled; next minute again"
                );
            }
        })
    })
    .context("cannot create the feed tick")
}
