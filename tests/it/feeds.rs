//! Feeds: entries become sanitised articles once, polls happen once per cron
//! time across instances, and fetching refuses what S-04 forbids.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use axum::{Router, response::Redirect, routing::get};
use broadsheet::{
    domain::{Feed, FeedConfig},
    feeds,
};
use support::{Backend, TestApp};

storage_tests!(
    feed_entries_become_sanitised_articles_once,
    a_feed_is_polled_once_per_cron_time,
    private_addresses_oversized_feeds_and_bad_redirects_are_refused,
);

const RSS: &str = r#"<?xml version="1.0"?>
<rss version="2.0"><channel><title>The Wire</title><link>https://wire.example</link>
<item><title>Tide tables &amp; ferries</title><link>https://wire.example/tides</link>
<guid>wire-1</guid><category>Harbour</category>
<description><![CDATA[<p>New tables.</p><script>alert(1)</script><img src=x onerror=alert(1)>]]></description>
<pubDate>Fri, 27 Nov 2026 06:00:00 GMT</pubDate></item>
<item><title>Night buses</title><link>https://wire.example/buses</link>
<description>Buses run later.</description></item>
</channel></rss>"#;

/// A feed server on loopback counting its hits: `/feed.xml`, `/big` (6 MiB),
/// `/to-ftp` (a redirect to ftp://).
async fn feed_server() -> (String, Arc<AtomicUsize>) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = Router::new()
        .route(
            "/feed.xml",
            get(move || {
                counter.fetch_add(1, Ordering::SeqCst);
                async { RSS }
            }),
        )
        .route("/big", get(|| async { "x".repeat(6 * 1024 * 1024) }))
        .route(
            "/to-ftp",
            get(|| async { Redirect::temporary("ftp://wire.example/feed.xml") }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("127.0.0.1:{port}"), hits)
}

fn feed_config(url: &str, allow_private: bool) -> FeedConfig {
    FeedConfig {
        url: url.into(),
        poll: "*/15 * * * *".into(),
        categories: vec!["wire".into()],
        allow_private,
    }
}

fn feed(url: &str, allow_private: bool) -> Feed {
    Feed::parse(&feed_config(url, allow_private)).unwrap()
}

async fn feed_entries_become_sanitised_articles_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host, _) = feed_server().await;
    let wire = feed(&format!("http://{host}/feed.xml"), true);
    let first = feeds::poll(&app.store, &app.clock, &wire).await.unwrap();
    assert_eq!((first.entries, first.new), (2, 2));
    let again = feeds::poll(&app.store, &app.clock, &wire).await.unwrap();
    assert_eq!(again.new, 0, "entries are imported once");
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 2);
    let html = app
        .text("SELECT body_html FROM articles WHERE slug = 'tide-tables-ferries'")
        .await
        .unwrap();
    assert!(html.contains("New tables."), "{html}");
    assert!(
        !html.contains("<script") && !html.contains("onerror"),
        "{html}"
    );
    let categories = app
        .scalar(
            "SELECT COUNT(*) FROM article_categories c JOIN articles a ON a.id = c.article_id
             WHERE a.slug = 'tide-tables-ferries' AND c.category IN ('wire', 'harbour')",
        )
        .await;
    assert_eq!(categories, 2, "the feed's and the entry's categories");
    // The article page shows it to readers like any other.
    let page = app.get("/articles/tide-tables-ferries").await;
    assert_eq!(page.status(), 200);
    assert!(
        page.text()
            .await
            .unwrap()
            .contains("Tide tables &amp; ferries")
    );
    assert_eq!(
        app.text("SELECT last_result FROM feeds").await.as_deref(),
        Some("2 entries, 0 new")
    );
    app.stop().await;
}

async fn a_feed_is_polled_once_per_cron_time(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host, hits) = feed_server().await;
    let wire = [feed(&format!("http://{host}/feed.xml"), true)];
    // Mid-way between two cron times, so both polls read the same one.
    let into_quarter = app.clock.now().timestamp().rem_euclid(900);
    let to_middle = (450 - into_quarter).rem_euclid(900);
    app.clock
        .advance(std::time::Duration::from_secs(to_middle.unsigned_abs()));
    // Two instances on one database, at the same cron time.
    let (a, b) = tokio::join!(
        feeds::poll_due(&app.store, &app.clock, &wire),
        feeds::poll_due(&app.store, &app.clock, &wire)
    );
    a.unwrap();
    b.unwrap();
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    app.clock.advance(std::time::Duration::from_secs(15 * 60));
    feeds::poll_due(&app.store, &app.clock, &wire)
        .await
        .unwrap();
    assert_eq!(
        hits.load(Ordering::SeqCst),
        2,
        "the next cron time polls again"
    );
    app.stop().await;
}

async fn private_addresses_oversized_feeds_and_bad_redirects_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let (host, hits) = feed_server().await;
    let port = host.rsplit(':').next().unwrap();
    // An IP literal is refused when the feed is configured.
    let refused = Feed::parse(&feed_config(&format!("http://{host}/feed.xml"), false));
    assert!(refused.err().unwrap().contains("private address"));
    // A name is checked after DNS: localhost resolves to loopback only.
    let named = feed(&format!("http://localhost:{port}/feed.xml"), false);
    let error = feeds::poll(&app.store, &app.clock, &named)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("no public address"),
        "{error:#}"
    );
    assert_eq!(hits.load(Ordering::SeqCst), 0, "nothing was fetched");
    let big = feed(&format!("http://{host}/big"), true);
    let error = feeds::poll(&app.store, &app.clock, &big).await.unwrap_err();
    assert!(
        format!("{error:#}").contains("larger than 5 MiB"),
        "{error:#}"
    );
    let redirected = feed(&format!("http://{host}/to-ftp"), true);
    let error = feeds::poll(&app.store, &app.clock, &redirected)
        .await
        .unwrap_err();
    assert!(
        format!("{error:#}").contains("only http and https"),
        "{error:#}"
    );
    assert_eq!(app.scalar("SELECT COUNT(*) FROM articles").await, 0);
    let failed = "SELECT COUNT(*) FROM feeds WHERE last_result LIKE 'failed: %'";
    assert_eq!(app.scalar(failed).await, 3, "each failure is recorded");
    assert!(
        app.text(&format!(
            "SELECT last_result FROM feeds WHERE url = 'http://{host}/big'"
        ))
        .await
        .unwrap()
        .starts_with("failed: ")
    );
    app.stop().await;
}
