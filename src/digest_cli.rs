//! `broadsheet digest send`: start a digest and, with `--wait`, deliver it
//! with a progress bar.

use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use tokio_util::sync::CancellationToken;

use crate::{
    app::App,
    clock::Clock,
    config::Config,
    delivery::BatchOutcome,
    digest::{self, Started},
};

pub async fn send(
    config: Config,
    schedule: Option<&str>,
    now: bool,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<()> {
    let schedules = digest::schedules(&config)?;
    let chosen = match schedule {
        Some(name) => schedules.iter().find(|s| s.name == name).with_context(|| {
            let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
            format!("no schedule named {name:?}; configured: {names:?}")
        })?,
        None => schedules
            .first()
            .context("no digest schedule is configured")?,
    }
    .clone();
    let clock = Clock::default();
    let app = App::build(config, clock.clone()).await?;
    let store = app.store();
    let started = if now || dry_run {
        vec![digest::send_now(&store, &clock, &chosen, dry_run).await?]
    } else {
        digest::run_due(&store, &clock, std::slice::from_ref(&chosen)).await?
    };
    for outcome in &started {
        report(outcome, dry_run);
    }
    if started.is_empty() && !wait {
        eprintln!(
            "schedule {:?} is not due; use --now to send anyway",
            chosen.name
        );
    }
    if wait && !dry_run {
        deliver_until_done(&app).await?;
    }
    store.close().await;
    Ok(())
}

fn report(outcome: &Started, dry_run: bool) {
    let prefix = if dry_run { "would start" } else { "started" };
    match outcome {
        Started::Campaign {
            period_key,
            articles,
            recipients,
            ..
        } => {
            eprintln!(
                "{prefix} campaign {period_key}: {articles} articles, {recipients} recipients"
            );
        }
        Started::NothingNew => eprintln!("no new articles: no campaign"),
        Started::AlreadyStarted => eprintln!("this period's campaign exists already"),
    }
}

/// Sends as a worker until no campaign is queued or sending.
async fn deliver_until_done(app: &App) -> anyhow::Result<()> {
    let store = app.store();
    let worker = app.worker();
    let never = CancellationToken::new();
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({per_sec}, eta {eta})")
            .context("progress template")?,
    );
    loop {
        let running = digest::unfinished(&store).await?;
        let total: i64 = running.iter().map(|c| c.recipients).sum();
        let done: i64 = running
            .iter()
            .map(|c| c.sent + c.failed + c.cancelled)
            .sum();
        let (sent, failed): (i64, i64) = running
            .iter()
            .fold((0, 0), |(s, f), c| (s + c.sent, f + c.failed));
        bar.set_length(u64::try_from(total).unwrap_or(0));
        bar.set_position(u64::try_from(done).unwrap_or(0));
        bar.set_message(format!(
            "sent {sent}, failed {failed}, pending {}",
            total - done
        ));
        if running.is_empty() {
            break;
        }
        let mut outcome: BatchOutcome = worker.deliver_batch(&never).await?;
        outcome.add(worker.deliver_digest_batch(&never).await?);
        if outcome.claimed == 0 {
            // Retries are waiting for their time, or another worker holds the rest.
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    bar.finish_with_message("every campaign is done");
    Ok(())
}
