//! `broadsheet backup FILE`: a consistent copy of the database, taken while
//! the service serves and sends, and the list of the files outside it that
//! a restore also needs (README.md, "Backups").
//!
//! SQLite: `VACUUM INTO`, which reads one snapshot (WAL lets writers go on
//! meanwhile) into a new, compact file. PostgreSQL: `pg_dump` in its custom
//! format, run once the server has answered us, so that an unreachable
//! server is told as such rather than as pg_dump's own error.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;

use crate::{
    config::Config,
    privacy,
    store::{Backend, Store},
};

/// What `backup` printed: where the copy is, and what else to keep.
#[derive(Debug, Serialize)]
pub struct Report {
    pub database: &'static str,
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
    if file.exists() {
        bail!(
            "{} exists already: a backup never overwrites a file",
            file.display()
        );
    }
    let store = Store::connect(&config.database).await?;
    let copied = match store.backend() {
        Backend::Sqlite => copy_sqlite(&store, file).await,
        Backend::Postgres => dump_postgres(config.database.url.expose(), file).await,
    };
    store.close().await;
    copied?;
    Ok(Report {
        database: match store.backend() {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        },
        file: file.to_owned(),
        bytes: std::fs::metadata(file)?.len(),
        outside_the_database: kept_files(config, config_path),
    })
}

/// Written under a temporary name and renamed when complete, so that a
/// backup interrupted half-way never looks like a whole one.
async fn copy_sqlite(store: &Store, file: &Path) -> anyhow::Result<()> {
    let partial = partial_name(file);
    let _ = std::fs::remove_file(&partial);
    let target = partial
        .to_str()
        .context("the backup's path is not UTF-8")?
        .to_owned();
    sqlx::query("VACUUM INTO $1")
        .bind(target)
        .execute(store.pool())
        .await
        .with_context(|| format!("while copying the database into {}", partial.display()))?;
    std::fs::rename(&partial, file)
        .with_context(|| format!("while renaming {} to {}", partial.display(), file.display()))
}

async fn dump_postgres(url: &str, file: &Path) -> anyhow::Result<()> {
    let partial = partial_name(file);
    let mut command = std::process::Command::new("pg_dump");
    command
        .arg("--format=custom")
        .arg("--file")
        .arg(&partial)
        .arg("--dbname")
        .arg(url);
    // A schema chosen by the URL (`options=-c search_path=…`) is the
    // service's data; the database's other schemas are not.
    if let Some(schema) = search_path_schema(url) {
        command.arg("--schema").arg(schema);
    }
    let output = tokio::task::spawn_blocking(move || command.output())
        .await?
        .context("cannot run pg_dump (Debian: apt install postgresql-client)")?;
    if !output.status.success() {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "pg_dump failed: {}",
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    std::fs::rename(&partial, file)
        .with_context(|| format!("while renaming {} to {}", partial.display(), file.display()))
}

fn partial_name(file: &Path) -> PathBuf {
    let mut name = file.as_os_str().to_owned();
    name.push(".partial");
    name.into()
}

/// The first schema of `search_path` in the URL's `options`, if any.
fn search_path_schema(url: &str) -> Option<String> {
    let parsed = url::Url::parse(url).ok()?;
    let options = parsed
        .query_pairs()
        .find_map(|(key, value)| (key == "options").then_some(value))?;
    let path = options
        .split_whitespace()
        .find_map(|option| option.strip_prefix("search_path="))?;
    let first = path.split(',').next()?.trim();
    (!first.is_empty()).then(|| first.to_owned())
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
        let url = "postgres://u@h/db?options=-c%20search_path%3Dbs_one%2Cpublic&application_name=x";
        assert_eq!(search_path_schema(url).as_deref(), Some("bs_one"));
        assert_eq!(search_path_schema("postgres://u@h/db"), None);
        assert_eq!(
            search_path_schema("postgres://u@h/db?options=-c%20statement_timeout%3D5"),
            None
        );
    }
}
