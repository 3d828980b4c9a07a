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
    /// Whether `published_at` was given; if not, [`upsert`] leaves an
    /// existing article's date as it was.
    pub dated: bool,
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
           author = excluded.author,
           published_at = CASE WHEN $10 = 1 THEN excluded.published_at ELSE articles.published_at END,
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
    .bind(i64::from(article.dated))
    .fetch_one(&mut *conn)
    .await
    .context("while storing an article")?;
    replace_categories(conn, &id, article.categories).await?;
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
         WHERE draft = 0 AND published_at <= $1 ORDER BY published_at DESC, id DESC LIMIT $2 OFFSET $3",
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
    /// The source, to tell a teaser taken from it from one written apart.
    #[serde(skip)]
    pub body_markdown: String,
}

pub async fn find_published(
    pool: &AnyPool,
    slug: &str,
    now: i64,
) -> anyhow::Result<Option<(Article, Vec<String>)>> {
    let Some(article): Option<Article> = sqlx::query_as(
        "SELECT id, slug, title, teaser, body_html, author, published_at, body_markdown FROM articles
         WHERE slug = $1 AND draft = 0 AND published_at <= $2",
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

async fn replace_categories(
    conn: &mut Conn,
    id: &str,
    categories: &[String],
) -> anyhow::Result<()> {
    sqlx::query("DELETE FROM article_categories WHERE article_id = $1")
        .bind(id)
        .execute(&mut *conn)
        .await
        .context("while replacing categories")?;
    for category in categories {
        sqlx::query(
            "INSERT INTO article_categories (article_id, category) VALUES ($1, $2)
             ON CONFLICT DO NOTHING",
        )
        .bind(id)
        .bind(category)
        .execute(&mut *conn)
        .await
        .context("while storing a category")?;
    }
    Ok(())
}

/// Creates an article; `false` if its slug is taken.
pub async fn insert(
    conn: &mut Conn,
    id: &str,
    article: &ArticleRecord<'_>,
    draft: bool,
    now: i64,
) -> anyhow::Result<bool> {
    let result = sqlx::query(
        "INSERT INTO articles (id, slug, title, teaser, body_markdown, body_html, author,
                               published_at, created_at, updated_at, draft)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10)
         ON CONFLICT (slug) DO NOTHING",
    )
    .bind(id)
    .bind(article.slug)
    .bind(article.title)
    .bind(article.teaser)
    .bind(article.body_markdown)
    .bind(article.body_html)
    .bind(article.author)
    .bind(article.published_at)
    .bind(now)
    .bind(i64::from(draft))
    .execute(&mut *conn)
    .await
    .context("while creating an article")?;
    if result.rows_affected() == 0 {
        return Ok(false);
    }
    replace_categories(conn, id, article.categories).await?;
    Ok(true)
}

/// Why an edit was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EditOutcome {
    Saved,
    NotFound,
    SlugTaken,
}

/// Replaces an article's fields, keeping its publication state and time.
pub async fn update(
    conn: &mut Conn,
    id: &str,
    article: &ArticleRecord<'_>,
    now: i64,
) -> anyhow::Result<EditOutcome> {
    let taken: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM articles WHERE slug = $1 AND id <> $2")
            .bind(article.slug)
            .bind(id)
            .fetch_optional(&mut *conn)
            .await
            .context("while checking a slug")?;
    if taken.is_some() {
        return Ok(EditOutcome::SlugTaken);
    }
    let result = sqlx::query(
        "UPDATE articles SET slug = $1, title = $2, teaser = $3, body_markdown = $4,
                body_html = $5, author = $6, updated_at = $7
         WHERE id = $8",
    )
    .bind(article.slug)
    .bind(article.title)
    .bind(article.teaser)
    .bind(article.body_markdown)
    .bind(article.body_html)
    .bind(article.author)
    .bind(now)
    .bind(id)
    .execute(&mut *conn)
    .await;
    // Another save took the slug between the check and the write.
    let result = match result {
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => {
            return Ok(EditOutcome::SlugTaken);
        }
        other => other.context("while updating an article")?,
    };
    if result.rows_affected() == 0 {
        return Ok(EditOutcome::NotFound);
    }
    replace_categories(conn, id, article.categories).await?;
    Ok(EditOutcome::Saved)
}

/// Publishes a draft, dated `now` the first time (so the next digest
/// covers it) and keeping its date after that (so an article taken back to
/// fix a typo is not sent again), or takes an article back to draft. Returns the slug, or `None` for no such article.
pub async fn set_draft(
    conn: &mut Conn,
    id: &str,
    draft: bool,
    now: i64,
) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar(
        "UPDATE articles SET
           published_at = CASE WHEN $1 = 0 AND published_at = 0 THEN $2 ELSE published_at END,
           draft = $1, updated_at = $2
         WHERE id = $3 RETURNING slug",
    )
    .bind(i64::from(draft))
    .bind(now)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await
    .context("while publishing an article")
}

/// Deletes an article; its slug, or `None` for no such article.
pub async fn delete(conn: &mut Conn, id: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("DELETE FROM articles WHERE id = $1 RETURNING slug")
        .bind(id)
        .fetch_optional(&mut *conn)
        .await
        .context("while deleting an article")
}

/// An article as editors see it: drafts too, Markdown and categories.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct EditorArticle {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub body_markdown: String,
    #[sqlx(try_from = "i64")]
    pub draft: super::editors::IntFlag,
    pub published_at: i64,
    pub updated_at: i64,
    /// Comma-separated.
    pub categories: String,
}

const EDITOR_ARTICLE: &str = "SELECT a.id, a.slug, a.title, a.teaser, a.author, a.body_markdown,
        a.draft, a.published_at, a.updated_at,
        COALESCE((SELECT string_agg(c.category, ',') FROM article_categories c WHERE c.article_id = a.id), '') AS categories
     FROM articles a";

/// Every article, drafts included, newest first; `search` matches titles
/// and slugs, case-insensitively.
pub async fn list_for_editors(
    pool: &AnyPool,
    search: &str,
    limit: i64,
    offset: i64,
) -> anyhow::Result<Vec<EditorArticle>> {
    let pattern = format!("%{}%", like_escape(&search.to_lowercase()));
    sqlx::query_as(&format!(
        "{EDITOR_ARTICLE} WHERE lower(a.title) LIKE $1 ESCAPE '\\' OR a.slug LIKE $1 ESCAPE '\\'
         ORDER BY a.draft DESC, a.published_at DESC, a.id DESC LIMIT $2 OFFSET $3"
    ))
    .bind(pattern)
    .bind(limit)
    .bind(offset)
    .fetch_all(pool)
    .await
    .context("while listing articles for editors")
}

pub async fn find_for_editors(pool: &AnyPool, id: &str) -> anyhow::Result<Option<EditorArticle>> {
    sqlx::query_as(&format!("{EDITOR_ARTICLE} WHERE a.id = $1"))
        .bind(id)
        .fetch_optional(pool)
        .await
        .context("while reading an article")
}

/// `%`, `_` and `\` matched literally in a LIKE pattern.
pub fn like_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '%' | '_' | '\\') {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

/// The id of the article with this slug, drafts included.
pub async fn id_by_slug(pool: &AnyPool, slug: &str) -> anyhow::Result<Option<String>> {
    sqlx::query_scalar("SELECT id FROM articles WHERE slug = $1")
        .bind(slug)
        .fetch_optional(pool)
        .await
        .context("while finding an article")
}
