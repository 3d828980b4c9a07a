//! `broadsheet backup FILE`: a consistent copy of the database, taken while
//! the service serves and sends, and the list of the files outside it that
//! a restore also needs (README.md, "Backups").
//!
//! SQLite: `VACUUM INTO`, which reads one snapshot (WAL lets writers go on
//! meanwhile) into a new, compact file. PostgreSQL: `pg_dump` in its custom
//! format, run once the server has answered us, so that an unreachable
//! server is told as such rather than as pg_dump's own error.

use std::{
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::{
    config::Config,
    privacy,
    store::{self, Backend, Store},
};

/// What `backup` printed: where the copy is, and what else to keep.
#[derive(Debug, Serialize)]
pub struct Report {
    pub database: &'static str,
    /// Which database was copied: the SQLite file, or PostgreSQL's
    /// `host:port/database` (never its credentials).
    pub from: String,
    pub file: PathBuf,
    pub bytes: u64,
    /// Files the database does not hold, by the configuration key naming them.
    pub outside_the_database: Vec<KeptFile>,
}

#[derive(Debug, Serialize)]
pub struct KeptFile {
    pub key: &'static str,
    pub path: PathBuf,
}

pub async fn run(
    config: &Config,
    config_path: Option<&Path>,
    file: &Path,
) -> anyhow::Result<Report> {
    let url = config.database.url.expose();
    // Connecting would create a missing SQLite file: an empty backup of
    // the wrong database, from a wrong folder or a forgotten --config.
    if let Some(database) = store::sqlite_path(url)
        && !database.exists()
    {
        bail!(
            "there is no database at {} (database.url): run from the service's folder, or pass --config",
            database.display()
        );
    }
    let store = Store::connect(&config.database).await?;
    let partial = Partial::create(file)?;
    let copied = match store.backend() {
        Backend::Sqlite => copy_sqlite(&store, &partial.path).await,
        Backend::Postgres => dump_postgres(url, &partial.path).await,
    };
    store.close().await;
    copied?;
    partial.finish()?;
    Ok(Report {
        database: match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        from: store::sqlite_path(url)
            .map_or_else(|| store::server_of(url), |path| path.display().to_string()),
        file: file.to_owned(),
        bytes: std::fs::metadata(file)?.len(),
        outside_the_database: kept_files(config, config_path),
    })
}

/// The copy while it is written: `FILE.partial`, made new and readable by
/// its owner only (it holds every reader's address), linked to `FILE` once
/// complete and on disk, so that neither a cut-short backup nor one racing
/// another for the same name ever looks like a whole one. Removed if
/// dropped unfinished.
struct Partial {
    path: PathBuf,
    file: PathBuf,
    done: bool,
}

impl Partial {
    fn create(file: &Path) -> anyhow::Result<Self> {
        if file.exists() {
            bail!(
                "{} exists already: a backup never overwrites a file",
                file.display()
            );
        }
        let mut path = file.as_os_str().to_owned();
        path.push(".partial");
        let path = PathBuf::from(path);
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| {
                format!(
                    "cannot create {} (another backup under way, or one cut short: remove it)",
                    path.display()
                )
            })?;
        Ok(Self {
            path,
            file: file.to_owned(),
            done: false,
        })
    }

    fn finish(mut self) -> anyhow::Result<()> {
        // SQLite does not sync what VACUUM INTO writes.
        std::fs::File::open(&self.path)?.sync_all()?;
        std::fs::hard_link(&self.path, &self.file)
            .with_context(|| format!("cannot name the backup {}", self.file.display()))?;
        std::fs::remove_file(&self.path)?;
        if let Some(folder) = self.file.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::File::open(folder)?.sync_all()?;
        }
        self.done = true;
        Ok(())
    }
}

impl Drop for Partial {
    fn drop(&mut self) {
        if !self.done {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// `VACUUM INTO` an empty file, which SQLite accepts (and the file keeps
/// its owner-only mode).
async fn copy_sqlite(store: &Store, partial: &Path) -> anyhow::Result<()> {
    let target = partial
        .to_str()
        .context("the backup's path is not UTF-8")?
        .to_owned();
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(store.pool())
        .await
        .with_context(|| format!("while copying the database into {}", partial.display()))?;
    Ok(())
}

/// pg_dump, told where to connect by libpq's variables rather than a URL
/// on its command line, which every local user could read (`ps`), and
/// which libpq would parse more strictly than sqlx does.
async fn dump_postgres(url: &str, partial: &Path) -> anyhow::Result<()> {
    let parsed = url::Url::parse(url).context("database.url is not a URL")?;
    let mut command = std::process::Command::new("pg_dump");
    command
        .arg("--format=custom")
        .arg("--file")
        .arg(partial)
        .envs(libpq_environment(&parsed));
    // A schema chosen by the URL (`options=-c search_path=…`) is the
    // service's data; the database's other schemas are not. Strict: a name
    // that matches nothing fails rather than dumping nothing.
    if let Some(schema) = search_path_schema(&parsed) {
        command.arg("--strict-names").arg("--schema").arg(schema);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("cannot run pg_dump (Debian: apt install postgresql-client)")?;
    if !output.status.success() {
        let mut error = String::from_utf8_lossy(&output.stderr).trim().to_owned();
        if let Some(password) = parsed.password().filter(|p| !p.is_empty()) {
            error = error.replace(password, "***");
        }
        bail!("pg_dump failed: {error}");
    }
    Ok(())
}

/// The URL as libpq's environment: host, port, user, password, database,
/// and the query parameters libpq knows under sqlx's names.
fn libpq_environment(url: &url::Url) -> Vec<(&'static str, String)> {
    let decoded = |text: &str| {
        percent_encoding::percent_decode_str(text)
            .decode_utf8_lossy()
            .into_owned()
    };
    let mut variables = Vec::new();
    if let Some(host) = url.host_str().filter(|h| !h.is_empty()) {
        variables.push(("PGHOST", host.trim_matches(['[', ']']).to_owned()));
    }
    if let Some(port) = url.port() {
        variables.push(("PGPORT", port.to_string()));
    }
    if !url.username().is_empty() {
        variables.push(("PGUSER", decoded(url.username())));
    }
    if let Some(password) = url.password() {
        variables.push(("PGPASSWORD", decoded(password)));
    }
    let database = url.path().trim_start_matches('/');
    if !database.is_empty() {
        variables.push(("PGDATABASE", decoded(database)));
    }
    for (key, value) in url.query_pairs() {
        let variable = match key.as_ref() {
            "host" => "PGHOST",
            "port" => "PGPORT",
            "sslmode" | "ssl-mode" => "PGSSLMODE",
            "sslrootcert" | "ssl-root-cert" => "PGSSLROOTCERT",
            "options" => "PGOPTIONS",
            "application_name" => "PGAPPNAME",
            _ => continue,
        };
        variables.push((variable, value.into_owned()));
    }
    variables
}

/// The first schema of `search_path` in the URL's `options`, if it names one.
fn search_path_schema(url: &url::Url) -> Option<String> {
    let options = url
        .query_pairs()
        .find_map(|(key, value)| (key == "options").then_some(value))?;
    let path = options.split_whitespace().find_map(|option| {
        option
            .strip_prefix("search_path=")
            .or_else(|| option.strip_prefix("--search_path="))
    })?;
    let first = path.split(',').next()?.trim().trim_matches('"');
    (!first.is_empty() && first != "$user").then(|| first.to_owned())
}

/// The files a restore needs beside the database: those the configuration
/// names (or that stand for an unset key, like the suppression key beside a
/// SQLite file) and that exist. The suppression key above all: without it,
/// the service refuses to start on the restored database (erased and
/// suppressed addresses could no longer be recognised).
fn kept_files(config: &Config, config_path: Option<&Path>) -> Vec<KeptFile> {
    let config_file = config_path
        .map(Path::to_owned)
        .unwrap_or_else(|| "config.toml".into());
    [
        ("--config", Some(config_file)),
        (
            "privacy.suppression_key_file",
            privacy::suppression_key_file(config),
        ),
        (
            "dkim.private_key_path",
            Some(config.dkim.private_key_path.clone()),
        ),
        ("privacy.notice_file", config.privacy.notice_file.clone()),
        ("mail.templates_dir", config.mail.templates_dir.clone()),
    ]
    .into_iter()
    .filter_map(|(key, path)| {
        let path = path?;
        (!path.as_os_str().is_empty() && path.exists()).then_some(KeptFile { key, path })
    })
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schema_is_read_from_the_urls_options() {
        let schema = |text: &str| search_path_schema(&url::Url::parse(text).expect("a URL"));
        let url = "postgres://u@h/db?options=-c%20search_path%3Dbs_one%2Cpublic&application_name=x";
        assert_eq!(schema(url).as_deref(), Some("bs_one"));
        assert_eq!(
            schema("postgres://u@h/db?options=--search_path%3Dnews").as_deref(),
            Some("news")
        );
        assert_eq!(
            schema("postgres://u@h/db?options=-c%20search_path%3D%22%24user%22"),
            None
        );
        assert_eq!(schema("postgres://u@h/db"), None);
        assert_eq!(
            schema("postgres://u@h/db?options=-c%20statement_timeout%3D5"),
            None
        );
    }

    #[test]
    fn the_password_goes_to_libpq_in_its_environment_decoded() {
        let url = url::Url::parse(
            "postgres://news%40desk:p%25ss@db.example:6432/broadsheet?sslmode=require&statement-cache-capacity=5",
        )
        .expect("a URL");
        let variables = libpq_environment(&url);
        let get = |name: &str| {
            variables
                .iter()
                .find(|(n, _)| *n == name)
                .map(|(_, v)| v.as_str())
        };
        assert_eq!(get("PGHOST"), Some("db.example"));
        assert_eq!(get("PGPORT"), Some("6432"));
        assert_eq!(get("PGUSER"), Some("news@desk"));
        assert_eq!(get("PGPASSWORD"), Some("p%ss"));
        assert_eq!(get("PGDATABASE"), Some("broadsheet"));
        assert_eq!(get("PGSSLMODE"), Some("require"));
        assert_eq!(variables.len(), 6, "sqlx's own parameters are not libpq's");
    }
}
