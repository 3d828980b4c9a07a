//! The command line: `broadsheet [--config PATH] <command>`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app::{App, Role, StartupSummary, shutdown_signal},
    articles, backup_cli,
    clock::Clock,
    config::Config,
    config_cli::{self, ConfigCommand},
    console_cli,
    digest::control::Control,
    editor_cli,
    editors::Role as EditorRole,
    privacy,
    store::{Store, articles::Upserted},
    subscriber_cli::{self, SubscriberCommand},
    suppression_cli::{self, SuppressionCommand},
    telemetry,
    webhook_cli::{self, WebhookCommand},
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
    /// Check the configuration, or show it with its secrets hidden.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// Manage articles.
    Article {
        #[command(subcommand)]
        command: ArticleCommand,
    },
    /// Act on one reader's data (GDPR requests).
    Subscriber {
        #[command(subcommand)]
        command: SubscriberCommand,
    },
    /// List, add and remove suppressed addresses.
    Suppression {
        #[command(subcommand)]
        command: SuppressionCommand,
    },
    /// List, add, turn on or off and remove outgoing webhooks' endpoints.
    Webhook {
        #[command(subcommand)]
        command: WebhookCommand,
    },
    /// Apply the retention rules now (they also run daily under `serve`).
    Purge,
    /// Copy the database to FILE while the service runs (SQLite: a new
    /// database file; PostgreSQL: pg_dump's custom format), and list the
    /// files outside the database that a restore also needs.
    Backup {
        /// Where to write the copy; it must not exist.
        file: PathBuf,
    },
    /// Start and watch digests.
    Digest {
        #[command(subcommand)]
        command: DigestCommand,
    },
    /// Manage editors, who sign in at /admin.
    Editor {
        #[command(subcommand)]
        command: EditorCommand,
    },
    /// Manage API tokens for /api/v1.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EditorCommand {
    /// Create an editor (or give one a new role and link) and print a
    /// single-use link that sets their password.
    Add {
        /// The editor's email address, which they sign in with.
        email: String,
        #[arg(long, value_enum, default_value_t = EditorRole::Editor)]
        role: EditorRole,
        /// Read the password from standard input instead of printing a link.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List editors.
    List {
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum TokenCommand {
    /// Create a token and print it; it is shown only once.
    Create {
        /// A name for the token, shown in lists and the audit log.
        #[arg(long)]
        name: String,
        #[arg(long, value_enum, default_value_t = EditorRole::Editor)]
        role: EditorRole,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke the live token with this name.
    Revoke { name: String },
}

#[derive(Debug, Subcommand)]
enum DigestCommand {
    /// Start the schedule's digest if it is due (or at once with --now);
    /// with --wait, also send until every campaign is done.
    Send {
        /// The schedule (default: the first one configured).
        #[arg(long)]
        schedule: Option<String>,
        /// Start a campaign now, with every article the schedule has not sent yet.
        #[arg(long)]
        now: bool,
        /// Show what would be sent, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Work as a delivery worker until every campaign is done, with a progress bar.
        #[arg(long)]
        wait: bool,
    },
    /// Show the recent campaigns, or one, with their progress.
    Status {
        /// A campaign's id.
        id: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Stop sending a campaign until resumed.
    Pause { id: String },
    /// Resume a paused campaign.
    Resume { id: String },
    /// Cancel every delivery of a campaign not yet made.
    Cancel { id: String },
    /// Print the text of the schedule's next digest, or send it as one test message.
    Preview {
        /// The schedule (default: the first one configured).
        #[arg(long)]
        schedule: Option<String>,
        /// Send the preview to this address instead of printing it.
        #[arg(long, value_name = "EMAIL")]
        to: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum ArticleCommand {
    /// List articles, drafts first.
    List {
        /// Only titles or slugs containing this.
        #[arg(long, default_value = "")]
        search: String,
        #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
        #[arg(long)]
        json: bool,
    },
    /// Publish a draft (dated now the first time).
    Publish {
        /// The article's slug or id.
        article: String,
    },
    /// Take an article back to draft.
    Unpublish {
        /// The article's slug or id.
        article: String,
    },
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
            Command::Serve { role } => serve(config, role).await,
            Command::Migrate => migrate(&config).await,
            Command::Config { command } => {
                config_cli::run(&config, self.config.as_deref(), &command)
            }
            Command::Article { command } => article_command(&config, command).await,
            Command::Subscriber { command } => subscriber_cli::run(&config, command).await,
            Command::Suppression { command } => suppression_cli::run(&config, command).await,
            Command::Webhook { command } => webhook_cli::run(&config, command).await,
            Command::Purge => purge(&config).await,
            Command::Backup { file } => {
                let report = backup_cli::run(&config, self.config.as_deref(), &file).await?;
                print_json(&report)
            }
            Command::Digest { command } => Box::pin(digest_command(config, command)).await,
            Command::Editor { command } => editor_command(&config, command).await,
            Command::Token { command } => token_command(&config, command).await,
        }
    }
}

/// `serve`: builds the app, listens unless it only runs workers, and runs
/// until Ctrl-C or SIGTERM.
async fn serve(config: Config, role: Role) -> anyhow::Result<()> {
    let bind = config.server.bind;
    let started = StartupSummary::of(&config);
    let app = App::build(config, Clock::default()).await?;
    started.log(role);
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

async fn migrate(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    store.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

async fn purge(config: &Config) -> anyhow::Result<()> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    let idle = config.accounts.session_idle;
    let report = privacy::purge(&store, &Clock::default(), &config.privacy, idle).await?;
    store.close().await;
    print_json(&report)?;
    Ok(())
}

async fn article_command(config: &Config, command: ArticleCommand) -> anyhow::Result<()> {
    match command {
        ArticleCommand::Import { files } => import_articles(config, &files).await,
        ArticleCommand::List {
            search,
            limit,
            json,
        } => console_cli::list_articles(config, &search, limit, json).await,
        ArticleCommand::Publish { article } => {
            console_cli::set_published(config, &article, true).await
        }
        ArticleCommand::Unpublish { article } => {
            console_cli::set_published(config, &article, false).await
        }
    }
}

async fn digest_command(config: Config, command: DigestCommand) -> anyhow::Result<()> {
    match command {
        DigestCommand::Status { id, json } => {
            console_cli::digest_status(&config, id.as_deref(), json).await
        }
        DigestCommand::Pause { id } => {
            console_cli::control_digest(&config, &id, Control::Pause).await
        }
        DigestCommand::Resume { id } => {
            console_cli::control_digest(&config, &id, Control::Resume).await
        }
        DigestCommand::Cancel { id } => {
            console_cli::control_digest(&config, &id, Control::Cancel).await
        }
        DigestCommand::Send {
            schedule,
            now,
            dry_run,
            wait,
        } => {
            // Boxed: it holds a whole app (its worker, its relays) while it waits.
            Box::pin(crate::digest_cli::send(
                config,
                schedule.as_deref(),
                now,
                dry_run,
                wait,
            ))
            .await
        }
        DigestCommand::Preview { schedule, to } => {
            crate::digest_cli::preview(config, schedule.as_deref(), to.as_deref()).await
        }
    }
}

async fn editor_command(config: &Config, command: EditorCommand) -> anyhow::Result<()> {
    match command {
        EditorCommand::Add {
            email,
            role,
            password_stdin,
        } => editor_cli::add(config, &email, role, password_stdin).await,
        EditorCommand::List { json } => editor_cli::list(config, json).await,
    }
}

async fn token_command(config: &Config, command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create { name, role } => editor_cli::create_token(config, &name, role).await,
        TokenCommand::List { json } => editor_cli::list_tokens(config, json).await,
        TokenCommand::Revoke { name } => editor_cli::revoke_token(config, &name).await,
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

/// Commands whose output is data print it to stdout, pretty JSON.
#[allow(clippy::print_stdout)] // stdout is these commands' interface
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
