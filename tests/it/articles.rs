//! Articles: lists, pages, gating and sanitising.
#![allow(clippy::unwrap_used)] // a failed unwrap is a failed test

use crate::support;

use support::{Backend, TestApp};

storage_tests!(
    articles_are_listed_newest_first_and_paginated,
    the_anonymous_article_page_never_contains_the_body,
    future_and_unknown_articles_are_not_found,
    article_html_is_sanitised_before_it_reaches_a_page,
    a_teaser_taken_from_the_body_is_shown_once_to_readers,
);

fn article(slug: &str, day: u32, body: &str) -> String {
    format!(
        "+++\ntitle = \"Story {slug}\"\nslug = \"{slug}\"\ncategories = [\"city\"]\npublished_at = \"2026-10-{day:02}T08:00:00Z\"\nteaser = \"Teaser of {slug}.\"\n+++\n{body}\n"
    )
}

async fn articles_are_listed_newest_first_and_paginated(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for day in 1..=25 {
        app.import_article(&article(&format!("story-{day}"), day, "Body."))
            .await;
    }
    let first = app.get("/articles").await.text().await.unwrap();
    let newest = first.find("/articles/story-25").unwrap();
    let older = first.find("/articles/story-24").unwrap();
    assert!(newest < older, "newest first");
    assert!(!first.contains("/articles/story-5\""), "20 to a page");
    assert!(first.contains("/articles?page=2"));
    let second = app.get("/articles?page=2").await.text().await.unwrap();
    assert!(second.contains("/articles/story-5\"") && second.contains("/articles/story-1\""));
    assert!(!second.contains("/articles?page=3"));
    let home = app.get("/").await.text().await.unwrap();
    assert!(home.contains("/articles/story-25") && home.contains("name=\"email\""));
    assert!(
        !home.contains("/articles/story-20\""),
        "the home page shows the latest five"
    );
    assert_eq!(app.get("/articles?page=zero").await.status(), 400);
    app.stop().await;
}

async fn the_anonymous_article_page_never_contains_the_body(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.import_article(&article("gated", 3, "Only for readers: PELICAN-7."))
        .await;
    let response = app.get("/articles/gated").await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    assert!(html.contains("Teaser of gated.") && html.contains("href=\"/subscribe\""));
    assert!(!html.contains("PELICAN-7"));
    for path in ["/", "/articles"] {
        assert!(
            !app.get(path)
                .await
                .text()
                .await
                .unwrap()
                .contains("PELICAN-7"),
            "{path}"
        );
    }
    app.stop().await;
}

async fn future_and_unknown_articles_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.import_article(
        "+++\ntitle = \"Tomorrow\"\npublished_at = \"2999-01-01T00:00:00Z\"\n+++\nNot yet.\n",
    )
    .await;
    assert_eq!(app.get("/articles/tomorrow").await.status(), 404);
    assert_eq!(app.get("/articles/no-such-story").await.status(), 404);
    assert!(
        !app.get("/articles")
            .await
            .text()
            .await
            .unwrap()
            .contains("Tomorrow")
    );
    app.stop().await;
}

async fn article_html_is_sanitised_before_it_reaches_a_page(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("reader@example.com", "a long and unusual passphrase")
        .await;
    app.sign_in("reader@example.com", "a long and unusual passphrase")
        .await;
    app.import_article(&article(
        "hostile",
        4,
        "Fine text.<script>alert('x')</script><a href=\"javascript:alert(1)\" onclick=\"x()\">link</a>",
    ))
    .await;
    let html = app.get("/articles/hostile").await.text().await.unwrap();
    assert!(
        html.contains("Fine text."),
        "the body is shown to a signed-in reader"
    );
    for bad in ["<script>alert", "javascript:", "onclick"] {
        assert!(!html.contains(bad), "E-28: {bad} survived");
    }
    app.stop().await;
}

async fn a_teaser_taken_from_the_body_is_shown_once_to_readers(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.reader_with_password("twice@example.com", "a long and unusual passphrase")
        .await;
    app.import_article(
        "+++\ntitle = \"Plain\"\nslug = \"plain\"\n+++\nThe ferry runs again.\n\nMore.\n",
    )
    .await;
    app.import_article(&article("written", 3, "The ferry runs again."))
        .await;
    let anonymous = app.get("/articles/plain").await.text().await.unwrap();
    assert_eq!(
        anonymous.matches("The ferry runs again.").count(),
        1,
        "the teaser: {anonymous}"
    );
    let reader = app.new_browser();
    reader
        .sign_in("twice@example.com", "a long and unusual passphrase")
        .await;
    let plain = reader.get("/articles/plain").await.text().await.unwrap();
    assert_eq!(plain.matches("The ferry runs again.").count(), 1, "{plain}");
    assert!(plain.contains("More."));
    // A teaser written apart is shown with the body.
    let written = reader.get("/articles/written").await.text().await.unwrap();
    assert!(written.contains("Teaser of written.") && written.contains("The ferry runs again."));
    app.stop().await;
}
