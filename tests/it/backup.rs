//! `broadsheet backup` while the service serves and sends, and the restore
//! that README.md's "Backups" describes, into a fresh folder.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use std::{
    os::unix::fs::PermissionsExt,
    path::{Path, PathBuf},
    process::Command,
};

use broadsheet::{
    app::{App, Role},
    clock::Clock,
    config::{Config, Secret},
    store::Store,
};
use sqlx::{Connection, Executor};

use crate::{
    cli::cli_for,
    support::{self, Backend, TestApp},
};

storage_tests!(a_backup_taken_while_sending_and_signing_up_restores_into_a_fresh_folder);

/// An Ed25519 DKIM key: the base64 of a 32-byte seed.
const DKIM_SEED: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

async fn a_backup_taken_while_sending_and_signing_up_restores_into_a_fresh_folder(
    backend: Backend,
) {
    let keys = tempfile::tempdir().unwrap();
    let suppression_key = keys.path().join("suppression.key");
    let dkim_key = keys.path().join("dkim.key");
    std::fs::write(&dkim_key, DKIM_SEED).unwrap();
    let app = TestApp::spawn_with(backend, Role::Web, |config| {
        config.privacy.suppression_key_file = suppression_key.clone();
        config.dkim.domain = "lordspress.test".into();
        config.dkim.private_key_path = dkim_key.clone();
    })
    .await;
    let readers: String = std::iter::once("email,name,topics,consented_at,source".to_owned())
        .chain((0..300).map(|n| format!("r{n}@example.com,,,2025-01-01T00:00:00Z,test")))
        .collect::<Vec<_>>()
        .join("\n");
    app.import_csv(&readers).await;
    app.import_article("+++\ntitle = \"Kept\"\n+++\nBody.\n")
        .await;
    let broadsheet::digest::Started::Campaign { id: campaign, .. } = app.send_digest_now().await
    else {
        panic!("no campaign started")
    };
    let before = Snapshot::of(&app.store).await;

    // The copy is taken while the worker sends the digest and readers sign up.
    let sending = tokio::spawn({
        let worker = app.worker.clone();
        async move { support::drain(&worker).await }
    });
    let signups = tokio::spawn({
        let browser = app.new_browser();
        async move {
            for n in 0..20 {
                assert_eq!(
                    browser
                        .sign_up(&format!("new{n}@example.com"), true)
                        .await
                        .status(),
                    200
                );
            }
        }
    });
    let target = tempfile::tempdir().unwrap();
    let file = target.path().join("broadsheet.backup");
    // And while a write is under way: the copy is taken without waiting
    // for it, and without it (a snapshot, never half a transaction).
    let mut writing = app.store.begin().await.unwrap();
    sqlx::query("INSERT INTO settings (key, value) VALUES ('during-the-backup', 'x')")
        .execute(&mut *writing)
        .await
        .unwrap();
    let report = backup(&app, &file);
    writing.commit().await.unwrap();
    sending.await.unwrap();
    signups.await.unwrap();
    assert!(
        file.with_extension("backup.partial").metadata().is_err(),
        "no partial file left"
    );
    assert_eq!(
        std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
        0o600,
        "a backup holds every reader's address: its owner's only"
    );

    assert_eq!(report["file"], file.display().to_string());
    // Which database was copied, named without its credentials.
    let url = app.config.database.url.expose();
    let from = report["from"].as_str().unwrap();
    match backend {
        Backend::Sqlite => assert_eq!(Some(from), url.strip_prefix("sqlite://")),
        Backend::Postgres => assert!(
            from.starts_with("127.0.0.1:5432/") && !from.contains('@'),
            "{from}"
        ),
    }
    assert!(report["bytes"].as_u64().unwrap() > 0);
    let kept = kept_files(&report);
    assert_eq!(kept["privacy.suppression_key_file"], suppression_key);
    assert_eq!(kept["dkim.private_key_path"], dkim_key);
    assert!(
        backup(&app, &file).get("file").is_none(),
        "a second backup to the same file must be refused"
    );

    // Restore into a fresh folder: the database and the files the report named.
    let fresh = tempfile::tempdir().unwrap();
    let restored_url = restore(backend, &app, &file, fresh.path()).await;
    let mut config = app.config.clone();
    config.database.url = Secret::new(restored_url.clone());
    config.mail.file_dir = fresh.path().join("mail");
    config.privacy.suppression_key_file = fresh.path().join("suppression.key");
    config.dkim.private_key_path = fresh.path().join("dkim.key");

    // Without the suppression key, the restored database refuses to start.
    let refused = App::build(config.clone(), Clock::default()).await;
    let error = format!("{:#}", refused.err().expect("no start without the key"));
    assert!(error.contains("suppression key"), "{error}");
    std::fs::remove_file(&config.privacy.suppression_key_file).ok();

    for (key, path) in &kept {
        if *key != "--config" {
            let name = config_path_for(&config, key);
            std::fs::copy(path, name).unwrap();
        }
    }
    let restored = App::build(config, Clock::default()).await.unwrap();
    let after = Snapshot::of(&restored.store()).await;
    assert_eq!(after.readers_of(&before), before.readers);
    assert_eq!(after.consent_of(&before), before.consent);
    assert_eq!(after.campaigns, before.campaigns);
    assert!(after.campaigns.contains(&campaign));
    assert_eq!(after.deliveries, before.deliveries);
    assert!(
        restored
            .store()
            .pool()
            .fetch_optional("SELECT value FROM settings WHERE key = 'during-the-backup'")
            .await
            .unwrap()
            .is_none(),
        "a write not committed when the backup began is not in it"
    );
    assert_eq!(
        after.readers_without_consent, 0,
        "a reader restored without the consent recorded with them"
    );
    restored.store().close().await;
    if backend == Backend::Postgres {
        drop_database(&restored_url).await;
    }
    app.stop().await;
}

/// Runs `broadsheet backup FILE` against `app`'s database and key files;
/// its JSON report, or `{}` when it failed.
fn backup(app: &TestApp, file: &Path) -> serde_json::Value {
    let elsewhere = tempfile::tempdir().unwrap();
    let output = cli_for(app)
        .current_dir(elsewhere.path())
        .env(
            "BROADSHEET_PRIVACY__SUPPRESSION_KEY_FILE",
            &app.config.privacy.suppression_key_file,
        )
        .env("BROADSHEET_DKIM__DOMAIN", &app.config.dkim.domain)
        .env(
            "BROADSHEET_DKIM__PRIVATE_KEY_PATH",
            &app.config.dkim.private_key_path,
        )
        .arg("backup")
        .arg(file)
        .output()
        .unwrap();
    if !output.status.success() {
        let error = String::from_utf8_lossy(&output.stderr);
        assert!(error.contains("exists already"), "backup failed: {error}");
        return serde_json::json!({});
    }
    serde_json::from_slice(&output.stdout).unwrap()
}

fn kept_files(report: &serde_json::Value) -> std::collections::BTreeMap<&str, PathBuf> {
    report["outside_the_database"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kept| {
            (
                kept["key"].as_str().unwrap(),
                PathBuf::from(kept["path"].as_str().unwrap()),
            )
        })
        .collect()
}

fn config_path_for<'a>(config: &'a Config, key: &str) -> &'a Path {
    match key {
        "privacy.suppression_key_file" => &config.privacy.suppression_key_file,
        "dkim.private_key_path" => &config.dkim.private_key_path,
        other => panic!("the backup named {other}, which the test does not restore"),
    }
}

/// Puts the backup in place as README.md says; the restored database's URL.
async fn restore(backend: Backend, app: &TestApp, file: &Path, folder: &Path) -> String {
    match backend {
        Backend::Sqlite => {
            let database = folder.join("broadsheet.db");
            std::fs::copy(file, &database).unwrap();
            format!("sqlite://{}", database.display())
        }
        Backend::Postgres => {
            let original = url::Url::parse(app.config.database.url.expose()).unwrap();
            let name = format!("bs_restore_{}", uuid::Uuid::now_v7().simple());
            let mut admin = sqlx::PgConnection::connect(original.as_str())
                .await
                .unwrap();
            admin
                .execute(format!("CREATE DATABASE {name}").as_str())
                .await
                .unwrap();
            admin.close().await.unwrap();
            let mut restored = original.clone();
            restored.set_path(&name);
            let mut bare = restored.clone();
            bare.set_query(None);
            let status = Command::new("pg_restore")
                .args(["--no-owner", "--exit-on-error", "--dbname"])
                .arg(bare.as_str())
                .arg(file)
                .status()
                .unwrap();
            assert!(status.success(), "pg_restore failed");
            restored.to_string()
        }
    }
}

async fn drop_database(url: &str) {
    let mut parsed = url::Url::parse(url).unwrap();
    let name = parsed.path().trim_start_matches('/').to_owned();
    parsed.set_path("/postgres");
    parsed.set_query(None);
    let mut admin = sqlx::PgConnection::connect(parsed.as_str()).await.unwrap();
    admin
        .execute(format!("DROP DATABASE {name} WITH (FORCE)").as_str())
        .await
        .unwrap();
}

/// What a restore must bring back.
#[derive(Debug)]
struct Snapshot {
    readers: Vec<String>,
    /// Each reader's consent records: (reader, record) ids.
    consent: Vec<(String, String)>,
    campaigns: Vec<String>,
    deliveries: i64,
    readers_without_consent: i64,
}

impl Snapshot {
    async fn of(store: &Store) -> Self {
        Self {
            readers: column(store, "SELECT id FROM subscribers ORDER BY id").await,
            consent: sqlx::query_as(
                "SELECT subject, id FROM consent_events WHERE subject_kind = 'subscriber' \
                 ORDER BY id",
            )
            .fetch_all(store.pool())
            .await
            .unwrap(),
            campaigns: column(store, "SELECT id FROM campaigns ORDER BY id").await,
            deliveries: count(store, "SELECT COUNT(*) FROM deliveries").await,
            readers_without_consent: count(
                store,
                "SELECT COUNT(*) FROM subscribers s WHERE NOT EXISTS (SELECT 1 FROM consent_events c \
                 WHERE c.subject_kind = 'subscriber' AND c.subject = s.id)",
            )
            .await,
        }
    }

    /// The readers of `before` found here (signups during the backup may
    /// or may not be in it; those before it must).
    fn readers_of(&self, before: &Snapshot) -> Vec<String> {
        before
            .readers
            .iter()
            .filter(|id| self.readers.contains(id))
            .cloned()
            .collect()
    }

    /// The consent records here of `before`'s readers.
    fn consent_of(&self, before: &Snapshot) -> Vec<(String, String)> {
        self.consent
            .iter()
            .filter(|(reader, _)| before.readers.contains(reader))
            .cloned()
            .collect()
    }
}

async fn column(store: &Store, sql: &str) -> Vec<String> {
    sqlx::query_scalar(sql)
        .fetch_all(store.pool())
        .await
        .unwrap()
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .unwrap()
}
