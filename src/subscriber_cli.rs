//! `broadsheet subscriber list|export|erase|import`: one reader's data for a
//! data-rights request, and readers imported from CSV. Whoever runs them is
//! audited as `cli`.

use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use crate::{
    audit::Actor,
    clock::Clock,
    config::Config,
    console_cli,
    domain::{EmailAddress, mask_email},
    privacy, readers,
    store::Store,
};

#[derive(Debug, Subcommand)]
pub enum SubscriberCommand {
    /// List readers in signup order.
    List {
        /// Only addresses containing this.
        #[arg(long, default_value = "")]
        search: String,
        /// `pending` or `confirmed`.
        #[arg(long, value_parser = ["pending", "confirmed"])]
        status: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Print everything held about a reader as JSON (schema: docs/export.md).
    Export {
        /// The reader's email address.
        email: String,
    },
    /// Erase a reader: only a keyed hash of the address and pseudonymised
    /// consent records remain.
    Erase {
        /// The reader's email address.
        email: String,
    },
    /// Import readers who consented elsewhere from a CSV file with the header
    /// `email,name,topics,consented_at,source` (topics separated by `;`).
    Import {
        /// The CSV file.
        file: PathBuf,
    },
}

/// Runs one `subscriber` command on a migrated database.
pub async fn run(config: &Config, command: SubscriberCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let clock = Clock::default();
    match command {
        SubscriberCommand::List {
            search,
            status,
            json,
        } => console_cli::list_subscribers(&store, &search, status.as_deref(), json).await?,
        SubscriberCommand::Import { file } => import_subscribers(config, &store, &file).await?,
        SubscriberCommand::Export { email } => {
            let id = find_reader(&store, &email).await?;
            let data = privacy::export(&store, &clock, &id)
                .await?
                .context("the reader vanished")?;
            print_json(&data)?;
        }
        SubscriberCommand::Erase { email } => {
            let id = find_reader(&store, &email).await?;
            let key = privacy::suppression_key(&store, config).await?;
            privacy::erase(&store, &clock, key.as_bytes(), &id, Some(&Actor::cli())).await?;
            eprintln!("erased {}", mask_email(&email));
        }
    }
    store.close().await;
    Ok(())
}

/// The id of the reader with this address, or an error that masks it.
async fn find_reader(store: &Store, email: &str) -> anyhow::Result<String> {
    let address =
        EmailAddress::parse(email).map_err(|e| anyhow::anyhow!("{}: {e}", mask_email(email)))?;
    readers::id_by_email(store, &address)
        .await?
        .with_context(|| {
            format!(
                "no reader with the address {}",
                mask_email(address.canonical())
            )
        })
}

/// Commands whose output is data print it to stdout, pretty JSON.
#[allow(clippy::print_stdout)] // stdout is these commands' interface
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}

async fn import_subscribers(
    config: &Config,
    store: &Store,
    file: &std::path::Path,
) -> anyhow::Result<()> {
    let clock = Clock::default();
    let input =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let wording = crate::consent::register_wording(
        store,
        &clock,
        crate::consent::NEWSLETTER,
        &config.signup.newsletter_consent_text,
    )
    .await?;
    let key = privacy::suppression_key(store, config).await?;
    let bar = indicatif::ProgressBar::new_spinner().with_style(
        indicatif::ProgressStyle::with_template("{spinner} {pos} rows ({per_sec})")?,
    );
    let report = crate::import::import(
        store,
        std::io::BufReader::new(input),
        &name,
        &wording.id,
        key.as_bytes(),
        |rows| bar.set_position(rows),
    )
    .await?;
    bar.finish();
    for (line, reason) in &report.invalid {
        eprintln!("line {line}: {reason}");
    }
    print_json(&serde_json::json!({
        "imported": report.imported,
        "existing": report.existing,
        "suppressed": report.suppressed,
        "invalid": report.invalid.len(),
    }))
}
