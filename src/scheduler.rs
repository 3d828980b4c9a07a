//! Timed jobs, run in the processes that run workers: the digest timer,
//! which fires due digest schedules at their second; a minute tick (by
//! tokio-cron-scheduler) that polls due feeds; and the daily retention purge
//! (G-16/G-17). Every job is safe to run on several instances at once.
//!
//! Digest schedules are not cron jobs of their own: tokio-cron-scheduler fixes
//! a time zone's UTC offset when a job is created, so 07:00 in London would
//! drift by an hour across daylight saving. The timer asks [`digest::run_due`],
//! which does the time-zone math per firing and catches up after downtime.

use std::{sync::Arc, time::Duration};

use anyhow::Context;
use tokio::task::JoinHandle;
use tokio_cron_scheduler::{Job, JobScheduler};

use crate::{
    clock::Clock, config::Config, digest, domain::Schedule, feedback::BounceMailbox, feeds,
    privacy, store::Store,
};

/// The timed jobs of one process; stop them with [`Scheduler::shutdown`].
pub struct Scheduler {
    cron: JobScheduler,
    digest_timer: JoinHandle<()>,
    mailbox_reader: Option<JoinHandle<()>>,
}

/// Starts the scheduler with its jobs.
pub async fn start(
    store: Store,
    clock: Clock,
    config: Arc<Config>,
    bounce_mailbox: Option<BounceMailbox>,
) -> anyhow::Result<Scheduler> {
    let cron = JobScheduler::new()
        .await
        .context("cannot start the scheduler")?;
    cron.add(purge_job(store.clone(), clock.clone(), config.clone())?)
        .await?;
    cron.add(feed_tick(store.clone(), clock.clone(), config.clone())?)
        .await?;
    cron.start().await.context("cannot start the scheduler")?;
    let schedules = config.digest.schedules.clone();
    let digest_timer = tokio::spawn(digest_timer(store, clock, schedules));
    let mailbox_reader = bounce_mailbox
        .map(|mailbox| tokio::spawn(read_mailbox(mailbox, config.bounces.imap.poll_interval)));
    Ok(Scheduler {
        cron,
        digest_timer,
        mailbox_reader,
    })
}

impl Scheduler {
    pub async fn shutdown(&mut self) -> anyhow::Result<()> {
        self.digest_timer.abort();
        if let Some(reader) = &self.mailbox_reader {
            reader.abort();
        }
        self.cron
            .shutdown()
            .await
            .context("while stopping the scheduler")
    }
}

fn purge_job(store: Store, clock: Clock, config: Arc<Config>) -> anyhow::Result<Job> {
    let cron = config.privacy.purge_cron.clone();
    Job::new_async(cron.as_str(), move |_, _| {
        let (store, clock, config) = (store.clone(), clock.clone(), config.clone());
        Box::pin(async move {
            let idle = config.accounts.session_idle;
            if let Err(error) = privacy::purge(&store, &clock, &config.privacy, idle).await {
                tracing::warn!(
                    error = crate::telemetry::error_text(&error),
                    "retention purge failed; it runs again next time"
                );
            }
        })
    })
    .with_context(|| {
        format!("privacy.purge_cron {cron:?} is not a 6-field cron expression (seconds first)")
    })
}

/// The longest the digest timer sleeps: a clock that jumps (a suspended
/// machine, a test's clock moved forward) is noticed within this.
const DIGEST_TIMER_MAX_SLEEP: Duration = Duration::from_secs(10);

/// Runs due schedules at start (catching up after downtime), then sleeps
/// until the next firing of any schedule and runs them again: a digest
/// starts at its second, and an idle instance asks the database once per
/// firing rather than on a fixed tick.
async fn digest_timer(store: Store, clock: Clock, schedules: Vec<Schedule>) {
    loop {
        if let Err(error) = digest::run_due(&store, &clock, &schedules).await {
            tracing::warn!(
                error = crate::telemetry::error_text(&error),
                "digest schedules could not run; trying again shortly"
            );
        }
        tokio::time::sleep(until_next_firing(&schedules, &clock)).await;
    }
}

fn until_next_firing(schedules: &[Schedule], clock: &Clock) -> Duration {
    let now = clock.now();
    // Just past the firing's second, so that `last_fire` then includes it.
    let margin = chrono::Duration::milliseconds(20);
    schedules
        .iter()
        .filter_map(|schedule| schedule.next_fire(now))
        .min()
        .and_then(|next| (next - now + margin).to_std().ok())
        .map_or(DIGEST_TIMER_MAX_SLEEP, |wait| {
            wait.min(DIGEST_TIMER_MAX_SLEEP)
        })
}

/// Reads the bounce mailbox every `bounces.imap.poll_interval_s`, once
/// across instances per interval; a failed read is logged and tried again.
async fn read_mailbox(mailbox: BounceMailbox, every: Duration) {
    loop {
        match mailbox.poll_due().await {
            Ok(Some(read)) if read.messages > 0 => tracing::info!(?read, "bounce mailbox read"),
            Ok(_) => {}
            Err(error) => tracing::warn!(
                error = crate::telemetry::error_text(&error),
                "the bounce mailbox could not be read; trying again next interval"
            ),
        }
        tokio::time::sleep(every).await;
    }
}

/// Every minute at second 35: polls the feeds whose
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
                    error = crate::telemetry::error_text(&error),
                    "feeds could not be polled; next minute again"
                );
            }
        })
    })
    .context("cannot create the feed tick")
}
