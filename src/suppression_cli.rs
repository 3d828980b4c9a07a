//! `broadsheet suppression list|add|remove`: the suppression list from the
//! command line, audited as `cli`.

use clap::Subcommand;

use crate::{
    audit::Actor,
    clock::Clock,
    config::Config,
    feedback::Suppressions,
    privacy::{self, rfc3339},
    store::Store,
};

#[derive(Debug, Subcommand)]
pub enum SuppressionCommand {
    /// The newest entries, or the one for an address.
    List {
        /// Look up this address (the list holds only keyed hashes).
        #[arg(long)]
        address: Option<String>,
    },
    /// Never mail this address again.
    Add {
        address: String,
        /// Why, for the audit log and the console.
        #[arg(long, default_value = "")]
        note: String,
    },
    /// Mail this address again (an erased reader's entry stays).
    Remove { address: String },
}

pub async fn run(config: &Config, command: SuppressionCommand) -> anyhow::Result<()> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let key = privacy::suppression_key(&store, config).await?;
    let list = Suppressions::new(store.clone(), Clock::default(), key.as_bytes());
    let actor = Actor::cli();
    let done = match command {
        SuppressionCommand::List { address } => {
            let rows = list.list(address.as_deref(), None).await?;
            rows.map(|rows| {
                for row in rows {
                    let when = rfc3339(row.created_at).unwrap_or_default();
                    let who = row.email.as_deref().unwrap_or("(erased or not a reader)");
                    let note = row.note.as_deref().unwrap_or("");
                    eprintln!(
                        "{when}  {:<12}  {}  {who}  {note}",
                        row.reason,
                        &row.email_hash[..12]
                    );
                }
            })
        }
        SuppressionCommand::Add { address, note } => {
            list.add(&address, &note, &actor).await?.map(|added| {
                eprintln!(
                    "{}",
                    if added {
                        "suppressed"
                    } else {
                        "already suppressed"
                    }
                )
            })
        }
        SuppressionCommand::Remove { address } => list
            .remove(&address, &actor)
            .await?
            .map(|()| eprintln!("removed")),
    };
    store.close().await;
    done.map_err(anyhow::Error::from)
}
