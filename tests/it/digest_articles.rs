//! Which articles a digest carries, seen from the reader's inbox: every
//! article its schedule has not sent yet, whatever the article's date and
//! whenever it arrived (late feed entries, backdated imports, republished
//! pieces), once per schedule, within the schedule's age limit.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::{
    sync::{Arc, Mutex},
    time::Duration,
};

use axum::{Router, routing::get};
use broadsheet::{
    audit::Actor,
    digest::{self, Started},
    domain::{Feed, FeedConfig, Frequency, Schedule, ScheduleConfig},
    editors::Role,
    feeds,
};
use chrono::{DateTime, Utc};
use support::{Backend, TestApp};

storage_tests!(
    a_backdated_import_after_a_digest_reaches_the_next_one,
    a_late_feed_entry_is_sent_and_a_changed_one_is_not_sent_again,
    feed_entries_follow_the_rules_of_every_article,
    republishing_an_article_does_not_send_it_again,
    a_digest_cancelled_before_it_sent_anything_leaves_its_articles_to_the_next,
    daily_and_weekly_schedules_each_send_an_article_once,
    articles_older_than_the_age_limit_stay_out,
    a_firing_racing_send_now_sends_each_article_once,
    a_fresh_install_sends_its_first_digest_with_the_example_articles,
);

const READER: &str = "reader@example.com";

/// The app with one daily digest reader, [`READER`], whose account mail is sent.
async fn app_with_a_reader(backend: Backend) -> TestApp {
    let app = TestApp::spawn(backend).await;
    app.digest_reader(READER, "daily", &[], false).await;
    app.drain_outbox().await;
    app
}

/// An article titled `title`, published at `published`.
async fn article(app: &TestApp, slug: &str, title: &str, published: DateTime<Utc>) {
    app.import_article(&format!(
        "+++\ntitle = \"{title}\"\nslug = \"{slug}\"\ncategories = [\"city\"]\npublished_at = \"{}\"\n+++\nBody of {slug}.\n",
        published.to_rfc3339()
    ))
    .await;
}

fn ago(app: &TestApp, minutes: i64) -> DateTime<Utc> {
    app.clock.now() - chrono::Duration::minutes(minutes)
}

fn schedule(app: &TestApp, name: &str) -> Schedule {
    app.config
        .digest
        .schedules
        .iter()
        .find(|s| s.name == name)
        .unwrap()
        .clone()
}

/// An editor's "send now" of schedule `name`, its deliveries then made.
async fn send_now(app: &TestApp, name: &str) -> Started {
    let started = digest::send_now(
        &app.store,
        &app.clock,
        &schedule(app, name),
        false,
        &Actor::cli(),
    )
    .await
    .unwrap();
    app.drain_outbox().await;
    started
}

fn articles_of(started: &Started) -> u64 {
    match started {
        Started::Campaign { articles, .. } => *articles,
        other => panic!("no campaign: {other:?}"),
    }
}

/// How many of `address`'s digests mention `title`.
fn times_received(app: &TestApp, address: &str, title: &str) -> usize {
    app.digests_to(address)
        .iter()
        .filter(|text| text.contains(title))
        .count()
}

async fn a_backdated_import_after_a_digest_reaches_the_next_one(backend: Backend) {
    let (app, reader) = (app_with_a_reader(backend).await, READER);
    article(&app, "first", "First story", ago(&app, 60)).await;
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    // Imported after that digest, dated before it (ten minutes back, and
    // yesterday): behind any watermark, never in a digest yet.
    app.clock.advance(Duration::from_secs(60));
    article(&app, "late", "Late story", ago(&app, 10)).await;
    article(&app, "yesterday", "Yesterday's story", ago(&app, 24 * 60)).await;
    assert_eq!(articles_of(&send_now(&app, "daily").await), 2);
    assert_eq!(app.digests_to(reader).len(), 2);
    for title in ["First story", "Late story", "Yesterday's story"] {
        assert_eq!(times_received(&app, reader, title), 1, "{title}");
    }
    // Imported again, even with its date corrected, it was sent: not again.
    article(&app, "late", "Late story", ago(&app, 11)).await;
    assert_eq!(send_now(&app, "daily").await, Started::NothingNew);
    app.stop().await;
}

/// A feed server whose document the test can change between polls.
async fn feed_server(document: Arc<Mutex<String>>) -> String {
    let app = Router::new().route(
        "/feed.xml",
        get(move || {
            let body = document.lock().unwrap().clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/feed.xml")
}

/// An RSS item; `extra` goes inside it as it is.
fn item(guid: &str, title: &str, published: DateTime<Utc>, extra: &str) -> String {
    format!(
        "<item><title>{title}</title><link>https://wire.example/{guid}</link><guid>{guid}</guid>\
         <description>About {guid}.</description><pubDate>{}</pubDate>{extra}</item>",
        published.to_rfc2822()
    )
}

fn rss(items: &[String]) -> String {
    format!(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>The Wire</title>{}</channel></rss>",
        items.concat()
    )
}

fn wire(url: &str, categories: &[&str]) -> Feed {
    Feed::parse(&FeedConfig {
        url: url.into(),
        poll: "*/15 * * * *".into(),
        categories: categories.iter().map(|c| (*c).to_owned()).collect(),
        allow_private: true,
    })
    .unwrap()
}

async fn a_late_feed_entry_is_sent_and_a_changed_one_is_not_sent_again(backend: Backend) {
    let (app, reader) = (app_with_a_reader(backend).await, READER);
    let document = Arc::new(Mutex::new(String::new()));
    let feed = wire(&feed_server(document.clone()).await, &["wire"]);
    let tides = item("tides", "Tide tables", ago(&app, 30), "");
    *document.lock().unwrap() = rss(std::slice::from_ref(&tides));
    assert_eq!(
        feeds::poll(&app.store, &app.clock, &feed)
            .await
            .unwrap()
            .new,
        1
    );
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);

    // Fifteen minutes on, the feed has an entry dated before that digest,
    // and the first entry's title was corrected.
    app.clock.advance(Duration::from_secs(15 * 60));
    let buses = item("buses", "Night buses", ago(&app, 20), "");
    let corrected = item("tides", "Tide tables, corrected", ago(&app, 45), "");
    *document.lock().unwrap() = rss(&[corrected, buses]);
    let polled = feeds::poll(&app.store, &app.clock, &feed).await.unwrap();
    assert_eq!((polled.new, polled.updated), (1, 1), "{polled:?}");
    assert_eq!(
        app.text("SELECT last_result FROM feeds").await.as_deref(),
        Some("2 entries, 1 new, 1 updated")
    );
    let title = "SELECT title FROM articles WHERE slug = 'tide-tables'";
    assert_eq!(
        app.text(title).await.as_deref(),
        Some("Tide tables, corrected")
    );
    // Polling the same document again changes nothing.
    let again = feeds::poll(&app.store, &app.clock, &feed).await.unwrap();
    assert_eq!((again.new, again.updated), (0, 0));

    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    assert_eq!(times_received(&app, reader, "Night buses"), 1);
    assert_eq!(times_received(&app, reader, "Tide tables"), 1, "sent once");
    assert_eq!(times_received(&app, reader, "Tide tables, corrected"), 0);
    app.stop().await;
}

async fn feed_entries_follow_the_rules_of_every_article(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let document = Arc::new(Mutex::new(String::new()));
    let feed = wire(&feed_server(document.clone()).await, &["wire"]);
    let many: String = (0..15)
        .map(|i| format!("<category>Tag {i}</category>"))
        .chain([
            "<category>a, b</category>".to_owned(),
            format!("<category>{}</category>", "x".repeat(51)),
        ])
        .collect();
    let now = app.clock.now();
    *document.lock().unwrap() = rss(&[
        item("bell", "Bell \u{9b} rings", now, ""),
        item("long", &"Long ".repeat(50), now, ""),
        item("tagged", "Many tags", now, &many),
    ]);
    let polled = feeds::poll(&app.store, &app.clock, &feed).await.unwrap();
    assert_eq!((polled.new, polled.skipped), (1, 2), "{polled:?}");
    assert_eq!(
        app.text("SELECT last_result FROM feeds").await.as_deref(),
        Some("3 entries, 1 new, 2 skipped as invalid")
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 1);
    let categories = "SELECT COUNT(*) FROM article_categories";
    assert_eq!(app.scalar(categories).await, 10, "at most ten");
    let bad = "SELECT COUNT(*) FROM article_categories WHERE category LIKE '%,%' OR LENGTH(category) > 50";
    assert_eq!(app.scalar(bad).await, 0);
    let own = "SELECT COUNT(*) FROM article_categories WHERE category = 'wire'";
    assert_eq!(
        app.scalar(own).await,
        1,
        "the feed's own category comes first"
    );
    // A configured feed's own categories are checked like an article's.
    let mut config = FeedConfig {
        url: "http://127.0.0.1/feed.xml".into(),
        poll: "*/15 * * * *".into(),
        categories: vec!["a,b".into()],
        allow_private: true,
    };
    assert!(Feed::parse(&config).is_err());
    config.categories = (0..11).map(|i| format!("c{i}")).collect();
    assert!(Feed::parse(&config).is_err());
    app.stop().await;
}

async fn republishing_an_article_does_not_send_it_again(backend: Backend) {
    let (app, reader) = (app_with_a_reader(backend).await, READER);
    article(&app, "typo", "A story with a typo", ago(&app, 30)).await;
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    let editor = app
        .signed_in_editor("editor@example.com", Role::Editor)
        .await;
    let id = app
        .text("SELECT id FROM articles WHERE slug = 'typo'")
        .await
        .unwrap();
    let path = format!("/admin/articles/{id}");
    for action in ["unpublish", "publish"] {
        let answer = editor.submit(&path, &format!("{path}/{action}"), &[]).await;
        assert_eq!(answer.status(), 303, "{action}");
    }
    // Another piece published meanwhile goes out; the republished one does not.
    article(&app, "fresh", "A fresh story", ago(&app, 1)).await;
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    assert_eq!(times_received(&app, reader, "A story with a typo"), 1);
    assert_eq!(times_received(&app, reader, "A fresh story"), 1);
    app.stop().await;
}

async fn a_digest_cancelled_before_it_sent_anything_leaves_its_articles_to_the_next(
    backend: Backend,
) {
    let (app, reader) = (app_with_a_reader(backend).await, READER);
    article(&app, "early", "An early story", ago(&app, 30)).await;
    let daily = schedule(&app, "daily");
    let started = digest::send_now(&app.store, &app.clock, &daily, false, &Actor::cli())
        .await
        .unwrap();
    let Started::Campaign { id, .. } = started else {
        panic!("{started:?}")
    };
    let control = digest::control::Control::Cancel;
    digest::control::apply(&app.store, &app.clock, &id, control, &Actor::cli())
        .await
        .unwrap();
    app.drain_outbox().await;
    assert_eq!(app.digests_to(reader).len(), 0, "cancelled before it sent");
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    assert_eq!(times_received(&app, reader, "An early story"), 1);
    assert_eq!(send_now(&app, "daily").await, Started::NothingNew);
    app.stop().await;
}

fn weekly() -> ScheduleConfig {
    ScheduleConfig {
        name: "weekly".into(),
        cron: "0 0 8 * * MON".into(),
        timezone: "UTC".into(),
        frequency: Frequency::Weekly,
        subject: None,
        max_article_age_h: None,
    }
}

/// The app with a daily and a weekly schedule, and a reader of each whose
/// account mail is sent.
async fn two_schedules(backend: Backend) -> TestApp {
    let app = TestApp::spawn_with(backend, broadsheet::app::Role::Web, |config| {
        let max_age = config.digest.max_article_age;
        let schedule = Schedule::parse(&weekly(), max_age).unwrap();
        config.digest.schedules.push(schedule);
    })
    .await;
    app.digest_reader("daily@example.com", "daily", &[], false)
        .await;
    app.digest_reader("weekly@example.com", "weekly", &[], false)
        .await;
    app.drain_outbox().await;
    app
}

async fn daily_and_weekly_schedules_each_send_an_article_once(backend: Backend) {
    let app = two_schedules(backend).await;
    article(&app, "one", "Story one", ago(&app, 30)).await;
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    article(&app, "two", "Story two", ago(&app, 10)).await;
    // The weekly schedule has sent neither; the daily one only the second.
    assert_eq!(articles_of(&send_now(&app, "weekly").await), 2);
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    for name in ["daily", "weekly"] {
        assert_eq!(send_now(&app, name).await, Started::NothingNew, "{name}");
    }
    for reader in ["daily@example.com", "weekly@example.com"] {
        for title in ["Story one", "Story two"] {
            assert_eq!(times_received(&app, reader, title), 1, "{reader}: {title}");
        }
    }
    assert_eq!(app.digests_to("weekly@example.com").len(), 1);
    app.stop().await;
}

async fn articles_older_than_the_age_limit_stay_out(backend: Backend) {
    let app = two_schedules(backend).await;
    // The default limit is 72 hours; a weekly digest reaches back a week.
    article(&app, "recent", "Recent story", ago(&app, 70 * 60)).await;
    article(&app, "old", "Old story", ago(&app, 80 * 60)).await;
    article(&app, "ancient", "Ancient story", ago(&app, 200 * 60)).await;
    let (waiting, _) = digest::upcoming_articles(&app.store, &app.clock, &schedule(&app, "daily"))
        .await
        .unwrap();
    assert_eq!(waiting.len(), 1, "the preview counts what would be sent");
    assert_eq!(articles_of(&send_now(&app, "daily").await), 1);
    assert_eq!(articles_of(&send_now(&app, "weekly").await), 2);
    assert_eq!(times_received(&app, "daily@example.com", "Recent story"), 1);
    assert_eq!(times_received(&app, "daily@example.com", "Old story"), 0);
    assert_eq!(times_received(&app, "weekly@example.com", "Old story"), 1);
    for reader in ["daily@example.com", "weekly@example.com"] {
        assert_eq!(times_received(&app, reader, "Ancient story"), 0, "{reader}");
    }
    app.stop().await;
}

async fn a_firing_racing_send_now_sends_each_article_once(backend: Backend) {
    let (app, reader) = (app_with_a_reader(backend).await, READER);
    let schedules = app.config.digest.schedules.clone();
    // First sight: the latest firing counts as acted on.
    assert!(
        digest::run_due(&app.store, &app.clock, &schedules)
            .await
            .unwrap()
            .is_empty()
    );
    let (daily, actor) = (&schedules[0], Actor::cli());
    // Several days, so that a missing lock shows whatever the interleaving.
    let days = 5;
    for day in 0..days {
        let next = daily.next_fire(app.clock.now()).unwrap();
        for (i, minutes) in [5, 50, 500].into_iter().enumerate() {
            let (slug, title) = (format!("story-{day}-{i}"), format!("Story {day}.{i}"));
            article(
                &app,
                &slug,
                &title,
                next - chrono::Duration::minutes(minutes),
            )
            .await;
        }
        app.clock
            .advance((next - app.clock.now()).to_std().unwrap() + Duration::from_secs(1));
        // Two instances fire while two editors press "Send now".
        let (a, b, c, d) = tokio::join!(
            digest::run_due(&app.store, &app.clock, &schedules),
            digest::run_due(&app.store, &app.clock, &schedules),
            digest::send_now(&app.store, &app.clock, daily, false, &actor),
            digest::send_now(&app.store, &app.clock, daily, false, &actor),
        );
        let mut started: Vec<Started> = a.unwrap().into_iter().chain(b.unwrap()).collect();
        started.extend([c.unwrap(), d.unwrap()]);
        let carried: u64 = started
            .iter()
            .map(|s| match s {
                Started::Campaign { articles, .. } => *articles,
                _ => 0,
            })
            .sum();
        assert_eq!(
            carried, 3,
            "day {day}: each article in one campaign: {started:?}"
        );
        app.drain_outbox().await;
    }
    let per_period = "SELECT COUNT(*) FROM campaigns WHERE period_key NOT LIKE '%:now:%'";
    assert!(
        app.scalar(per_period).await <= days,
        "one campaign per period at most"
    );
    for day in 0..days {
        for i in 0..3 {
            let title = format!("Story {day}.{i}");
            assert_eq!(times_received(&app, reader, &title), 1, "{title}");
        }
    }
    app.stop().await;
}

/// Presses "Send now" for the daily schedule in the console: the answer's
/// status and page.
async fn console_send_now(editor: &support::Browser) -> (u16, String) {
    let answer = editor
        .submit(
            "/admin/digests",
            "/admin/digests/send",
            &[("schedule", "daily")],
        )
        .await;
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn a_fresh_install_sends_its_first_digest_with_the_example_articles(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    // Whatever the day the newcomer arrives on.
    app.clock.advance(Duration::from_secs(90 * 24 * 3600));
    let editor = app
        .signed_in_editor("editor@example.com", Role::Editor)
        .await;
    let page = editor.get("/admin/digests").await.text().await.unwrap();
    assert!(page.contains("no digest has been sent yet"), "{page}");
    let (status, reason) = console_send_now(&editor).await;
    assert_eq!(status, 409);
    assert!(
        reason.contains("No digest of this schedule has been sent yet"),
        "{reason}"
    );

    let examples = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/articles");
    let (mut titles, mut dates) = (Vec::new(), Vec::new());
    for _ in 0..2 {
        titles.clear();
        for file in std::fs::read_dir(&examples).unwrap() {
            let text = std::fs::read_to_string(file.unwrap().path()).unwrap();
            let parsed = broadsheet::articles::parse_markdown_file(&text).unwrap();
            broadsheet::articles::save(&app.store, &app.clock, &parsed)
                .await
                .unwrap();
            titles.push(parsed.title);
        }
        dates.push(app.scalar("SELECT MAX(published_at) FROM articles").await);
        app.clock.advance(Duration::from_secs(60));
    }
    assert_eq!(titles.len(), 3);
    assert_eq!(
        dates[0], dates[1],
        "the README imports them at every start: dates stay"
    );
    app.digest_reader("reader@example.com", "daily", &[], false)
        .await;
    app.drain_outbox().await;

    let page = editor.get("/admin/digests").await.text().await.unwrap();
    assert!(page.contains("no digest has been sent yet"), "{page}");
    assert!(
        page.contains(r#"<strong class="upcoming">3</strong>"#),
        "{page}"
    );
    let preview = editor
        .get("/admin/digests/preview?schedule=daily")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(console_send_now(&editor).await.0, 303);
    app.drain_outbox().await;
    let digests = app.digests_to("reader@example.com");
    assert_eq!(digests.len(), 1);
    for title in &titles {
        // Templates escape the apostrophe in the HTML preview.
        assert!(
            preview.contains(&title.replace('\'', "&#x27;")),
            "{title}: {preview}"
        );
        assert!(digests[0].contains(title.as_str()), "{title}");
    }
    let page = editor.get("/admin/digests").await.text().await.unwrap();
    assert!(page.contains("Last digest:") && !page.contains("no digest has been sent yet"));
    assert!(
        page.contains(r#"<strong class="upcoming">0</strong>"#),
        "{page}"
    );
    let (status, reason) = console_send_now(&editor).await;
    assert_eq!(status, 409);
    assert!(
        reason.contains("Every article published in the last 72 hours is in an earlier digest"),
        "{reason}"
    );
    app.stop().await;
}
