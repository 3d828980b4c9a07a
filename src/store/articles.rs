//! Articles and their categories.

use anyhow::Context;
use sqlx::{AnyPool, FromRow};

use super::Conn;

/// An article as written by an import or an editor.
pub struct ArticleRecord<'a> {
    pub slug: &'a str,
    pub title: &'a str,
    pub teaser: &'a str,
    pub body_markdown: &'a str,
    pub body_html: &'a str,
    pub author: &'a str,
    pub categories: &'a [String],
    pub published_at: i64,
}

/// Whether an upsert created the article or changed an existing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Created,
    Updated,
}

/// Creates the article or replaces the one with the same slug.
pub async fn upsert(
    conn: &mut Conn,
    new_id: &str,
    article: &ArticleRecord<'_>,
    now: i64,
) -> anyhow::Result<Upserted> {
    let id: String = sqlx::query_scalar(
        "INSERT INTO articles (id, slug, title, teaser, body_markdown, body_html, author,
                               published_at, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9)
         ON CONFLICT (slug) DO UPDATE SET
           title = excluded.title, teaser = excluded.teaser,
           body_markdown = excluded.body_markdown, body_html = excluded.body_html,
           author = excluded.author, published_at = excluded.published_at,
           updated_at = excluded.updated_at
         RETURNING id",
    )
    .bind(new_id)
    .bind(article.slug)
    .bind(article.title)
    .bind(article.teaser)
    .bind(article.body_markdown)
    .bind(article.body_html)
    .bind(article.author)
    .bind(article.published_at)
    .bind(now)
    .fetch_one(&mut *conn)
    .await
    .context("while storing an article")?;
    sqlx::query("DELETE FROM article_categories WHERE article_id = $1")
        .bind(&id)
        .execute(&mut *conn)
        .await
        .context("while replacing categories")?;
    for category in article.categories {
        sqlx::query(
            "INSERT INTO article_categories (article_id, category) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(&id)
        .bind(category)
        .execute(&mut *conn)
        .await
        .context("while storing a category")?;
    }
    Ok(if id == new_id {
        Upserted::Created
    } else {
        Upserted::Updated
    })
}

/// One line of an article list.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct ArticleSummary {
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub published_at: i64,
}

/// Published articles, newest first.
pub async fn list_published(
    pool: &AnyPool,
    now: i64,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<ArticleSummary>> {
    sqlx::query_as(
        "SELECT slug, title, teaser, author, published_at FROM articles
         WHERE published_at <= $1 ORDER BY published_at DESC, id DESC LIMIT $2 OFFSET $3",
    )
    .bind(now)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .context("while listing articles")
}

/// A whole published article.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct Article {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub body_html: String,
    pub author: String,
    pub published_at: i64,
}

pub async fn find_published(
    pool: &AnyPool,
    slug: &str,
    now: i64,
) -> anyhow::Result<Option<(Article, Vec<String>)>> {
    let Some(article): Option<Article> = sqlx::query_as(
        "SELECT id, slug, title, teaser, body_html, author, published_at FROM articles
         WHERE slug = $1 AND published_at <= $2",
    )
    .bind(slug)
    .bind(now)
    .fetch_optional(pool)
    .await
    .context("while reading an article")?
    else {
        return Ok(None);
    };
    let categories = sqlx::query_scalar(
        "SELECT category FROM article_categories WHERE article_id = $1 ORDER BY category",
    )
    .bind(&article.id)
    .fetch_all(pool)
    .await
    .context("while reading categories")?;
    Ok(Some((article, categories)))
}
