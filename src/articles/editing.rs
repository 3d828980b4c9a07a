//! Editors' work on articles: drafts, edits, publishing and deletion, each
//! written to the audit log with the change.

use serde_json::json;

use super::NewArticle;
use crate::{
    audit::{self, Actor},
    clock::Clock,
    store::{
        self, Store,
        articles::{EditOutcome, EditorArticle},
    },
};

/// Creates an article, as a draft or published; its id, or `None` if the slug is taken.
pub async fn create(
    store: &Store,
    clock: &Clock,
    article: &NewArticle,
    draft: bool,
    actor: &Actor,
) -> anyhow::Result<Option<String>> {
    let now = clock.now();
    let id = store::new_id();
    let mut tx = store.begin().await?;
    let mut record = article.record(now);
    if draft {
        // Never published: dated when it first is.
        record.published_at = 0;
    }
    let now = now.timestamp_millis();
    if !store::articles::insert(&mut tx, &id, &record, draft, now).await? {
        return Ok(None);
    }
    let detail = json!({ "slug": record.slug, "title": record.title, "draft": draft });
    audit::record(&mut tx, now, actor, "article.create", &id, detail).await?;
    tx.commit().await?;
    Ok(Some(id))
}

/// Replaces an article's text and metadata; its publication state stays.
pub async fn update(
    store: &Store,
    clock: &Clock,
    id: &str,
    article: &NewArticle,
    actor: &Actor,
) -> anyhow::Result<EditOutcome> {
    let now = clock.now();
    let mut tx = store.begin().await?;
    let record = article.record(now);
    let now = now.timestamp_millis();
    let outcome = store::articles::update(&mut tx, id, &record, now).await?;
    if outcome == EditOutcome::Saved {
        let detail = json!({ "slug": record.slug, "title": record.title });
        audit::record(&mut tx, now, actor, "article.update", id, detail).await?;
        tx.commit().await?;
    }
    Ok(outcome)
}

/// Publishes (as of now, if it was a draft) or unpublishes; `false` for no such article.
pub async fn set_published(
    store: &Store,
    clock: &Clock,
    id: &str,
    published: bool,
    actor: &Actor,
) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    let Some(slug) = store::articles::set_draft(&mut tx, id, !published, now).await? else {
        return Ok(false);
    };
    let action = if published {
        "article.publish"
    } else {
        "article.unpublish"
    };
    audit::record(&mut tx, now, actor, action, id, json!({ "slug": slug })).await?;
    tx.commit().await?;
    Ok(true)
}

/// Deletes an article; `false` for no such article.
pub async fn delete(store: &Store, clock: &Clock, id: &str, actor: &Actor) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    let Some(slug) = store::articles::delete(&mut tx, id).await? else {
        return Ok(false);
    };
    audit::record(
        &mut tx,
        now,
        actor,
        "article.delete",
        id,
        json!({ "slug": slug }),
    )
    .await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn list(
    store: &Store,
    search: &str,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<EditorArticle>> {
    store::articles::list_for_editors(store.pool(), search, limit, offset).await
}

pub async fn get(store: &Store, id: &str) -> anyhow::Result<Option<EditorArticle>> {
    store::articles::find_for_editors(store.pool(), id).await
}

/// The id of the article with this slug, drafts included.
pub async fn id_by_slug(store: &Store, slug: &str) -> anyhow::Result<Option<String>> {
    store::articles::id_by_slug(store.pool(), slug).await
}
