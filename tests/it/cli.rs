//! The `broadsheet` binary as an operator runs it.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::{
    collections::{HashMap, HashSet},
    path::Path,
    process::{Child, Command, Stdio},
    time::Duration,
};

use support::{Backend, TestDatabase, free_port, hidden_field, link_path};

const BINARY: &str = env!("CARGO_BIN_EXE_broadsheet");

storage_tests!(
    serve_writes_the_signup_and_credentials_emails_as_eml_files_and_stops_on_sigterm,
    importing_the_example_articles_twice_changes_nothing,
    subscriber_export_and_erase_act_on_one_reader,
    digest_preview_prints_and_send_now_wait_delivers_to_every_reader,
    a_digest_killed_mid_send_reaches_everyone_after_a_restart,
    a_server_killed_twenty_times_mid_traffic_loses_nothing,
    a_killed_digest_is_finished_within_a_lease_of_the_restart,
    two_served_instances_fire_one_campaign_and_send_each_digest_once,
    two_served_instances_over_three_relays_one_failing_send_each_digest_once,
    editor_add_and_token_create_give_a_newcomer_the_console_and_the_api,
    article_digest_and_subscriber_commands_do_what_the_console_does,
    suppression_commands_add_list_and_remove_an_address_audited,
    webhook_commands_add_list_turn_off_and_on_and_remove_an_endpoint,
);

#[test]
fn every_command_has_help() {
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["migrate", "--help"],
        &["config", "show", "--help"],
    ] {
        let output = Command::new(BINARY).args(args).output().unwrap();
        assert!(output.status.success(), "{args:?}");
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("--config"),
            "{args:?}"
        );
    }
}

#[test]
fn a_bad_config_value_stops_start_up_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .env("BROADSHEET_SMTP__TLS", "sometimes")
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("tls") && stderr.contains("starttls"),
        "{stderr}"
    );
}

#[test]
fn a_backup_from_the_wrong_folder_is_refused_and_creates_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .args(["backup", "copy.db"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("there is no database at var/broadsheet.db"),
        "{stderr}"
    );
    assert!(!dir.path().join("var").exists() && !dir.path().join("copy.db").exists());
}

#[test]
fn a_refused_postgresql_connection_is_named_and_said_once() {
    let output = Command::new(BINARY)
        .env(
            "BROADSHEET_DATABASE__URL",
            "postgres://postgres@127.0.0.1:1/news",
        )
        .args(["migrate"])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot connect to PostgreSQL at 127.0.0.1:1/news"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("Connection refused").count(), 1, "{stderr}");
    assert!(!stderr.contains("timed out"), "{stderr}");
}

#[test]
fn config_check_and_show_say_what_would_run_and_hide_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str], env: &[(&str, &str)]| {
        Command::new(BINARY)
            .current_dir(dir.path())
            .envs(env.iter().copied())
            .args(args)
            .output()
            .unwrap()
    };
    let good = run(&["config", "check"], &[]);
    assert!(good.status.success());
    assert!(String::from_utf8_lossy(&good.stderr).contains("is valid"));
    let bad = run(
        &["config", "check"],
        &[("BROADSHEET_SMTP__CONCURRENCY", "0")],
    );
    assert!(!bad.status.success());
    let said = String::from_utf8_lossy(&bad.stderr);
    assert!(
        said.contains("smtp.concurrency must be at least 1"),
        "{said}"
    );
    let secrets = [
        ("BROADSHEET_SMTP__PASSWORD", "hunter2"),
        (
            "BROADSHEET_DATABASE__URL",
            "postgres://app:s3cret@db.example/news",
        ),
    ];
    let shown = run(&["config", "show"], &secrets);
    assert!(shown.status.success());
    let text = String::from_utf8_lossy(&shown.stdout);
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["smtp"]["password"], "***");
    assert_eq!(
        json["database"]["url"],
        "postgres://app:***@db.example/news"
    );
    assert!(
        !text.contains("hunter2") && !text.contains("s3cret"),
        "{text}"
    );
    assert!(
        !dir.path().join("var").exists(),
        "neither command touches the database"
    );
}

#[test]
fn migrate_creates_the_sqlite_file_and_its_folder() {
    let dir = tempfile::tempdir().unwrap();
    let status = Command::new(BINARY)
        .current_dir(dir.path())
        .arg("migrate")
        .status()
        .unwrap();
    assert!(status.success());
    assert!(dir.path().join("var/broadsheet.db").is_file());
}

async fn serve_writes_the_signup_and_credentials_emails_as_eml_files_and_stops_on_sigterm(
    backend: Backend,
) {
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port().await;
    let base = format!("http://127.0.0.1:{port}");
    let mut command = Command::new(BINARY);
    command
        .current_dir(dir.path())
        .env("BROADSHEET_SERVER__BIND", format!("127.0.0.1:{port}"))
        .env("BROADSHEET_SERVER__BASE_URL", &base)
        .env("BROADSHEET_DELIVERY__POLL_INTERVAL_MS", "50")
        .args(["serve"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).unwrap());
    if backend == Backend::Postgres {
        command.env("BROADSHEET_DATABASE__URL", &database.url);
    }
    let mut server = command.spawn().unwrap();
    let client = reqwest::Client::builder()
        .cookie_store(true)
        .build()
        .unwrap();
    wait_until_ready(&client, &base).await;

    let form = client
        .get(format!("{base}/subscribe"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&form, "csrf");
    let response = client
        .post(format!("{base}/subscribe"))
        .form(&[("email", "eml@example.com"), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mail_dir = dir.path().join("var/mail");
    let confirmation = wait_for_eml(&mail_dir, 1).await;
    let path = link_path(&confirmation[0], &base, "confirm");
    let page = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf");
    let confirmed = client
        .post(format!("{base}{path}"))
        .form(&[("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200);
    let both = wait_for_eml(&mail_dir, 2).await;
    assert!(
        both.iter()
            .any(|text| text.contains("Your username: eml@example.com"))
    );

    stop_with_sigterm(&mut server);
    // What an operator reads first: where to go, which database, where mail goes.
    let log = std::fs::read_to_string(dir.path().join("serve.log")).unwrap();
    let database = match backend {
        Backend::Sqlite => "database: SQLite, a new file created at var/broadsheet.db",
        Backend::Postgres => &format!(
            "database: PostgreSQL at {}",
            broadsheet::store::server_of(&database.url)
        ),
    };
    for line in [
        &format!("open {base}/ (readers) and {base}/admin (editors)"),
        database,
        "mail: written as .eml files into var/mail",
    ] {
        assert!(log.contains(line), "{line:?} is not in the log:\n{log}");
    }
}

pub(crate) async fn wait_until_ready(client: &reqwest::Client, base: &str) {
    for _ in 0..200 {
        if let Ok(response) = client.get(format!("{base}/readyz")).send().await
            && response.status() == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the server did not become ready in 10 s");
}

/// The text parts of the `.eml` files in `dir`, once there are `count` of them.
async fn wait_for_eml(dir: &Path, count: usize) -> Vec<String> {
    for _ in 0..400 {
        let texts: Vec<String> = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "eml"))
            // A file the transport is still writing does not parse yet:
            // it is read again on the next round.
            .filter_map(|path| {
                let raw = std::fs::read(path).ok()?;
                let message = mail_parser::MessageParser::default().parse(&raw)?;
                Some(message.body_text(0)?.into_owned())
            })
            .collect();
        if texts.len() >= count {
            return texts;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!(
        "fewer than {count} .eml files in {} after 20 s",
        dir.display()
    );
}

pub(crate) fn stop_with_sigterm(server: &mut Child) {
    let status = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    for _ in 0..200 {
        if let Some(status) = server.try_wait().unwrap() {
            assert!(status.success(), "exit status after SIGTERM: {status}");
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    server.kill().ok();
    panic!("the server did not stop within 10 s of SIGTERM");
}

async fn importing_the_example_articles_twice_changes_nothing(backend: Backend) {
    let database = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().unwrap();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/articles");
    let files: Vec<_> = std::fs::read_dir(&examples)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() >= 3);
    let url = match backend {
        Backend::Sqlite => format!("sqlite://{}", dir.path().join("articles.db").display()),
        Backend::Postgres => database.url.clone(),
    };
    for _ in 0..2 {
        let output = Command::new(BINARY)
            .current_dir(dir.path())
            .env("BROADSHEET_DATABASE__URL", &url)
            .args(["article", "import"])
            .args(&files)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let store = broadsheet::store::Store::connect(&broadsheet::config::DatabaseConfig {
        url: broadsheet::config::Secret::new(url),
        max_connections: 1,
    })
    .await
    .unwrap();
    let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM articles")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(count as usize, files.len(), "idempotent per slug");
    store.close().await;
}

#[test]
fn an_invalid_article_file_is_refused_with_its_name_and_nothing_is_stored() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.md");
    std::fs::write(&bad, "no front matter here").unwrap();
    let output = Command::new(BINARY)
        .current_dir(dir.path())
        .args(["article", "import"])
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.md") && stderr.contains("+++"),
        "{stderr}"
    );
    assert!(!dir.path().join("var/broadsheet.db").exists());
}

async fn subscriber_export_and_erase_act_on_one_reader(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    app.confirmed_reader("cli@example.com", true).await;
    let run = |args: &[&str]| cli_for(&app).args(args).output().unwrap();
    let export = run(&["subscriber", "export", "CLI@example.com"]);
    assert!(
        export.status.success(),
        "{}",
        String::from_utf8_lossy(&export.stderr)
    );
    let data: serde_json::Value = serde_json::from_slice(&export.stdout).unwrap();
    assert_eq!(data["profile"]["email"], "cli@example.com");
    assert_eq!(data["consent"]["digest"], "on");

    let erase = run(&["subscriber", "erase", "cli@example.com"]);
    assert!(
        erase.status.success(),
        "{}",
        String::from_utf8_lossy(&erase.stderr)
    );
    assert!(
        !String::from_utf8_lossy(&erase.stderr).contains("cli@example.com"),
        "masked"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM subscribers").await, 0);
    assert_eq!(app.scalar("SELECT COUNT(*) FROM suppressions").await, 1);
    let again = run(&["subscriber", "export", "cli@example.com"]);
    assert!(!again.status.success(), "no such reader any more");

    let purge = run(&["purge"]);
    assert!(purge.status.success());
    let report: serde_json::Value = serde_json::from_slice(&purge.stdout).unwrap();
    assert!(report["tokens"].is_u64());
    app.stop().await;
}

async fn digest_preview_prints_and_send_now_wait_delivers_to_every_reader(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    for n in 0..3 {
        app.confirmed_reader(&format!("reader{n}@example.com"), true)
            .await;
    }
    app.drain_outbox().await;
    let before = app.received().len();
    let run = |args: &[&str]| cli_for(&app).args(args).output().unwrap();
    let says = |args: &[&str]| String::from_utf8_lossy(&run(args).stderr).into_owned();
    let never = "No digest of this schedule has been sent yet";
    assert!(says(&["digest", "send", "--now"]).contains(never));
    assert!(says(&["digest", "preview"]).contains(never));
    app.import_article("+++\ntitle = \"Tide tables\"\ncategories = [\"city\"]\n+++\nBody.\n")
        .await;
    let preview = run(&["digest", "preview"]);
    assert!(
        preview.status.success(),
        "{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    let text = String::from_utf8_lossy(&preview.stdout);
    assert!(
        text.contains("Tide tables") && text.contains("/unsubscribe/"),
        "{text}"
    );
    assert_eq!(
        app.received().len(),
        before,
        "a printed preview sends nothing"
    );

    let dry = run(&["digest", "send", "--now", "--dry-run"]);
    let said = String::from_utf8_lossy(&dry.stderr);
    assert!(said.contains("3 recipients"), "{said}");
    assert!(
        !said.contains("editor action"),
        "a dry run is no editor's action: {said}"
    );
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM campaigns").await,
        0,
        "a dry run changes nothing"
    );

    let send = run(&["digest", "send", "--now", "--wait"]);
    assert!(
        send.status.success(),
        "{}",
        String::from_utf8_lossy(&send.stderr)
    );
    assert_eq!(app.received().len(), before + 3, "one digest each");
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
    let sent = "Every article published in the last 72 hours is in an earlier digest";
    assert!(says(&["digest", "send", "--now"]).contains(sent));
    assert!(says(&["digest", "preview"]).contains(sent));
    app.stop().await;
}

async fn a_digest_killed_mid_send_reaches_everyone_after_a_restart(backend: Backend) {
    const READERS: usize = 30;
    const BATCH: usize = 5;
    let app = night_shift(backend, READERS).await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_delay(Duration::from_millis(60));
    let command = |args: &[&str]| {
        let mut command = killable(&app, BATCH);
        command
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let mut first = command(&["digest", "send", "--now", "--wait"])
        .spawn()
        .unwrap();
    // Let it send part of the campaign, then kill it without warning.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while smtp.received().len() < READERS / 3 {
        assert!(
            std::time::Instant::now() < deadline,
            "the first run sent nothing"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let before_restart = smtp.received().len();
    assert!(before_restart < READERS, "killed before the end");
    let held = leased_messages(&app).await;
    assert!(
        held.len() <= 2 * BATCH,
        "at most two batches claimed and unrecorded: {}",
        held.len()
    );
    // The dead worker's leases expire after lease_s; a new run finishes the campaign.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let status = command(&["digest", "send", "--wait"]).status().unwrap();
    assert!(status.success());
    assert_only_held_arrive_twice(&held, &smtp.received(), READERS);
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
    app.stop().await;
}

/// With the default lease (30 s, renewed while a batch runs), a digest
/// killed mid-send reaches every reader within 45 s of the restart: what
/// the dead process held comes back when its lease runs out, not minutes
/// later; and only what it held at the kill may arrive twice.
async fn a_killed_digest_is_finished_within_a_lease_of_the_restart(backend: Backend) {
    const READERS: usize = 40;
    let app = night_shift(backend, READERS).await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_delay(Duration::from_millis(100));
    let command = |args: &[&str]| {
        let mut command = cli_for(&app);
        command
            .env("BROADSHEET_SMTP__CONCURRENCY", "2")
            .env("BROADSHEET_DELIVERY__BATCH_SIZE", "10")
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    };
    let mut first = command(&["digest", "send", "--now", "--wait"])
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while smtp.received().len() < READERS / 3 {
        assert!(std::time::Instant::now() < deadline, "nothing was sent");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let held = leased_messages(&app).await;
    assert!(!held.is_empty(), "killed with deliveries in flight");
    let restarted = std::time::Instant::now();
    let status = command(&["digest", "send", "--wait"]).status().unwrap();
    let took = restarted.elapsed();
    assert!(status.success());
    assert!(
        took < Duration::from_secs(45),
        "every reader served {took:?} after the restart"
    );
    assert_only_held_arrive_twice(&held, &smtp.received(), READERS);
    eprintln!(
        "served {took:?} after the restart; {} in flight at the kill",
        held.len()
    );
    app.stop().await;
}

/// `serve` started and SIGKILLed twenty times while readers sign up and
/// confirm and a digest goes out, then once more left to finish: every
/// acknowledged signup and confirmation is stored once, every reader has
/// their mail, no row is orphaned, and duplicates stay within the batches
/// in flight at each kill.
async fn a_server_killed_twenty_times_mid_traffic_loses_nothing(backend: Backend) {
    use rand::Rng;
    const KILLS: usize = 20;
    const READERS: usize = 30;
    const BATCH: usize = 5;
    let app = night_shift(backend, READERS).await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_delay(Duration::from_millis(20));
    let configured = |command: &mut Command| {
        command
            .env("BROADSHEET_DELIVERY__POLL_INTERVAL_MS", "50")
            .env("BROADSHEET_SIGNUP__PER_IP_PER_HOUR", "0")
            .stdout(Stdio::null())
            .stderr(Stdio::null());
    };
    let mut send = killable(&app, BATCH);
    configured(&mut send);
    let sent = send
        .args(["digest", "send", "--now"])
        .stderr(Stdio::piped())
        .output()
        .unwrap();
    assert!(
        sent.status.success(),
        "{}",
        String::from_utf8_lossy(&sent.stderr)
    );

    let serve = |port: u16| {
        let mut command = killable(&app, BATCH);
        configured(&mut command);
        // Links in the mail keep the test app's base URL: only their paths
        // are used, against whichever server is up.
        command
            .env("BROADSHEET_SERVER__BIND", format!("127.0.0.1:{port}"))
            .arg("serve")
            .spawn()
            .unwrap()
    };
    let client = reqwest::Client::new();
    let mut signed_up = Vec::new();
    let mut confirmed = Vec::new();
    // Each message leased at a kill, with the dead workers that held it.
    let mut in_flight: HashMap<String, HashSet<String>> = HashMap::new();
    for kill in 0..KILLS {
        let port = free_port().await;
        let base = format!("http://127.0.0.1:{port}");
        let mut server = serve(port);
        wait_until_ready(&client, &base).await;
        // Readers whose confirmation email has arrived confirm; two more sign up.
        let links: Vec<(String, String)> = smtp
            .received()
            .iter()
            .map(|mail| (mail.to[0].clone(), mail.text()))
            .filter(|(to, text)| text.contains("/confirm/") && !confirmed.contains(to))
            .map(|(to, text)| (to, link_path(&text, &app.base_url, "confirm")))
            .collect();
        // Acknowledged as they come: a request cut by the kill panics its
        // task (the test client expects answers), the ones before it stand.
        let acknowledged = std::sync::Arc::new(std::sync::Mutex::new((Vec::new(), Vec::new())));
        let traffic = {
            let (base, acknowledged) = (base.clone(), acknowledged.clone());
            tokio::spawn(async move {
                for n in 0..2 {
                    let browser = support::Browser::new(&base);
                    let address = format!("k{kill}-{n}@example.com");
                    if browser.sign_up(&address, true).await.status() == 200 {
                        acknowledged.lock().unwrap().0.push(format!("<{address}>"));
                    }
                }
                for (to, path) in links {
                    let browser = support::Browser::new(&base);
                    if browser.confirm(&path).await.status() == 200 {
                        acknowledged.lock().unwrap().1.push(to);
                    }
                }
            })
        };
        let at = rand::rng().random_range(0..300);
        tokio::time::sleep(Duration::from_millis(at)).await;
        server.kill().unwrap(); // SIGKILL
        server.wait().unwrap();
        for (message, owner) in leased_messages(&app).await {
            in_flight.entry(message).or_default().insert(owner);
        }
        let _ = tokio::time::timeout(Duration::from_secs(35), traffic).await;
        let (new, done) = std::mem::take(&mut *acknowledged.lock().unwrap());
        signed_up.extend(new);
        confirmed.extend(done);
    }

    // Left alone, the last server finishes everything the others left.
    let port = free_port().await;
    let mut server = serve(port);
    // Ready first: a SIGTERM before the handler is installed kills outright.
    wait_until_ready(&client, &format!("http://127.0.0.1:{port}")).await;
    let pending = "SELECT (SELECT COUNT(*) FROM outbox WHERE status = 'pending')
                        + (SELECT COUNT(*) FROM deliveries WHERE status = 'pending')";
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while app.scalar(pending).await > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "the last server finished the work"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    stop_with_sigterm(&mut server);

    let mut per_kind: std::collections::HashMap<(&str, String), usize> = Default::default();
    for mail in smtp.received() {
        let text = mail.text();
        let kind = ["/confirm/", "/account/password/", "/unsubscribe/"]
            .into_iter()
            .find(|kind| text.contains(kind))
            .unwrap_or("other");
        *per_kind.entry((kind, mail.to[0].clone())).or_default() += 1;
    }
    let received =
        |kind: &str, to: &str| per_kind.get(&(kind, to.to_owned())).copied().unwrap_or(0);
    for address in &signed_up {
        let canonical = address.trim_matches(['<', '>']);
        assert_eq!(
            app.scalar(&format!(
                "SELECT COUNT(*) FROM subscribers WHERE email_canonical = '{canonical}'"
            ))
            .await,
            1,
            "{address} was told it signed up"
        );
        assert!(
            received("/confirm/", address) >= 1,
            "{address} got its confirmation email"
        );
    }
    for address in &confirmed {
        let canonical = address.trim_matches(['<', '>']);
        assert_eq!(
            app.text(&format!(
                "SELECT status FROM subscribers WHERE email_canonical = '{canonical}'"
            ))
            .await
            .as_deref(),
            Some("confirmed"),
            "{address} was told it confirmed"
        );
        assert!(
            received("/account/password/", address) >= 1,
            "{address} got its credentials"
        );
    }
    for n in 0..READERS {
        assert!(
            received("/unsubscribe/", &format!("<r{n}@example.com>")) >= 1,
            "r{n} got the digest"
        );
    }
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
    // No orphans, no second confirmation of anyone.
    for orphans in [
        "SELECT COUNT(*) FROM consent_events WHERE subject_kind = 'subscriber' AND subject NOT IN (SELECT id FROM subscribers)",
        "SELECT COUNT(*) FROM outbox WHERE subscriber_id IS NOT NULL AND subscriber_id NOT IN (SELECT id FROM subscribers)",
        "SELECT COUNT(*) FROM accounts WHERE subscriber_id NOT IN (SELECT id FROM subscribers WHERE status = 'confirmed')",
        "SELECT COUNT(*) FROM (SELECT subject FROM consent_events WHERE action = 'confirmed' GROUP BY subject, purpose HAVING COUNT(*) > 1) twice",
    ] {
        assert_eq!(app.scalar(orphans).await, 0, "{orphans}");
    }
    // Duplicates: a message sent but not yet marked when the process died
    // goes again. So a message is sent more than once only if it was leased
    // at a kill, and at most once more per worker killed while holding it.
    let mut copies: HashMap<String, usize> = HashMap::new();
    for mail in smtp.received() {
        let id = mail.parsed().message_id().expect("E-15").to_owned();
        *copies.entry(message_key(&id)).or_default() += 1;
    }
    let duplicates: usize = copies.values().map(|n| n - 1).sum();
    eprintln!(
        "{KILLS} kills: {} signups and {} confirmations acknowledged, {} messages, {} in flight at a kill, {duplicates} duplicates",
        signed_up.len(),
        confirmed.len(),
        smtp.received().len(),
        in_flight.values().map(HashSet::len).sum::<usize>(),
    );
    for (message, n) in &copies {
        let killed_holding = in_flight.get(message).map_or(0, HashSet::len);
        assert!(
            n - 1 <= killed_holding,
            "{message} sent {n} times, in flight at {killed_holding} kills"
        );
    }
    assert!(
        !signed_up.is_empty() && !confirmed.is_empty(),
        "the traffic reached the servers"
    );
    app.stop().await;
}

/// Messages leased to a worker and not yet sent or given up, each with its
/// lease owner, keyed as [`message_key`] keys received mail.
async fn leased_messages(app: &support::TestApp) -> Vec<(String, String)> {
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT message_id, lease_owner FROM outbox
         WHERE status = 'pending' AND lease_owner IS NOT NULL
         UNION ALL
         SELECT campaign_id || '.' || subscriber_id, lease_owner FROM deliveries
         WHERE status = 'pending' AND lease_owner IS NOT NULL",
    )
    .fetch_all(app.store.pool())
    .await
    .unwrap();
    rows.into_iter()
        .map(|(id, owner)| (message_key(&id), owner))
        .collect()
}

/// Every one of `readers` got their digest, and only a message leased and
/// unsent at the kill (`held`) arrived twice, never more.
fn assert_only_held_arrive_twice(
    held: &[(String, String)],
    received: &[support::ReceivedMail],
    readers: usize,
) {
    let mut copies: HashMap<String, usize> = HashMap::new();
    for mail in received {
        let id = mail.parsed().message_id().expect("E-15").to_owned();
        *copies.entry(message_key(&id)).or_default() += 1;
    }
    assert_eq!(copies.len(), readers, "every reader served");
    let in_flight: HashSet<&String> = held.iter().map(|(message, _)| message).collect();
    for (message, n) in copies.iter().filter(|(_, n)| **n > 1) {
        assert!(
            *n == 2 && in_flight.contains(message),
            "{message} sent {n} times; in flight at the kill: {}",
            in_flight.contains(message)
        );
    }
}

/// A Message-ID without its brackets and domain: an outbox row's id, or a
/// digest's campaign and reader.
fn message_key(message_id: &str) -> String {
    let id = message_id.trim_start_matches('<');
    id.split('@').next().unwrap_or(id).to_owned()
}

/// A test app with `readers` digest readers and a new article.
async fn night_shift(backend: Backend, readers: usize) -> support::TestApp {
    let app = support::TestApp::spawn(backend).await;
    import_readers(&app, readers).await;
    app.import_article("+++\ntitle = \"Night shift\"\n+++\nBody.\n")
        .await;
    app
}

/// The CLI set up for being killed mid-send: two connections, small
/// batches, and timeouts and leases short enough for a test to outwait.
fn killable(app: &support::TestApp, batch: usize) -> Command {
    let mut command = cli_for(app);
    command
        .env("BROADSHEET_SMTP__CONCURRENCY", "2")
        .env("BROADSHEET_DELIVERY__BATCH_SIZE", batch.to_string())
        .env("BROADSHEET_SMTP__TIMEOUT_S", "1")
        .env("BROADSHEET_DELIVERY__LEASE_S", "2");
    command
}

/// `count` confirmed digest readers, r0@example.com and on.
async fn import_readers(app: &support::TestApp, count: usize) {
    let import: String = std::iter::once("email,name,topics,consented_at,source".to_owned())
        .chain((0..count).map(|n| format!("r{n}@example.com,,,2025-01-01T00:00:00Z,test")))
        .collect::<Vec<_>>()
        .join("\n");
    app.import_csv(&import).await;
}

/// A schedule firing every 3 seconds, in a config file.
const EVERY_3_S: &str =
    "[[digest.schedules]]\nname = \"daily\"\ncron = \"*/3 * * * * *\"\nfrequency = \"daily\"\n";

const TWO_INSTANCES_LEASE_S: u64 = 2;

/// `readers` imported, and an article published an hour ago.
async fn readers_and_an_article(app: &support::TestApp, readers: usize) {
    import_readers(app, readers).await;
    let hour_ago = (app.clock.now() - chrono::Duration::hours(1)).to_rfc3339();
    app.import_article(&format!(
        "+++\ntitle = \"Two presses\"\npublished_at = \"{hour_ago}\"\n+++\nBody.\n"
    ))
    .await;
}

/// Two `serve` processes on `app`'s database with `config` (the file's
/// text), left alone until `done` says so (a minute at most), then past a
/// lease and a firing more: a delivery whose lease ran out while it was
/// being sent, or a second campaign, would show up then. Then killed.
async fn two_served_instances(app: &support::TestApp, config: &str, done: impl Fn() -> bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.toml");
    std::fs::write(&path, config).unwrap();
    let mut servers = Vec::new();
    for _ in 0..2 {
        let port = free_port().await;
        let server = cli_for(app)
            .env("BROADSHEET_SERVER__BIND", format!("127.0.0.1:{port}"))
            .env("BROADSHEET_SMTP__CONCURRENCY", "2")
            .env("BROADSHEET_DELIVERY__BATCH_SIZE", "4")
            .env("BROADSHEET_DELIVERY__POLL_INTERVAL_MS", "100")
            .env("BROADSHEET_SMTP__TIMEOUT_S", "1")
            .env(
                "BROADSHEET_DELIVERY__LEASE_S",
                TWO_INSTANCES_LEASE_S.to_string(),
            )
            .args(["serve", "--config"])
            .arg(&path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        servers.push(server);
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_secs(TWO_INSTANCES_LEASE_S + 3)).await;
    for mut server in servers {
        server.kill().ok();
        server.wait().ok();
    }
}

/// What each reader received over all of `servers`.
fn per_reader(servers: &[&support::SmtpServer]) -> HashMap<String, usize> {
    let mut per_reader = HashMap::new();
    for server in servers {
        for mail in server.received() {
            *per_reader.entry(mail.to[0].clone()).or_insert(0) += 1;
        }
    }
    per_reader
}

/// One campaign, done, and every one of `readers` served exactly once.
async fn one_campaign_each_reader_once(
    app: &support::TestApp,
    servers: &[&support::SmtpServer],
    readers: usize,
) {
    let per_reader = per_reader(servers);
    assert_eq!(per_reader.len(), readers, "every reader served");
    assert!(per_reader.values().all(|n| *n == 1), "{per_reader:?}");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM campaigns").await, 1);
    assert_eq!(
        app.text("SELECT status FROM campaigns").await.as_deref(),
        Some("done")
    );
}

/// Two `serve` processes on one database, both with a schedule firing every
/// 3 seconds, left alone: the schedule fires by itself, the period key makes
/// one campaign, and the two workers share it without sending anyone twice.
async fn two_served_instances_fire_one_campaign_and_send_each_digest_once(backend: Backend) {
    const READERS: usize = 40;
    let app = support::TestApp::spawn(backend).await;
    readers_and_an_article(&app, READERS).await;
    let smtp = app.smtp.as_ref().unwrap();
    smtp.set_data_delay(Duration::from_millis(20));
    two_served_instances(&app, EVERY_3_S, || smtp.received().len() >= READERS).await;
    one_campaign_each_reader_once(&app, &[smtp], READERS).await;
    app.stop().await;
}

/// The same over three relays, one of which goes down a third of the way
/// through: each instance takes it out of rotation by itself, and its
/// share goes to the other two, each reader's digest exactly once.
async fn two_served_instances_over_three_relays_one_failing_send_each_digest_once(
    backend: Backend,
) {
    const READERS: usize = 60;
    let app = support::TestApp::spawn(backend).await;
    readers_and_an_article(&app, READERS).await;
    let relays = [
        support::SmtpServer::start().await,
        support::SmtpServer::start().await,
        support::SmtpServer::start().await,
    ];
    let mut config = format!("{EVERY_3_S}[smtp.breaker]\nfailures = 2\n");
    for (name, relay) in ["a", "b", "c"].iter().zip(&relays) {
        let port = relay.addr.port();
        config +=
            &format!("[[smtp.relays]]\nname = \"{name}\"\nhost = \"127.0.0.1\"\nport = {port}\n");
    }
    for relay in &relays {
        relay.set_data_delay(Duration::from_millis(20));
    }
    relays[2].set_down_after(Some(READERS / 9));
    let servers: Vec<&support::SmtpServer> = relays.iter().collect();
    let all_sent = || servers.iter().map(|s| s.received().len()).sum::<usize>() >= READERS;
    two_served_instances(&app, &config, all_sent).await;
    one_campaign_each_reader_once(&app, &servers, READERS).await;
    // Each relay's figures, added to by both instances, match what it got.
    for (name, relay) in ["a", "b", "c"].iter().zip(&relays) {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(sent), 0) AS BIGINT) FROM campaign_figures WHERE kind = 'relay' AND name = '{name}'"
        );
        assert_eq!(
            app.scalar(&sql).await,
            relay.received().len() as i64,
            "{name}"
        );
    }
    assert!(
        relays[2].received().len() < READERS / 3,
        "c went down early"
    );
    app.stop().await;
}

/// The binary, configured like `app`: its database, base URL and SMTP server.
pub(crate) fn cli_for(app: &support::TestApp) -> Command {
    let mut command = Command::new(BINARY);
    command
        .env("BROADSHEET_DATABASE__URL", app.config.database.url.expose())
        .env("BROADSHEET_SERVER__BASE_URL", &app.base_url)
        .env("BROADSHEET_MAIL__TRANSPORT", "smtp")
        .env("BROADSHEET_SMTP__PORT", app.config.smtp.port.to_string());
    command
}

async fn editor_add_and_token_create_give_a_newcomer_the_console_and_the_api(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    let run = |args: &[&str]| cli_for(&app).args(args).output().unwrap();
    // A printed single-use link sets the password.
    let added = run(&["editor", "add", "desk@example.com", "--role", "admin"]);
    assert!(
        added.status.success(),
        "{}",
        String::from_utf8_lossy(&added.stderr)
    );
    let link = link_path(
        &String::from_utf8_lossy(&added.stdout),
        &app.base_url,
        "admin/password",
    );
    let browser = app.new_browser();
    let set = browser
        .submit(&link, &link, &[("password", "a fine desk password")])
        .await;
    assert_eq!(set.status(), 303);
    assert_eq!(browser.get(&link).await.status(), 404, "single use");
    // --password-stdin sets it at once; a weak one is refused.
    let mut child = cli_for(&app)
        .args(["editor", "add", "night@example.com", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write as _;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"night shift password\n")
        .unwrap();
    assert!(child.wait_with_output().unwrap().status.success());
    let weak = cli_for(&app)
        .args(["editor", "add", "weak@example.com", "--password-stdin"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!weak.status.success(), "an empty password is refused");
    for (email, password) in [
        ("desk@example.com", "a fine desk password"),
        ("night@example.com", "night shift password"),
    ] {
        let signed_in = app
            .new_browser()
            .submit(
                "/admin/login",
                "/admin/login",
                &[("email", email), ("password", password)],
            )
            .await;
        assert_eq!(signed_in.status(), 303, "{email} signs in");
    }
    let list = run(&["editor", "list", "--json"]);
    let editors: serde_json::Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(editors.as_array().unwrap().len(), 2);
    let created_at = editors[0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    // A token is printed once and works until revoked.
    let created = run(&["token", "create", "--name", "ci"]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8_lossy(&created.stdout).trim().to_owned();
    assert!(token.starts_with("bs_") && token.len() == 67, "{token}");
    let again = run(&["token", "create", "--name", "ci"]);
    assert!(
        !again.status.success(),
        "names are unique among live tokens"
    );
    let tokens: serde_json::Value =
        serde_json::from_slice(&run(&["token", "list", "--json"]).stdout).unwrap();
    let created_at = tokens[0]["created_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(created_at).is_ok(),
        "{created_at}"
    );
    assert!(tokens[0]["revoked_at"].is_null());
    let listed = String::from_utf8_lossy(&run(&["token", "list"]).stdout).into_owned();
    assert!(
        listed.contains("ci") && !listed.contains(&token[3..]),
        "{listed}"
    );
    assert!(run(&["token", "revoke", "ci"]).status.success());
    assert!(
        !run(&["token", "revoke", "ci"]).status.success(),
        "revoked already"
    );
    assert!(
        run(&["token", "create", "--name", "ci"]).status.success(),
        "a revoked name is free again"
    );
    // Adding an editor again says so, and gives a new link.
    let said = |out: &std::process::Output| String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(said(&added).contains(") added;"), "{}", said(&added));
    let again = run(&["editor", "add", "desk@example.com", "--role", "editor"]);
    assert!(again.status.success());
    assert!(
        said(&again).contains("was an editor already"),
        "{}",
        said(&again)
    );
    assert!(!said(&again).contains(") added;"), "{}", said(&again));
    // Three editor additions and three token changes by the CLI; each
    // password set by its editor.
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'cli'")
            .await,
        6
    );
    app.stop().await;
}

async fn article_digest_and_subscriber_commands_do_what_the_console_does(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    app.confirmed_reader("reader@example.com", true).await;
    app.import_article("+++\ntitle = \"Harbour reopens\"\n+++\nThe harbour.\n")
        .await;
    let run = |args: &[&str]| {
        let output = cli_for(&app).args(args).output().unwrap();
        assert!(
            output.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        output.stdout
    };
    let articles: serde_json::Value =
        serde_json::from_slice(&run(&["article", "list", "--json"])).unwrap();
    assert_eq!(articles[0]["slug"], "harbour-reopens");
    // The API's shape: times in RFC 3339, categories a list.
    let published_at = articles[0]["published_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(published_at).is_ok(),
        "{published_at}"
    );
    assert!(articles[0]["categories"].is_array());
    run(&["article", "unpublish", "harbour-reopens"]);
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 404);
    let listed = String::from_utf8_lossy(&run(&["article", "list"])).into_owned();
    assert!(listed.starts_with("draft"), "{listed}");
    run(&["article", "publish", "harbour-reopens"]);
    assert_eq!(app.get("/articles/harbour-reopens").await.status(), 200);
    let missing = cli_for(&app)
        .args(["article", "publish", "nope"])
        .output()
        .unwrap();
    assert!(!missing.status.success());

    let readers: serde_json::Value = serde_json::from_slice(&run(&[
        "subscriber",
        "list",
        "--status",
        "confirmed",
        "--json",
    ]))
    .unwrap();
    assert_eq!(readers.as_array().unwrap().len(), 1);
    assert_eq!(readers[0]["email"], "reader@example.com");

    let started = app.send_digest_now().await;
    let broadsheet::digest::Started::Campaign { id, .. } = started else {
        panic!("a campaign: {started:?}");
    };
    run(&["digest", "pause", &id]);
    let status: serde_json::Value =
        serde_json::from_slice(&run(&["digest", "status", &id, "--json"])).unwrap();
    assert_eq!(
        (status[0]["status"].as_str(), status[0]["pending"].as_i64()),
        (Some("paused"), Some(1))
    );
    let twice = cli_for(&app)
        .args(["digest", "pause", &id])
        .output()
        .unwrap();
    assert!(!twice.status.success(), "pausing twice says why");
    assert!(String::from_utf8_lossy(&twice.stderr).contains("paused"));
    run(&["digest", "resume", &id]);
    run(&["digest", "cancel", &id]);
    let text = String::from_utf8_lossy(&run(&["digest", "status"])).into_owned();
    assert!(text.contains("cancelled") && text.contains(&id), "{text}");
    assert_eq!(app.drain_outbox().await.claimed, 0);
    assert_eq!(
        app.scalar("SELECT COUNT(*) FROM audit_log WHERE actor = 'cli' AND action LIKE 'digest.%'")
            .await,
        4
    );
    app.stop().await;
}

async fn suppression_commands_add_list_and_remove_an_address_audited(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    let run = |args: &[&str]| {
        let output = cli_for(&app).args(args).output().unwrap();
        // The last line: log lines (a warning about the key) may come first.
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr.lines().last().unwrap_or("").to_owned();
        (output.status.success(), said)
    };
    let note = ["--note", "asked by phone"];
    let added = run(&[&["suppression", "add", "Someone@Example.com"][..], &note].concat());
    assert_eq!(added, (true, "suppressed".into()));
    let again = run(&["suppression", "add", "someone@example.com"]);
    assert_eq!(again, (true, "already suppressed".into()));
    let (listed, said) = run(&["suppression", "list", "--address", "someone@example.com"]);
    assert!(
        listed && said.contains("manual") && said.contains("asked by phone"),
        "{said}"
    );
    let audit =
        "SELECT COUNT(*) FROM audit_log WHERE actor = 'cli' AND action LIKE 'suppression.%'";
    assert_eq!(app.scalar(audit).await, 1);
    let removed = run(&["suppression", "remove", "someone@example.com"]);
    assert_eq!(removed, (true, "removed".into()));
    assert_eq!(app.scalar(audit).await, 2);
    let (removed, said) = run(&["suppression", "remove", "someone@example.com"]);
    assert!(
        !removed && said.contains("not on the suppression list"),
        "{said}"
    );
    let (added, said) = run(&["suppression", "add", "not an address"]);
    assert!(!added && said.contains("not an email address"), "{said}");
    app.stop().await;
}

async fn webhook_commands_add_list_turn_off_and_on_and_remove_an_endpoint(backend: Backend) {
    let app = support::TestApp::spawn(backend).await;
    let run = |args: &[&str]| {
        let out = cli_for(&app).args(args).output().unwrap();
        let text = |bytes: &[u8]| String::from_utf8_lossy(bytes).into_owned();
        (out.status.success(), text(&out.stdout), text(&out.stderr))
    };
    let (ok, _, said) = run(&["webhook", "add", "http://127.0.0.1/hooks"]);
    assert!(
        !ok && said.contains("127.0.0.1 is a private address"),
        "{said}"
    );
    let (ok, _, said) = run(&[
        "webhook",
        "add",
        "https://crm.example.com/h",
        "--events",
        "subscriber.gone",
    ]);
    assert!(!ok && said.contains("is not an event type"), "{said}");
    let add = [
        "webhook",
        "add",
        "https://crm.example.com/h",
        "--events",
        "subscriber.confirmed",
    ];
    let (ok, printed, said) = run(&add);
    assert!(ok, "{said}");
    let lines: Vec<&str> = printed.lines().collect();
    let (id, secret) = (lines[0], lines[1]);
    assert!(secret.starts_with("whsec_"), "{printed}");
    let (_, listed, _) = run(&["webhook", "list"]);
    assert!(
        listed.contains(id) && listed.contains(" on ") && !listed.contains(secret),
        "{listed}"
    );
    let (ok, off, _) = run(&["webhook", "disable", id]);
    assert!(
        ok && off.contains(" off ") && off.contains("turned off by cli"),
        "{off}"
    );
    let (ok, on, _) = run(&["webhook", "enable", id]);
    assert!(ok && on.contains(" on "), "{on}");
    assert!(run(&["webhook", "remove", id]).0);
    let (ok, _, said) = run(&["webhook", "remove", id]);
    assert!(!ok && said.contains("no such endpoint"), "{said}");
    let audited = "SELECT COUNT(*) FROM audit_log WHERE actor = 'cli' AND action LIKE 'webhook.%'";
    assert_eq!(app.scalar(audited).await, 4, "add, disable, enable, remove");
    app.stop().await;
}
