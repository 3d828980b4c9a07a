//! `Articles`: what the site and the console do with articles, as one
//! service over the store and the clock. Editors' changes are written by
//! [`super::editing`], each with its audit entry.

use super::{NewArticle, editing};
use crate::{
    audit::Actor,
    clock::Clock,
    store::{
        self, Store,
        articles::{Article, ArticleSummary, EditOutcome, EditorArticle},
    },
};

/// Published articles for readers, every article for editors.
#[derive(Clone)]
pub struct Articles {
    store: Store,
    clock: Clock,
}

impl Articles {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// Articles published by now, newest first.
    pub async fn published(&self, limit: i64, offset: i64) -> anyhow::Result<Vec<ArticleSummary>> {
        let now = self.clock.now_ms();
        store::articles::list_published(self.store.pool(), now, limit, offset).await
    }

    /// The article published by now under `slug`, with its categories.
    pub async fn find_published(
        &self,
        slug: &str,
    ) -> anyhow::Result<Option<(Article, Vec<String>)>> {
        let now = self.clock.now_ms();
        store::articles::find_published(self.store.pool(), slug, now).await
    }

    /// Every article, drafts first; `search` matches titles and slugs.
    pub async fn list(
        &self,
        search: &str,
        limit: i64,
        offset: i64,
    ) -> anyhow::Result<Vec<EditorArticle>> {
        editing::list(&self.store, search, limit, offset).await
    }

    /// An article as editors see it, drafts too.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<EditorArticle>> {
        editing::get(&self.store, id).await
    }

    /// Creates an article, as a draft or published; its id, or `None` if the slug is taken.
    pub async fn create(
        &self,
        article: &NewArticle,
        draft: bool,
        actor: &Actor,
    ) -> anyhow::Result<Option<String>> {
        editing::create(&self.store, &self.clock, article, draft, actor).await
    }

    /// Replaces an article's text and metadata; its publication state stays.
    pub async fn update(
        &self,
        id: &str,
        article: &NewArticle,
        actor: &Actor,
    ) -> anyhow::Result<EditOutcome> {
        editing::update(&self.store, &self.clock, id, article, actor).await
    }

    /// Publishes or unpublishes; `false` for no such article.
    pub async fn set_published(
        &self,
        id: &str,
        published: bool,
        actor: &Actor,
    ) -> anyhow::Result<bool> {
        editing::set_published(&self.store, &self.clock, id, published, actor).await
    }

    /// Deletes an article; `false` for no such article.
    pub async fn delete(&self, id: &str, actor: &Actor) -> anyhow::Result<bool> {
        editing::delete(&self.store, &self.clock, id, actor).await
    }
}
