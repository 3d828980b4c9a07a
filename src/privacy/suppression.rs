//! The suppression key (kept in a file apart from the database, so a copy
//! of the database alone cannot match addresses against the list) and the
//! keyed hashes it makes.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::{
    config::Config,
    domain::keyed_hash,
    store::{self, Store},
};

/// Where the suppression key was kept before it moved to a file.
const KEY_SETTING: &str = "suppression_key";
/// A SHA-256 of the key the database is used with.
const FINGERPRINT_SETTING: &str = "suppression_key_sha256";

/// The key erased and suppressed addresses are hashed with, kept apart from
/// the database so that a dump alone cannot test a list of candidate
/// addresses against the hashes: `privacy.suppression_key_file`, or by
/// default a file beside the SQLite database (`broadsheet.suppression-key`
/// next to `broadsheet.db`). The file is created on first start, taking
/// over the key an older install kept in the database. On PostgreSQL,
/// whose instances share one key, it stays in the database unless the
/// operator names a file (the same on every instance).
pub async fn suppression_key(store: &Store, config: &Config) -> anyhow::Result<String> {
    let Some(path) = suppression_key_file(config) else {
        tracing::warn!(
            "the suppression key is kept in the database: set privacy.suppression_key_file \
             (the same file on every instance) to keep it out of database dumps"
        );
        return store::settings::secret(store, KEY_SETTING).await;
    };
    let in_database = store::settings::get(store, KEY_SETTING).await?;
    let recorded = store::settings::get(store, FINGERPRINT_SETTING).await?;
    let (key, created) =
        read_or_create_key_file(&path, in_database.as_deref(), recorded.is_some())?;
    anyhow::ensure!(
        key.len() >= 32,
        "{} must hold at least 32 characters",
        path.display()
    );
    check_fingerprint(store, &path, &key, created).await?;
    match in_database {
        Some(old) if old == key => store::settings::delete(store, KEY_SETTING).await?,
        // Addresses suppressed or erased until now were hashed with the
        // database's key: dropping it would let them sign up again.
        Some(_) => tracing::warn!(
            file = %path.display(),
            "the database holds another suppression key than the file; both are kept, the file's is used"
        ),
        None => {}
    }
    Ok(key)
}

/// The suppression key's file: the one configured, or one beside a SQLite
/// database; `None` on PostgreSQL when none is configured.
pub fn suppression_key_file(config: &Config) -> Option<PathBuf> {
    match &config.privacy.suppression_key_file {
        file if !file.as_os_str().is_empty() => Some(file.clone()),
        _ => store::sqlite_path(config.database.url.expose())
            .map(|database| database.with_extension("suppression-key")),
    }
}

/// The key in the file, or, when there is no file yet, the key the
/// database kept or a new one, written to a new file; `true` when the file
/// was created now.
fn read_or_create_key_file(
    path: &Path,
    in_database: Option<&str>,
    database_had_a_key: bool,
) -> anyhow::Result<(String, bool)> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok((text.trim().to_owned(), false)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = match (in_database, database_had_a_key) {
                (Some(old), _) => old.to_owned(),
                // A new key would let every erased and bounced reader be
                // mailed again: never made for a database that had one.
                (None, true) => anyhow::bail!(
                    "the suppression key file {} is missing, but this database was used with one: \
                     restore it from the backup, or copy it from another instance",
                    path.display()
                ),
                (None, false) => crate::domain::Token::generate().expose().to_owned(),
            };
            write_key_file(path, &key)?;
            tracing::info!(file = %path.display(), moved = in_database.is_some(), "suppression key file created");
            Ok((key, true))
        }
        Err(e) => anyhow::bail!(
            "cannot read privacy.suppression_key_file {}: {e}",
            path.display()
        ),
    }
}

/// The database remembers which key it is used with (a hash of it, which
/// tells nothing of the key), so no instance, restore or typo can start
/// with another. A file created just now for a refused key is removed.
async fn check_fingerprint(
    store: &Store,
    path: &Path,
    key: &str,
    created: bool,
) -> anyhow::Result<()> {
    let fingerprint = crate::domain::content_hash(key);
    let agreed =
        store::settings::get_or_create(store, FINGERPRINT_SETTING, || fingerprint.clone()).await?;
    if agreed != fingerprint {
        if created {
            let _ = std::fs::remove_file(path);
        }
        anyhow::bail!(
            "the suppression key in {} is not the one this database is used with: \
             every instance needs the same file",
            path.display()
        );
    }
    Ok(())
}

/// Writes a new key file readable by its owner only; never replaces one.
fn write_key_file(path: &Path, key: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("cannot create the suppression key file {}", path.display()))?;
    writeln!(file, "{key}")?;
    file.sync_all()?;
    Ok(())
}

/// Copies readers suppressed the old way (`subscribers.suppressed_at`,
/// before the one suppression list) onto the list; their hashes need the
/// key, which migrations do not have. Run at every start; adds nothing
/// once done. The old column stays set, so an instance of the previous
/// version still running during a rolling upgrade keeps skipping them; a
/// later release drops it.
pub async fn move_legacy_suppressions(store: &Store, key: &[u8]) -> anyhow::Result<u64> {
    let mut tx = store.begin().await?;
    let legacy = store::suppressions::legacy(&mut tx).await?;
    let mut moved = 0;
    for (subscriber_id, email, suppressed_at) in &legacy {
        let hash = suppression_hash(key, email);
        let entry = store::suppressions::NewSuppression {
            email_hash: &hash,
            reason: store::suppressions::Reason::HardBounce,
            subscriber_id: Some(subscriber_id),
            event_id: None,
            note: None,
        };
        moved += u64::from(store::suppressions::add(&mut tx, &entry, *suppressed_at).await?);
    }
    tx.commit().await?;
    Ok(moved)
}

/// The keyed hash an erased or suppressed address is kept as.
pub fn suppression_hash(key: &[u8], canonical_email: &str) -> String {
    keyed_hash(key, &canonical_email.to_lowercase())
}
