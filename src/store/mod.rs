//! All SQL lives here.
//!
//! One query layer for both databases, through sqlx's `Any` driver and a
//! portable schema (ids as UUID v7 text, times as Unix-millisecond BIGINTs).
//! We chose this over a storage trait with one implementation per dialect
//! because nearly every query is the same text on SQLite and PostgreSQL, and
//! writing each twice doubles the code that must stay in step. The few places
//! where the dialects differ (queue claiming) branch on [`Backend`] here. The
//! one place that needs more than `Any` offers is the subscriber import on
//! PostgreSQL, which sends its rows with COPY over a native connection
//! (`import_copy`).

pub mod articles;
pub mod audit;
pub mod campaign_articles;
pub mod campaign_figures;
pub mod campaigns;
pub mod consent;
mod copy_text;
pub mod deliveries;
pub mod editors;
mod fault;
pub mod feedback;
pub mod feeds;
pub mod import;
pub mod import_copy;
pub mod link_requests;
pub mod outbox;
pub mod preferences;
pub mod queue;
pub mod schedules;
pub mod send_budgets;
pub mod sessions;
pub mod settings;
pub mod stats;
pub mod subscribers;
pub mod suppressions;
pub mod tokens;
pub mod webhook_endpoints;
pub mod webhooks;

use std::{
    str::FromStr,
    sync::{Arc, Once},
    time::Duration,
};

use anyhow::Context;
use sqlx::{
    AnyPool, Connection, Executor,
    any::{AnyConnectOptions, AnyPoolOptions},
    migrate::Migrator,
};

use crate::config::{DatabaseConfig, Secret};

pub use fault::{Fault, SharedFailure, fault};
pub use sqlx::AnyConnection as Conn;

/// The database behind a [`Store`], chosen by the URL at run time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// One folder for both databases: the migrations are written in the SQL the
/// two share (BIGINT times, TEXT ids, CHECK lists instead of enums), so a
/// schema change is made once and cannot drift between them.
static MIGRATIONS: Migrator = sqlx::migrate!("./migrations");

/// How long a connection may take to be had, new or from the pool.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection pool and the dialect it speaks.
#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// What the pool connects to, for the one connection that is not the
    /// pool's: the import's COPY on PostgreSQL (`import_copy`). Shared:
    /// every service holds a store and every request clones them, and a
    /// copied string there cost /healthz a third of its rate (BENCHMARKS.md).
    url: Arc<Secret>,
    /// See [`Store::writer`].
    writer: Arc<tokio::sync::OnceCell<Store>>,
}

impl Store {
    /// Connects; for SQLite, creates the file and its folder if missing and
    /// turns on WAL, a busy timeout and foreign keys on every connection.
    pub async fn connect(config: &DatabaseConfig) -> anyhow::Result<Self> {
        Self::open(config, config.max_connections).await
    }

    /// The store of the process's writers: the delivery worker and the
    /// signup writer (`signup::writer`). On SQLite, one connection they
    /// share: their writes queue in the process instead of sleeping in
    /// SQLite's busy handler against each other, and its page cache is not
    /// dropped whenever another connection writes (BENCHMARKS.md). Opened
    /// once, on first use, for every clone of this store. PostgreSQL
    /// shares the pool.
    pub async fn writer(&self, config: &DatabaseConfig) -> anyhow::Result<Self> {
        let writer = self.writer.get_or_try_init(|| async {
            match self.backend {
                Backend::Sqlite => Self::open(config, 1).await,
                Backend::Postgres => Ok(self.clone()),
            }
        });
        writer.await.cloned()
    }

    async fn open(config: &DatabaseConfig, max_connections: u32) -> anyhow::Result<Self> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);

        let url = config.url.expose();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else {
            Backend::Postgres
        };
        let url = match backend {
            Backend::Sqlite => prepare_sqlite_url(url)?,
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyConnectOptions::from_str(&url).context("while parsing database.url")?;
        if backend == Backend::Postgres {
            probe_postgres(&options, &url).await?;
        }
        let session: &'static str = match backend {
            // WAL lets readers run beside the one writer; busy_timeout makes
            // writers wait for each other instead of failing at once;
            // secure_delete overwrites erased rows (G-13).
            Backend::Sqlite => {
                "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                 PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL; \
                 PRAGMA secure_delete = ON;"
            }
            // No JIT: the few bulk statements (a campaign's recipients) have
            // estimates over jit_above_cost and spent 300–440 ms compiling
            // each time, about a tenth of the statement (pg_stat_statements;
            // BENCHMARKS.md).
            Backend::Postgres => "SET jit = off",
        };
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(CONNECT_TIMEOUT)
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    conn.execute(session).await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await
            .context("while connecting to the database")?;
        Ok(Self {
            pool,
            backend,
            url: Arc::new(Secret::new(url)),
            writer: Arc::default(),
        })
    }

    /// Applies the migrations not yet applied.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        MIGRATIONS
            .run(&self.pool)
            .await
            .context("while applying migrations")?;
        if self.backend == Backend::Postgres {
            // Room on each page of deliveries for the claim's new row
            // versions: it changes no indexed column, so with room its
            // update is heap-only (HOT) and writes no index entries
            // (BENCHMARKS.md, issue 23). Not a migration: SQLite has no
            // such setting. It applies to pages written from now on.
            sqlx::query("ALTER TABLE deliveries SET (fillfactor = 50)")
                .execute(&self.pool)
                .await
                .context("while setting the fill factor of deliveries")?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A subquery yielding the strings of the JSON array bound as `$n`:
    /// a list of any length is one parameter, so the statement's text, and
    /// the statement prepared from it, are the same for every list.
    pub fn json_list(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("SELECT value FROM json_each(${n})"),
            Backend::Postgres => format!("SELECT json_array_elements_text(${n}::json)"),
        }
    }

    /// `column` is one of the strings of the JSON array bound as `$n`. On
    /// PostgreSQL the list is made an array first, so the rows are found
    /// through `column`'s index whatever the table's statistics say: as a
    /// subquery, a table not analysed yet (a burst of new rows) was
    /// planned as a scan of its pending rows for every list (BENCHMARKS.md,
    /// issue 23).
    pub fn in_json_list(&self, column: &str, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("{column} IN ({})", self.json_list(n)),
            Backend::Postgres => format!("{column} = ANY(ARRAY({}))", self.json_list(n)),
        }
    }

    /// A table of the rows of the JSON array of arrays bound as `$n`, each
    /// row as `value`, whose fields `value ->> 0`, `value ->> 1`, … are text
    /// (or NULL) on both databases. Many rows in one parameter: SQLite's
    /// lookup of numbered parameters grows with their count, so a
    /// statement of thousands of `$n` costs more than linearly (BENCHMARKS.md).
    pub fn json_rows(&self, n: usize) -> String {
        match self.backend {
            Backend::Sqlite => format!("json_each(${n})"),
            Backend::Postgres => format!("json_array_elements(${n}::json)"),
        }
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// On SQLite every transaction takes the write lock at once (`BEGIN
    /// IMMEDIATE`): a deferred one that reads first and then writes fails
    /// with "database is busy" instead of waiting when another writer holds it.
    ///
    /// Started in a task of its own, so that it always finishes: sqlx counts
    /// a transaction only once BEGIN has been answered, so a caller dropped
    /// while it is in flight (a client gone, a request timed out) left the
    /// connection in a transaction sqlx did not know of, back in the pool,
    /// where later requests wrote into it and its locks held for good (seen
    /// on PostgreSQL: outbox updates waiting forever). Finished, the
    /// transaction is a `Transaction`, rolled back when dropped.
    pub async fn begin(&self) -> anyhow::Result<sqlx::Transaction<'static, sqlx::Any>> {
        let (pool, backend) = (self.pool.clone(), self.backend);
        let tx = tokio::spawn(async move {
            match backend {
                Backend::Sqlite => pool.begin_with("BEGIN IMMEDIATE").await,
                Backend::Postgres => pool.begin().await,
            }
        })
        .await
        .context("the task starting a transaction failed")?;
        tx.context("while starting a transaction")
    }

    /// Begins a transaction on a connection the caller holds, as
    /// [`Store::begin`] does on one of the pool's (`BEGIN IMMEDIATE` on
    /// SQLite). For a caller that is never dropped midway and wants the
    /// connection back afterwards: the signup writer.
    pub async fn begin_on<'c>(
        &self,
        conn: &'c mut Conn,
    ) -> anyhow::Result<sqlx::Transaction<'c, sqlx::Any>> {
        let tx = match self.backend {
            Backend::Sqlite => conn.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => conn.begin().await,
        };
        tx.context("while starting a transaction")
    }

    /// Refreshes the query planner's statistics after a bulk change (an
    /// import, a campaign's recipients): without them PostgreSQL plans the
    /// per-reader consent lookups as scans of the whole ledger.
    pub async fn analyze(&self, tables: &[&str]) -> anyhow::Result<()> {
        for table in tables {
            // Table names are constants of ours, never input.
            sqlx::query(&format!("ANALYZE {table}"))
                .execute(&self.pool)
                .await
                .with_context(|| format!("while analysing {table}"))?;
        }
        Ok(())
    }

    /// True when the database answers a trivial query (`/readyz`).
    pub async fn is_reachable(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// One connection first, for its error: the pool retries until its
/// timeout and then says only "pool timed out", hiding a refused
/// connection or a wrong password. Within the pool's own wait: the driver
/// has no connect timeout, and a firewalled host would hold start-up for
/// minutes.
async fn probe_postgres(options: &AnyConnectOptions, url: &str) -> anyhow::Result<()> {
    let server = server_of(url);
    let probe = tokio::time::timeout(CONNECT_TIMEOUT, sqlx::AnyConnection::connect_with(options))
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "cannot connect to PostgreSQL at {server}: no answer in {} s",
                CONNECT_TIMEOUT.as_secs()
            )
        })?
        .with_context(|| format!("cannot connect to PostgreSQL at {server}"))?;
    probe.close().await.ok();
    Ok(())
}

/// The file of a `sqlite:` database URL; `None` for PostgreSQL or an
/// in-memory database.
pub fn sqlite_path(url: &str) -> Option<std::path::PathBuf> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))?;
    let path = rest.split_once('?').map_or(rest, |(path, _)| path);
    (!path.is_empty() && path != ":memory:").then(|| path.into())
}

/// `host:port/database` of a PostgreSQL URL, without its credentials.
/// The host may be a query parameter (`?host=/run/postgresql`, a socket's
/// folder).
pub fn server_of(url: &str) -> String {
    let Ok(parsed) = url::Url::parse(url) else {
        return "database.url".into();
    };
    let query = |name: &str| {
        parsed
            .query_pairs()
            .find_map(|(key, value)| (key == name).then(|| value.into_owned()))
    };
    let host = parsed
        .host_str()
        .filter(|host| !host.is_empty())
        .map(str::to_owned)
        .or_else(|| query("host"))
        .unwrap_or_else(|| "localhost".into());
    let port = parsed
        .port()
        .map(|port| port.to_string())
        .or_else(|| query("port"))
        .unwrap_or_else(|| "5432".into());
    format!("{host}:{port}{}", parsed.path())
}

/// Adds `mode=rwc` (create if missing) and creates the parent folder.
fn prepare_sqlite_url(url: &str) -> anyhow::Result<String> {
    let rest = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
        .unwrap_or(url);
    let (path, query) = rest.split_once('?').unwrap_or((rest, ""));
    if let Some(file) = sqlite_path(url)
        && let Some(parent) = file.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("while creating the folder {}", parent.display()))?;
    }
    Ok(if query.contains("mode=") {
        url.to_owned()
    } else if query.is_empty() {
        format!("sqlite://{path}?mode=rwc")
    } else {
        format!("sqlite://{path}?{query}&mode=rwc")
    })
}

/// A new time-ordered identifier.
pub fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_gain_create_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("nested/db.sqlite");
        let url = prepare_sqlite_url(&format!("sqlite://{}", path.display())).expect("url");
        assert!(url.ends_with("?mode=rwc"), "{url}");
        assert!(path.parent().expect("parent").is_dir());
    }
}
