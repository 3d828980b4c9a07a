//! The command line: `broadsheet [--config PATH] <command>`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app::{App, Role, shutdown_signal},
    articles,
    clock::Clock,
    config::Config,
    store::Store,
    store::articles::Upserted,
    telemetry,
};

#[derive(Debug, Parser)]
#[command(
    name = "broadsheet",
    version,
    about = "A self-hosted newsletter and subscription service"
)]
pub struct Cli {
    /// Configuration file (default: ./config.toml if present, else built-in defaults).
    #[arg(long, global = true, env = "BROADSHEET_CONFIG", value_name = "PATH")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Apply migrations, then serve the web site and send queued mail.
    Serve {
        /// Run the web server, the delivery workers, or both.
        #[arg(long, value_enum, default_value_t = Role::All)]
        role: Role,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Manage articles.
    Article {
        #[command(subcommand)]
        command: ArticleCommand,
    },
}

#[derive(Debug, Subcommand)]
enum ArticleCommand {
    /// Import Markdown files with TOML front matter between `+++` lines.
    /// Importing a file again updates the article with the same slug.
    Import {
        /// The files to import.
        #[arg(required = true, value_name = "FILE.md")]
        files: Vec<PathBuf>,
    },
}

impl Cli {
    pub async fn run(self) -> anyhow::Result<()> {
        let config = Config::load(self.config.as_deref())?;
        telemetry::init(&config.log);
        match self.command {
            Command::Serve { role } => {
                let bind = config.server.bind;
                let app = App::build(config, Clock::default()).await?;
                let listener = if role == Role::Worker {
                    None
                } else {
                    Some(
                        tokio::net::TcpListener::bind(bind)
                            .await
                            .with_context(|| format!("cannot listen on server.bind = {bind}"))?,
                    )
                };
                app.run(listener, role, shutdown_signal()).await
            }
            Command::Article {
                command: ArticleCommand::Import { files },
            } => import_articles(&config, &files).await,
            Command::Migrate => {
                let store = Store::connect(&config.database).await?;
                store.migrate().await?;
                store.close().await;
                tracing::info!("migrations applied");
                Ok(())
            }
        }
    }
}

/// Imports every file or none: all are parsed before any is stored.
async fn import_articles(config: &Config, files: &[PathBuf]) -> anyhow::Result<()> {
    let mut parsed = Vec::with_capacity(files.len());
    for file in files {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        let article = articles::parse_markdown_file(&text)
            .with_context(|| format!("{} is not a valid article", file.display()))?;
        parsed.push(article);
    }
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let clock = Clock::default();
    let (mut created, mut updated) = (0, 0);
    for article in &parsed {
        match articles::save(&store, &clock, article).await? {
            Upserted::Created => created += 1,
            Upserted::Updated => updated += 1,
        }
    }
    store.close().await;
    tracing::info!(created, updated, "articles imported");
    Ok(())
}
