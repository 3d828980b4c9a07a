//! The command line: `broadsheet [--config PATH] <command>`.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};

use crate::{
    app::{App, Role, shutdown_signal},
    articles,
    audit::Actor,
    clock::Clock,
    config::Config,
    console_cli,
    digest::control::Control,
    domain::{EmailAddress, mask_email},
    editor_cli,
    editors::Role as EditorRole,
    privacy,
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
    /// Act on one reader's data (GDPR requests).
    Subscriber {
        #[command(subcommand)]
        command: SubscriberCommand,
    },
    /// Apply the retention rules now (they also run daily under `serve`).
    Purge,
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
enum SubscriberCommand {
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
            Command::Article { command } => match command {
                ArticleCommand::Import { files } => import_articles(&config, &files).await,
                ArticleCommand::List {
                    search,
                    limit,
                    json,
                } => console_cli::list_articles(&config, &search, limit, json).await,
                ArticleCommand::Publish { article } => {
                    console_cli::set_published(&config, &article, true).await
                }
                ArticleCommand::Unpublish { article } => {
                    console_cli::set_published(&config, &article, false).await
                }
            },
            Command::Digest {
                command: DigestCommand::Status { id, json },
            } => console_cli::digest_status(&config, id.as_deref(), json).await,
            Command::Digest {
                command: DigestCommand::Pause { id },
            } => console_cli::control_digest(&config, &id, Control::Pause).await,
            Command::Digest {
                command: DigestCommand::Resume { id },
            } => console_cli::control_digest(&config, &id, Control::Resume).await,
            Command::Digest {
                command: DigestCommand::Cancel { id },
            } => console_cli::control_digest(&config, &id, Control::Cancel).await,
            Command::Subscriber { command } => subscriber_command(&config, command).await,
            Command::Digest {
                command:
                    DigestCommand::Send {
                        schedule,
                        now,
                        dry_run,
                        wait,
                    },
            } => crate::digest_cli::send(config, schedule.as_deref(), now, dry_run, wait).await,
            Command::Digest {
                command: DigestCommand::Preview { schedule, to },
            } => crate::digest_cli::preview(config, schedule.as_deref(), to.as_deref()).await,
            Command::Editor { command } => match command {
                EditorCommand::Add {
                    email,
                    role,
                    password_stdin,
                } => editor_cli::add(&config, &email, role, password_stdin).await,
                EditorCommand::List { json } => editor_cli::list(&config, json).await,
            },
            Command::Token { command } => match command {
                TokenCommand::Create { name, role } => {
                    editor_cli::create_token(&config, &name, role).await
                }
                TokenCommand::List { json } => editor_cli::list_tokens(&config, json).await,
                TokenCommand::Revoke { name } => editor_cli::revoke_token(&config, &name).await,
            },
            Command::Purge => {
                let store = Store::connect(&config.database).await?;
                store.migrate().await?;
                let idle = config.accounts.session_idle_h;
                let report =
                    privacy::purge(&store, &Clock::default(), &config.privacy, idle).await?;
                store.close().await;
                print_json(&report)?;
                Ok(())
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

async fn subscriber_command(config: &Config, command: SubscriberCommand) -> anyhow::Result<()> {
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
    let mut conn = store.pool().acquire().await?;
    crate::store::subscribers::find_id_by_email(&mut conn, address.canonical())
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
