//! Data rights and retention: export (G-19/G-20), erasure (G-13) and the
//! purges that keep personal data no longer than needed (G-16/G-17).
//! The export format is documented in `docs/export.md`.

use std::{
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use crate::{
    clock::{self, Clock},
    config::{Config, PrivacyConfig},
    consent,
    domain::keyed_hash,
    store::{
        self, Store, consent::EventWithText, outbox::EmailRecord, sessions::SessionRecord,
        subscribers::Profile,
    },
};

/// The export schema's name; bump it when the shape changes.
pub const EXPORT_SCHEMA: &str = "broadsheet.export.v1";

/// A reader's own data rights, over the store, the clock and the
/// suppression key.
#[derive(Clone)]
pub struct Privacy {
    store: Store,
    clock: Clock,
    /// Keys the hashes of erased addresses (G-13).
    suppression_key: Arc<[u8]>,
}

impl Privacy {
    pub fn new(store: Store, clock: Clock, suppression_key: &[u8]) -> Self {
        Self {
            store,
            clock,
            suppression_key: suppression_key.into(),
        }
    }

    /// Everything held about a reader, or `None` if there is no such reader.
    pub async fn export(&self, subscriber_id: &str) -> anyhow::Result<Option<Value>> {
        export(&self.store, &self.clock, subscriber_id).await
    }

    /// Erases a reader at their own request (see [`erase`]).
    pub async fn erase(&self, subscriber_id: &str) -> anyhow::Result<bool> {
        let key = &self.suppression_key;
        erase(&self.store, &self.clock, key, subscriber_id, None).await
    }
}

/// Unix milliseconds as RFC 3339, the form every time in an export takes.
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// Everything held about a reader, or `None` if there is no such reader.
pub async fn export(
    store: &Store,
    clock: &Clock,
    subscriber_id: &str,
) -> anyhow::Result<Option<Value>> {
    let mut conn = store.pool().acquire().await?;
    let Some(profile) = store::subscribers::profile(&mut conn, subscriber_id).await? else {
        return Ok(None);
    };
    let preferences = store::preferences::load(&mut conn, subscriber_id).await?;
    let digest = consent::digest_consent(&mut conn, subscriber_id).await?;
    let events = store::consent::events_of(&mut conn, subscriber_id).await?;
    let emails = store::outbox::history(&mut conn, subscriber_id).await?;
    let sessions = store::sessions::list(&mut conn, subscriber_id).await?;
    Ok(Some(json!({
        "schema": EXPORT_SCHEMA,
        "exported_at": rfc3339(clock.now_ms()),
        "profile": profile_json(&profile),
        "account": account_json(&profile),
        "preferences": preferences,
        "consent": {
            "digest": digest,
            "events": events.iter().map(event_json).collect::<Vec<_>>(),
        },
        "emails": emails.iter().map(email_json).collect::<Vec<_>>(),
        "sessions": sessions.iter().map(session_json).collect::<Vec<_>>(),
    })))
}

fn profile_json(profile: &Profile) -> Value {
    json!({
        "id": profile.id,
        "email": profile.email,
        "email_canonical": profile.email_canonical,
        "name": profile.name,
        "status": profile.status,
        "signed_up_at": rfc3339(profile.created_at),
        "confirmed_at": profile.confirmed_at.and_then(rfc3339),
    })
}

/// `None` for a reader without an account.
fn account_json(profile: &Profile) -> Option<Value> {
    profile.username.as_ref().map(|username| {
        json!({
            "username": username,
            "created_at": profile.account_created_at.and_then(rfc3339),
            "has_password": profile.has_password != 0,
        })
    })
}

/// A consent event with the wording shown and the privacy notice in force.
fn event_json(e: &EventWithText) -> Value {
    json!({
        "id": e.id,
        "purpose": e.purpose,
        "action": e.action,
        "source": e.source,
        "at": rfc3339(e.created_at),
        "ip": e.ip,
        "user_agent": e.user_agent,
        "wording": { "version": e.text_id, "language": e.text_language, "text": e.text_body },
        "privacy_notice_version": e.notice_id,
    })
}

fn email_json(m: &EmailRecord) -> Value {
    json!({
        "template": m.template,
        "status": m.status,
        "attempts": m.attempts,
        "message_id": m.message_id,
        "queued_at": rfc3339(m.created_at),
        "sent_at": m.sent_at.and_then(rfc3339),
        "last_error": m.last_error,
    })
}

fn session_json(s: &SessionRecord) -> Value {
    json!({
        "signed_in_at": rfc3339(s.created_at),
        "last_seen_at": rfc3339(s.last_seen_at),
        "expires_at": rfc3339(s.expires_at),
    })
}

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
    let Some(path) = key_file(config) else {
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
fn key_file(config: &Config) -> Option<PathBuf> {
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

/// The keyed hash an erased or suppressed address is kept as.
pub fn suppression_hash(key: &[u8], canonical_email: &str) -> String {
    keyed_hash(key, &canonical_email.to_lowercase())
}

/// Erases a reader: the address survives only as a keyed hash on the
/// suppression list, consent events stay as pseudonymised proof, and
/// everything else goes (G-13). Returns false if there was no such reader.
/// `by` is the editor or CLI acting on the reader's request, written to the
/// audit log in the same transaction; `None` when readers erase themselves.
pub async fn erase(
    store: &Store,
    clock: &Clock,
    key: &[u8],
    subscriber_id: &str,
    by: Option<&crate::audit::Actor>,
) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    let Some(profile) = store::subscribers::profile(&mut tx, subscriber_id).await? else {
        return Ok(false);
    };
    let hash = suppression_hash(key, &profile.email_canonical);
    store::preferences::suppress(&mut tx, &hash, "erased", now).await?;
    let kept = store::consent::pseudonymise(&mut tx, subscriber_id, &hash).await?;
    store::subscribers::delete(&mut tx, subscriber_id).await?;
    if let Some(actor) = by {
        // The former id only: the address must not outlive the erasure.
        let detail = json!({});
        crate::audit::record(&mut tx, now, actor, "reader.erase", subscriber_id, detail).await?;
    }
    tx.commit().await?;
    // Logged without the address: the hash prefix lets an operator match a request.
    tracing::info!(
        event = "erasure",
        subject = &hash[..12],
        consent_events_kept = kept,
        "reader erased"
    );
    Ok(true)
}

/// What one purge removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct PurgeReport {
    pub unconfirmed_signups: u64,
    pub consent_evidence_cleared: u64,
    pub tokens: u64,
    pub sessions: u64,
    /// Editors' sessions past their absolute timeout or long idle (their
    /// own, shorter idle timeout is enforced at every request).
    pub editor_sessions: u64,
    /// Answers kept for idempotent API requests, after a day.
    pub idempotency_keys: u64,
}

/// Runs every retention rule once; safe to run on several instances at once.
pub async fn purge(
    store: &Store,
    clock: &Clock,
    config: &PrivacyConfig,
    session_idle: Duration,
) -> anyhow::Result<PurgeReport> {
    let now = clock.now_ms();
    let day = clock::ms(Duration::from_secs(24 * 3600));
    let mut conn = store.pool().acquire().await?;
    // Both deletes in one transaction, so a reader confirming meanwhile
    // keeps their consent events.
    let mut tx = store.begin().await?;
    let unconfirmed_signups = store::subscribers::purge_unconfirmed(
        &mut tx,
        now - clock::ms(config.unconfirmed_retention),
    )
    .await?;
    tx.commit().await?;
    let report = PurgeReport {
        unconfirmed_signups,
        consent_evidence_cleared: store::consent::clear_evidence_before(
            &mut conn,
            now - clock::ms(config.ip_retention),
        )
        .await?,
        tokens: store::tokens::purge_spent(&mut conn, now).await?,
        sessions: store::sessions::purge_dead(&mut conn, now, now - clock::ms(session_idle))
            .await?,
        editor_sessions: store::editors::purge_dead_sessions(
            &mut conn,
            now,
            now - clock::ms(session_idle),
        )
        .await?,
        idempotency_keys: store::audit::purge_answers(&mut conn, now - day).await?,
    };
    tracing::info!(event = "purge", ?report, "retention rules applied");
    Ok(report)
}
