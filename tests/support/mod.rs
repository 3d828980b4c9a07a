//! The real application on port 0, a fresh database per test (SQLite file,
//! or a PostgreSQL schema of its own when `BROADSHEET_TEST_POSTGRES_URL` is
//! set), a recording SMTP server, and an HTTP client with a cookie jar;
//! Dovecot for the bounce mailbox (`imap`).
#![allow(dead_code, unused_imports)]

pub mod hooks;
pub mod imap;
pub mod nginx;
pub mod relay;
pub mod sink;
pub mod smtp;

use std::time::Duration;

use broadsheet::{
    app::{App, Role},
    clock::Clock,
    config::{Config, MailTransport, Secret},
    delivery::{BatchOutcome, Worker},
    store::Store,
};
use sqlx::{Connection, Executor};
use tokio::{net::TcpListener, task::JoinHandle};
use tokio_util::sync::CancellationToken;

pub use smtp::{DataFault, ReceivedMail, Reply, ServerTls, SmtpServer, free_port};

/// Whether `path` (a program or file a test needs from outside) is here.
/// Where it is missing the test says it is skipped, unless `required` is
/// set in the environment, as CI does: then it fails, saying how to
/// install it.
pub fn installed(path: &str, required: &str, install: &str, test: &str) -> bool {
    if std::path::Path::new(path).exists() {
        return true;
    }
    assert!(
        std::env::var(required).is_err(),
        "{path} is missing: {install}"
    );
    eprintln!("SKIPPED {test} test: {install} to run it");
    false
}

/// Generates, for each named `async fn(Backend)`, a module with one test per
/// database. The PostgreSQL one is ignored, and says why, unless
/// `BROADSHEET_TEST_POSTGRES_URL` was set when the tests were built.
#[macro_export]
macro_rules! storage_tests {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(
                not(postgres_tests),
                ignore = "set BROADSHEET_TEST_POSTGRES_URL when building to run it on PostgreSQL"
            )]
            async fn postgres() {
                super::$name($crate::support::Backend::Postgres).await;
            }
        }
    )*};
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

const POSTGRES_ENV: &str = "BROADSHEET_TEST_POSTGRES_URL";

/// The PostgreSQL database the tests share. Each test holds a schema of
/// it, a slot, for as long as it runs: slots are kept from run to run with
/// their tables emptied, because creating a database or migrating a schema
/// for each test cost most of a second once eight tests did so at once.
const SHARED_POSTGRES_DATABASE: &str = "broadsheet_tests";

/// The first key of the advisory locks that say which slot a test holds.
const SLOT_LOCK_KEY: i32 = 0x6273;

/// A database of one test's own: a SQLite file, or a PostgreSQL slot that
/// the test's connections see first (`search_path`).
pub struct TestDatabase {
    pub url: String,
    /// Holds the slot's lock until the test ends (or its process dies).
    _slot: Option<sqlx::PgConnection>,
    _dir: tempfile::TempDir,
}

impl TestDatabase {
    pub async fn create(backend: Backend) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        match backend {
            Backend::Sqlite => Self {
                url: format!("sqlite://{}", dir.path().join("broadsheet.db").display()),
                _slot: None,
                _dir: dir,
            },
            Backend::Postgres => {
                // The PostgreSQL variants are compiled to run only when the
                // URL was set at build time (build.rs); without it now, fail
                // rather than pass unrun.
                let admin = std::env::var(POSTGRES_ENV).unwrap_or_else(|_| {
                    panic!("{POSTGRES_ENV} was set when the tests were built, and must be now")
                });
                let shared = shared_postgres_database(&admin).await;
                let (slot, schema) = take_slot(&shared).await;
                // The application name lets a test tell its own sessions
                // from other tests' in pg_stat_activity.
                let separator = if shared.contains('?') { '&' } else { '?' };
                let url = format!(
                    "{shared}{separator}options=-c%20search_path%3D{schema}&application_name={schema}"
                );
                Self {
                    url,
                    _slot: Some(slot),
                    _dir: dir,
                }
            }
        }
    }
}

/// Locks the first free slot and empties it: a schema named after the
/// migrations (a slot made by other migrations is never reused), migrated
/// once by the first test to use it, its tables emptied for each next one.
async fn take_slot(shared: &str) -> (sqlx::PgConnection, String) {
    let mut conn = sqlx::PgConnection::connect(shared)
        .await
        .expect("connect to PostgreSQL");
    let migrations = migrations_fingerprint();
    for n in 0.. {
        let free: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1, $2)")
            .bind(SLOT_LOCK_KEY)
            .bind(n)
            .fetch_one(&mut conn)
            .await
            .expect("try a slot's lock");
        if !free {
            continue;
        }
        let schema = format!("bs_slot_{migrations:016x}_{n}");
        conn.execute(format!("CREATE SCHEMA IF NOT EXISTS {schema}").as_str())
            .await
            .expect("create the slot's schema");
        let tables: Vec<String> = sqlx::query_scalar(
            "SELECT quote_ident(tablename::text) FROM pg_tables \
             WHERE schemaname = $1 AND tablename <> '_sqlx_migrations'",
        )
        .bind(&schema)
        .fetch_all(&mut conn)
        .await
        .expect("list the slot's tables");
        // One statement deleting from every table: foreign keys are checked
        // at its end, when every table is empty. (TRUNCATE makes new files
        // for each table and index, which cost more than all the rest of a
        // test's setup.)
        if !tables.is_empty() {
            let deletes: Vec<String> = tables
                .iter()
                .enumerate()
                .map(|(i, table)| format!("d{i} AS (DELETE FROM {schema}.{table})"))
                .collect();
            conn.execute(format!("WITH {} SELECT 1", deletes.join(", ")).as_str())
                .await
                .expect("empty the slot");
        }
        return (conn, schema);
    }
    unreachable!("there is always a next slot")
}

/// A hash of the migration files: slots are per set of migrations, so a
/// changed or added migration never meets a schema made by the old ones.
fn migrations_fingerprint() -> u64 {
    use std::hash::{Hash, Hasher};
    let folder = concat!(env!("CARGO_MANIFEST_DIR"), "/migrations");
    let mut files: Vec<_> = std::fs::read_dir(folder)
        .expect("the migrations folder")
        .map(|entry| entry.expect("a migration").path())
        .collect();
    files.sort();
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for file in files {
        file.file_name().hash(&mut hasher);
        std::fs::read(&file).expect("a migration").hash(&mut hasher);
    }
    hasher.finish()
}

/// The URL of [`SHARED_POSTGRES_DATABASE`] on the server `admin` points at,
/// created by the first test that needs it.
async fn shared_postgres_database(admin: &str) -> String {
    let (base, query) = admin
        .split_once('?')
        .map_or((admin, None), |(b, q)| (b, Some(q)));
    let base = &base[..base.rfind('/').expect("URL has a path")];
    let shared = match query {
        Some(query) => format!("{base}/{SHARED_POSTGRES_DATABASE}?{query}"),
        None => format!("{base}/{SHARED_POSTGRES_DATABASE}"),
    };
    if sqlx::PgConnection::connect(&shared).await.is_err() {
        let mut conn = sqlx::PgConnection::connect(admin)
            .await
            .expect("connect to PostgreSQL");
        // Several test processes may get here at once: one creates it, and
        // the others' errors ("already exists", or a unique violation while
        // the first is still creating it) are fine if the database is there.
        let created = conn
            .execute(format!("CREATE DATABASE {SHARED_POSTGRES_DATABASE}").as_str())
            .await;
        conn.close().await.ok();
        if let Err(error) = created {
            for _ in 0..50 {
                if sqlx::PgConnection::connect(&shared).await.is_ok() {
                    return shared;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            panic!("cannot create the tests' database: {error}");
        }
    }
    shared
}

pub struct TestApp {
    pub base_url: String,
    /// The first browser; `app.get(…)` and friends go through it.
    pub browser: Browser,
    pub clock: Clock,
    pub smtp: Option<SmtpServer>,
    pub worker: Worker,
    /// The outgoing webhooks' sender (tests call `deliver_due` themselves).
    pub webhooks: broadsheet::webhooks::WebhookSender,
    pub store: Store,
    pub links: broadsheet::domain::LinkSigner,
    pub feedbacks: broadsheet::feedback::Feedbacks,
    /// The app's own signup service, writing through its signup writer.
    pub signup: broadsheet::signup::Signup,
    pub config: Config,
    stop: CancellationToken,
    server: JoinHandle<anyhow::Result<()>>,
    /// Last: dropped after the app, so a PostgreSQL slot is let go only
    /// once nothing of this test writes to it.
    database: TestDatabase,
}

impl TestApp {
    /// The app with test defaults: SMTP to a fresh recording server, HTTP
    /// only (tests drain the queue themselves, STYLE 4).
    pub async fn spawn(backend: Backend) -> Self {
        Self::spawn_with(backend, Role::Web, |_| {}).await
    }

    /// As [`spawn`], with the config adjusted first. `smtp.port` may be set to
    /// a port with no server, to start one later (`smtp` is then `None`).
    pub async fn spawn_with(
        backend: Backend,
        role: Role,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        Self::spawn_sending_to(backend, role, SmtpServer::start().await, adjust).await
    }

    /// As [`spawn_with`], sending to `smtp`.
    pub async fn spawn_sending_to(
        backend: Backend,
        role: Role,
        smtp: SmtpServer,
        adjust: impl FnOnce(&mut Config),
    ) -> Self {
        let database = TestDatabase::create(backend).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind HTTP");
        let base_url = format!("http://{}", listener.local_addr().expect("addr"));
        let mut config = Config::default();
        config.server.base_url = base_url.clone();
        config.database.url = Secret::new(database.url.clone());
        config.database.max_connections = 5;
        config.mail.transport = MailTransport::Smtp;
        config.mail.from = "Lord's Press <news@lordspress.test>"
            .parse()
            .expect("a mailbox");
        config.mail.file_dir = database._dir.path().join("mail");
        config.smtp.port = smtp.addr.port();
        config.smtp.timeout = Duration::from_secs(5);
        config.signup.per_ip_per_hour = 1000;
        config.server.token_misses_per_ip_per_hour = 1000;
        config.delivery.poll_interval = Duration::from_millis(50);
        adjust(&mut config);
        let smtp = (config.smtp.port == smtp.addr.port()).then_some(smtp);
        let clock = Clock::default();
        let app = App::build(config.clone(), clock.clone())
            .await
            .expect("app builds");
        let worker = app.worker();
        let webhooks = app.webhook_sender();
        let store = app.store();
        let links = app.links();
        let feedbacks = app.feedbacks();
        let signup = app.signup();
        let stop = CancellationToken::new();
        let server = tokio::spawn(app.run(Some(listener), role, stop.clone().cancelled_owned()));
        let browser = Browser::new(&base_url);
        Self {
            base_url,
            browser,
            clock,
            smtp,
            worker,
            webhooks,
            store,
            links,
            feedbacks,
            signup,
            config,
            database,
            stop,
            server,
        }
    }

    /// Stops the app gracefully; the test's PostgreSQL slot is freed when
    /// the app is dropped.
    pub async fn stop(self) {
        self.stop.cancel();
        self.server
            .await
            .expect("server task")
            .expect("server stops cleanly");
    }

    /// Another browser, with a cookie jar of its own.
    pub fn new_browser(&self) -> Browser {
        Browser::new(&self.base_url)
    }

    /// Signs `email` up and confirms it; returns the path of the
    /// set-password link from the credentials email.
    pub async fn confirmed_reader(&self, email: &str, newsletter: bool) -> String {
        assert_eq!(self.sign_up(email, newsletter).await.status(), 200);
        self.drain_outbox().await;
        let confirm = link_path(&self.last_mail_to(email).text(), &self.base_url, "confirm");
        assert_eq!(self.confirm(&confirm).await.status(), 200);
        self.drain_outbox().await;
        link_path(
            &self.last_mail_to(email).text(),
            &self.base_url,
            "account/password",
        )
    }

    /// A confirmed reader with `password` set; returns nothing, signs nobody in.
    pub async fn reader_with_password(&self, email: &str, password: &str) {
        let path = self.confirmed_reader(email, false).await;
        let response = self.submit(&path, &path, &[("password", password)]).await;
        assert_eq!(response.status(), 303, "setting the password");
        self.drain_outbox().await;
    }

    /// The newest message received for `address` (compared case-insensitively).
    pub fn last_mail_to(&self, address: &str) -> ReceivedMail {
        let wanted = format!("<{}>", address.to_lowercase());
        self.received()
            .into_iter()
            .rev()
            .find(|mail| mail.to.iter().any(|to| to.to_lowercase() == wanted))
            .unwrap_or_else(|| panic!("no mail to {address}"))
    }

    /// The text parts of every digest (a message with `List-Id`) `address` received, oldest first.
    pub fn digests_to(&self, address: &str) -> Vec<String> {
        let wanted = format!("<{}>", address.to_lowercase());
        self.received()
            .into_iter()
            .filter(|mail| mail.to.iter().any(|to| to.to_lowercase() == wanted))
            .filter(|mail| mail.parsed().header_raw("List-Id").is_some())
            .map(|mail| mail.text())
            .collect()
    }

    /// A confirmed reader who consented to the digest, with the preferences
    /// given set through their preference centre (`frequency` "daily" or
    /// "weekly"; no topics means every topic).
    pub async fn digest_reader(&self, email: &str, frequency: &str, topics: &[&str], paused: bool) {
        self.confirmed_reader(email, true).await;
        if frequency == "daily" && topics.is_empty() && !paused {
            return;
        }
        self.set_preferences(email, frequency, topics, paused).await;
    }

    /// Keeps the digest on and sets its preferences through the reader's
    /// preference centre, as they would.
    pub async fn set_preferences(
        &self,
        email: &str,
        frequency: &str,
        topics: &[&str],
        paused: bool,
    ) {
        let link = self
            .reader_link(email, broadsheet::domain::LinkPurpose::Preferences)
            .await;
        let page = self.get(&link).await.text().await.expect("body");
        let version = hidden_field(&page, "consent_version");
        let mut fields = vec![
            ("frequency", frequency),
            ("consent_version", version.as_str()),
            ("digest", "on"),
        ];
        fields.extend(topics.iter().map(|t| ("topic", *t)));
        if paused {
            fields.push(("paused", "on"));
        }
        assert_eq!(self.submit(&link, &link, &fields).await.status(), 200);
    }

    /// The id of the subscriber with this canonical address.
    pub async fn subscriber_id(&self, canonical: &str) -> String {
        sqlx::query_scalar("SELECT id FROM subscribers WHERE email_canonical = $1")
            .bind(canonical)
            .fetch_one(self.store.pool())
            .await
            .expect("a subscriber")
    }

    /// The path of a reader's unsubscribe or preferences link.
    pub async fn reader_link(
        &self,
        canonical: &str,
        purpose: broadsheet::domain::LinkPurpose,
    ) -> String {
        let id = self.subscriber_id(canonical).await;
        let prefix = match purpose {
            broadsheet::domain::LinkPurpose::Unsubscribe => "unsubscribe",
            broadsheet::domain::LinkPurpose::Preferences => "preferences",
        };
        format!(
            "/{prefix}/{}",
            self.links.token(purpose, &id).expect("a uuid")
        )
    }

    /// "Send now" for the first configured schedule, as the CLI does it.
    pub async fn send_digest_now(&self) -> broadsheet::digest::Started {
        let schedule = self.config.digest.schedules.first().expect("a schedule");
        broadsheet::digest::send_now(
            &self.store,
            &self.clock,
            schedule,
            false,
            &broadsheet::audit::Actor::cli(),
        )
        .await
        .expect("send now")
    }

    /// Stores an article from Markdown with front matter.
    pub async fn import_article(&self, markdown: &str) {
        let article = broadsheet::articles::parse_markdown_file(markdown).expect("a valid article");
        broadsheet::articles::save(&self.store, &self.clock, &article)
            .await
            .expect("saved");
    }

    /// Creates an editor with `password` through the library, as
    /// `broadsheet editor add --password-stdin` does.
    pub async fn editor(&self, email: &str, role: broadsheet::editors::Role, password: &str) {
        let editors = broadsheet::editors::Editors::new(
            self.store.clone(),
            self.clock.clone(),
            broadsheet::accounts::PasswordHasher::new(1, Duration::from_secs(60)).expect("hasher"),
            self.config.editors.clone(),
        );
        let address = broadsheet::domain::EmailAddress::parse(email).expect("an address");
        let (link, _) = editors
            .add(&address, role, &broadsheet::audit::Actor::cli())
            .await
            .expect("editor added");
        let password = broadsheet::domain::NewPassword::parse(password).expect("a password");
        assert!(editors.set_password(&link, &password).await.expect("set"));
    }

    /// A new API token of `role`, as `broadsheet token create` makes it.
    pub async fn api_token(&self, name: &str, role: broadsheet::editors::Role) -> String {
        broadsheet::editors::tokens::create(
            &self.store,
            &self.clock,
            name,
            role,
            &broadsheet::audit::Actor::cli(),
        )
        .await
        .expect("token created")
        .expect("a name not yet taken")
        .expose()
    }

    /// A new browser signed in to the console as a new editor of `role`.
    pub async fn signed_in_editor(&self, email: &str, role: broadsheet::editors::Role) -> Browser {
        self.editor(email, role, "correct horse battery").await;
        let browser = self.new_browser();
        let response = browser
            .submit(
                "/admin/login",
                "/admin/login",
                &[("email", email), ("password", "correct horse battery")],
            )
            .await;
        assert_eq!(response.status(), 303, "editor sign-in");
        browser
    }

    /// The worker of a second instance on the same database, configured
    /// and timed alike: what it claims, this app's worker does not.
    pub async fn another_instance_worker(&self) -> Worker {
        App::build(self.config.clone(), self.clock.clone())
            .await
            .expect("a second instance builds")
            .worker()
    }

    /// The webhook sender of a second instance on the same database.
    pub async fn another_instance_webhook_sender(&self) -> broadsheet::webhooks::WebhookSender {
        App::build(self.config.clone(), self.clock.clone())
            .await
            .expect("a second instance builds")
            .webhook_sender()
    }

    /// Runs delivery batches (account mail and digests) until nothing is due.
    pub async fn drain_outbox(&self) -> BatchOutcome {
        drain(&self.worker).await
    }

    pub fn received(&self) -> Vec<ReceivedMail> {
        self.smtp.as_ref().expect("an SMTP server").received()
    }

    /// One integer from the database, e.g. a count.
    pub async fn scalar(&self, sql: &str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect(sql)
    }

    /// One optional text value from the database.
    pub async fn text(&self, sql: &str) -> Option<String> {
        sqlx::query_scalar(sql)
            .fetch_one(self.store.pool())
            .await
            .expect(sql)
    }

    /// `broadsheet subscriber import legacy.csv` of `csv`, with the
    /// configured newsletter wording, as the command does it.
    pub async fn import_csv(&self, csv: &str) -> broadsheet::import::ImportReport {
        let wording = broadsheet::consent::register_wording(
            &self.store,
            &self.clock,
            broadsheet::consent::NEWSLETTER,
            &self.config.signup.newsletter_consent_text,
        )
        .await
        .unwrap();
        let key = broadsheet::privacy::suppression_key(&self.store, &self.config)
            .await
            .unwrap();
        broadsheet::import::import(
            &self.store,
            csv.as_bytes(),
            "legacy.csv",
            &wording.id,
            key.as_bytes(),
            |_| {},
        )
        .await
        .unwrap()
    }

    /// On PostgreSQL, how many of this test's connections are still idle
    /// inside a transaction after up to 5 s: one being written between two
    /// statements is so for a moment, only one left behind stays so.
    pub async fn pg_transactions_left_open(&self) -> i64 {
        let url = self.config.database.url.expose();
        let mut other = sqlx::PgConnection::connect(url).await.unwrap();
        let open = "SELECT COUNT(*) FROM pg_stat_activity
                    WHERE datname = current_database() AND state LIKE 'idle in transaction%'
                      AND application_name = current_setting('application_name')";
        let mut left_open = -1_i64;
        for _ in 0..50 {
            left_open = sqlx::query_scalar(open)
                .fetch_one(&mut other)
                .await
                .unwrap();
            if left_open == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        left_open
    }
}

impl std::ops::Deref for TestApp {
    type Target = Browser;

    fn deref(&self) -> &Browser {
        &self.browser
    }
}

/// An HTTP client with its own cookie jar that does not follow redirects.
/// Runs `worker`'s delivery batches (account mail and digests) until
/// nothing is due.
pub async fn drain(worker: &Worker) -> BatchOutcome {
    let never = CancellationToken::new();
    let mut total = BatchOutcome::default();
    loop {
        let mut batch = worker.deliver_batch(&never).await.expect("batch");
        batch.add(worker.deliver_digests(&never).await.expect("digest batch"));
        if batch.claimed == 0 {
            return total;
        }
        total.add(batch);
    }
}

pub struct Browser {
    pub base_url: String,
    pub client: reqwest::Client,
}

impl Browser {
    pub fn new(base_url: &str) -> Self {
        Self::with_headers(base_url, reqwest::header::HeaderMap::new())
    }

    /// A browser whose requests come, by `X-Forwarded-For`, from `ip`: the
    /// app must trust 127.0.0.1 as a proxy (`server.trusted_proxies`).
    pub fn forwarded_for(base_url: &str, ip: &str) -> Self {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("x-forwarded-for", ip.parse().expect("an address"));
        Self::with_headers(base_url, headers)
    }

    fn with_headers(base_url: &str, headers: reqwest::header::HeaderMap) -> Self {
        Self::with(
            base_url,
            reqwest::Client::builder().default_headers(headers),
        )
    }

    /// A browser from `builder` (a trusted certificate, a local address…),
    /// with a cookie jar, no redirects followed and a 30 s timeout.
    pub fn with(base_url: &str, builder: reqwest::ClientBuilder) -> Self {
        let client = builder
            .cookie_store(true)
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .expect("client");
        Self {
            base_url: base_url.to_owned(),
            client,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client.get(self.url(path)).send().await.expect("GET")
    }

    pub async fn post_form(&self, path: &str, fields: &[(&str, &str)]) -> reqwest::Response {
        let body = fields
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        self.client
            .post(self.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .expect("POST")
    }

    /// Loads the signup form and submits it as a browser would.
    pub async fn sign_up(&self, email: &str, newsletter: bool) -> reqwest::Response {
        let form = self.get("/subscribe").await.text().await.expect("body");
        let csrf = hidden_field(&form, "csrf");
        let version = hidden_field(&form, "consent_version");
        let mut fields = vec![
            ("email", email),
            ("csrf", csrf.as_str()),
            ("consent_version", version.as_str()),
        ];
        if newsletter {
            fields.push(("newsletter", "yes"));
        }
        self.post_form("/subscribe", &fields).await
    }

    /// Opens a confirmation link and presses its button.
    pub async fn confirm(&self, link_path: &str) -> reqwest::Response {
        let page = self.get(link_path).await.text().await.expect("body");
        let csrf = hidden_field(&page, "csrf");
        self.post_form(link_path, &[("csrf", csrf.as_str())]).await
    }

    /// Loads a page with a form and submits it with the page's CSRF token.
    pub async fn submit(
        &self,
        page_path: &str,
        action: &str,
        fields: &[(&str, &str)],
    ) -> reqwest::Response {
        let page = self.get(page_path).await.text().await.expect("body");
        let csrf = hidden_field(&page, "csrf");
        let mut fields = fields.to_vec();
        fields.push(("csrf", csrf.as_str()));
        self.post_form(action, &fields).await
    }

    pub async fn sign_in(&self, email: &str, password: &str) -> reqwest::Response {
        self.submit(
            "/login",
            "/login",
            &[("email", email), ("password", password)],
        )
        .await
    }
}

/// The value of `<input … name="NAME" value="…">` on a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let pattern = format!(r#"name="{name}" value="([^"]*)""#);
    regex_lite::Regex::new(&pattern)
        .expect("regex")
        .captures(html)
        .unwrap_or_else(|| panic!("no field {name} in page"))[1]
        .to_owned()
}

/// The path of the first `{base_url}/PREFIX/<token>` link in a text.
pub fn link_path(text: &str, base_url: &str, prefix: &str) -> String {
    let pattern = format!(
        r"{}(/{prefix}/[0-9a-f]{{64}})",
        regex_lite::escape(base_url)
    );
    regex_lite::Regex::new(&pattern)
        .expect("regex")
        .captures(text)
        .unwrap_or_else(|| panic!("no /{prefix}/ link in:\n{text}"))[1]
        .to_owned()
}

fn urlencode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".into(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
