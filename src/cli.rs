//! The command line: `broadsheet [--config PATH] <command>`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app::{App, Role, shutdown_signal},
    clock::Clock,
    config::Config,
    store::Store,
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
