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
    digest::NextDigest,
    digest::{self, Started},
    domain::Schedule,
};

/// The schedule called `name`, or the first one configured.
fn choose(config: &Config, name: Option<&str>) -> anyhow::Result<Schedule> {
    let schedules = &config.digest.schedules;
    let chosen = match name {
        Some(name) => schedules.iter().find(|s| s.name == name).with_context(|| {
            let names: Vec<&str> = schedules.iter().map(|s| s.name.as_str()).collect();
            format!("no schedule named {name:?}; configured: {names:?}")
        })?,
        None => schedules
            .first()
            .context("no digest schedule is configured")?,
    };
    Ok(chosen.clone())
}

/// `digest preview`: prints the next digest's text part, or mails it to `to`.
pub async fn preview(
    config: Config,
    schedule: Option<&str>,
    to: Option<&str>,
) -> anyhow::Result<()> {
    let chosen = choose(&config, schedule)?;
    let recipient = match to {
        Some(address) => crate::domain::EmailAddress::parse(address)
            .map_err(|e| anyhow::anyhow!("--to: {e}"))?
            .canonical()
            .to_owned(),
        None => "preview@example.invalid".to_owned(),
    };
    let clock = Clock::default();
    let app = App::build(config, clock.clone()).await?;
    let store = app.store();
    match app
        .previews()
        .next_digest(&chosen, &recipient, None)
        .await?
    {
        NextDigest::NothingNew | NextDigest::NothingInTopics | NextDigest::UnknownReader => {
            let reason = digest::nothing_to_send(&store, &chosen).await?;
            eprintln!("{reason} Nothing to preview.");
        }
        NextDigest::Ready(preview) if to.is_some() => {
            app.previews().send(*preview).await?;
            eprintln!(
                "sent a test digest to {}",
                crate::domain::mask_email(&recipient)
            );
        }
        NextDigest::Ready(preview) => print_text(&preview.text),
    }
    store.close().await;
    Ok(())
}

#[allow(clippy::print_stdout)] // stdout is `digest preview`'s interface
fn print_text(text: &str) {
    println!("{text}");
}

pub async fn send(
    config: Config,
    schedule: Option<&str>,
    now: bool,
    dry_run: bool,
    wait: bool,
) -> anyhow::Result<()> {
    let chosen = choose(&config, schedule)?;
    let clock = Clock::default();
    let app = App::build(config, clock.clone()).await?;
    let store = app.store();
    let started = if now || dry_run {
        vec![
            digest::send_now(
                &store,
                &clock,
                &chosen,
                dry_run,
                &crate::audit::Actor::cli(),
            )
            .await?,
        ]
    } else {
        digest::run_due(&store, &clock, std::slice::from_ref(&chosen)).await?
    };
    for outcome in &started {
        report(outcome, dry_run);
        if *outcome == Started::NothingNew {
            eprintln!("{}", digest::nothing_to_send(&store, &chosen).await?);
        }
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

/// Sends as a worker until no campaign is queued or sending, or until
/// Ctrl-C or SIGTERM, which let the messages in flight finish and hand the
/// rest back for other workers.
async fn deliver_until_done(app: &App) -> anyhow::Result<()> {
    let store = app.store();
    let worker = app.worker();
    let stop = CancellationToken::new();
    let stopping = stop.clone();
    tokio::spawn(async move {
        crate::app::shutdown_signal().await;
        stopping.cancel();
    });
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} {msg} ({per_sec}, eta {eta})")
            .context("progress template")?,
    );
    while show_progress(&store, &bar).await? && !stop.is_cancelled() {
        let deliver = async {
            let mut outcome: BatchOutcome = worker.deliver_batch(&stop).await?;
            outcome.add(worker.deliver_digests(&stop).await?);
            anyhow::Ok(outcome)
        };
        let ticker = async {
            loop {
                tokio::time::sleep(Duration::from_millis(250)).await;
                show_progress(&store, &bar).await?;
            }
        };
        let outcome = tokio::select! {
            outcome = deliver => outcome?,
            error = ticker => return error,
        };
        if outcome.claimed == 0 {
            // Retries are waiting for their time, or another worker holds the rest.
            tokio::select! {
                () = stop.cancelled() => {}
                () = tokio::time::sleep(Duration::from_millis(500)) => {}
            }
        }
    }
    if stop.is_cancelled() {
        bar.abandon_with_message("stopped; the rest is sent by the next worker");
    } else {
        bar.finish_with_message("every campaign is done");
    }
    Ok(())
}

/// Shows the unfinished campaigns' progress; false once there are none.
async fn show_progress(store: &crate::store::Store, bar: &ProgressBar) -> anyhow::Result<bool> {
    let running = digest::unfinished(store).await?;
    let total: i64 = running.iter().map(|c| c.recipients).sum();
    let (sent, failed, cancelled) = running.iter().fold((0, 0, 0), |(s, f, c), campaign| {
        (
            s + campaign.sent,
            f + campaign.failed,
            c + campaign.cancelled,
        )
    });
    let done = sent + failed + cancelled;
    bar.set_length(u64::try_from(total).unwrap_or(0));
    bar.set_position(u64::try_from(done).unwrap_or(0));
    bar.set_message(format!(
        "sent {sent}, failed {failed}, pending {}",
        total - done
    ));
    Ok(!running.is_empty())
}
