//! `/api/v1/articles`: list, create, read, replace, delete, publish.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Body, Caller, ErrorBody, Params, page_size, rfc3339};
use crate::{
    articles::{self, ArticleInput, EditOutcome},
    web::AppState,
};

/// An article as editors see it: drafts too, Markdown and categories.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EditorArticle {
    pub id: String,
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub body_markdown: String,
    pub draft: bool,
    /// RFC 3339; for a draft never published, when it was created.
    #[schema(format = DateTime)]
    pub published_at: String,
    #[schema(format = DateTime)]
    pub updated_at: String,
    pub categories: Vec<String>,
}

impl From<articles::EditorArticle> for EditorArticle {
    fn from(row: articles::EditorArticle) -> Self {
        Self {
            id: row.id,
            slug: row.slug,
            title: row.title,
            teaser: row.teaser,
            author: row.author,
            body_markdown: row.body_markdown,
            draft: row.draft.0,
            published_at: rfc3339(row.published_at),
            updated_at: rfc3339(row.updated_at),
            categories: articles::category_list(&row.categories),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Matches titles and slugs, case-insensitively.
    q: Option<String>,
    /// 1 to 500 (default 50).
    limit: Option<u32>,
    offset: Option<u32>,
}

/// Articles, drafts first, then newest published first.
#[utoipa::path(get, path = "/api/v1/articles", tag = "articles", params(ListParams),
    responses((status = 200, body = [EditorArticle]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<EditorArticle>>, ApiError> {
    let limit = page_size(params.limit);
    let offset = i64::from(params.offset.unwrap_or(0));
    let q = params.q.unwrap_or_default();
    let found = state.articles.list(&q, limit, offset).await?;
    Ok(Json(found.into_iter().map(EditorArticle::from).collect()))
}

/// An article as a client writes it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ArticleBody {
    #[schema(min_length = 1, max_length = 200)]
    title: String,
    /// Made from the title when absent.
    slug: Option<String>,
    author: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    /// The first paragraph when absent.
    teaser: Option<String>,
    /// Markdown; rendered and sanitised when stored.
    #[serde(default)]
    body_markdown: String,
    /// Publish at once (default) or keep as a draft.
    #[serde(default = "yes")]
    publish: bool,
}

fn yes() -> bool {
    true
}

impl ArticleBody {
    fn validate(self) -> Result<(articles::NewArticle, bool), ApiError> {
        let publish = self.publish;
        let input = ArticleInput {
            title: self.title,
            slug: self.slug,
            author: self.author,
            categories: self.categories,
            teaser: self.teaser,
            published_at: None,
            body_markdown: self.body_markdown,
        };
        let article = input.validate().map_err(|error| {
            let field = match error {
                articles::ArticleError::Slug(_) => "slug",
                articles::ArticleError::Category => "categories",
                _ => "title",
            };
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                error.to_string(),
            )
            .with_field(field)
        })?;
        Ok((article, publish))
    }
}

fn slug_taken(slug: &str) -> ApiError {
    ApiError::new(
        StatusCode::CONFLICT,
        "slug_taken",
        format!("Another article has the slug {slug:?}."),
    )
    .with_field("slug")
}

async fn found(state: &AppState, id: &str) -> Result<EditorArticle, ApiError> {
    state
        .articles
        .get(id)
        .await?
        .map(EditorArticle::from)
        .ok_or_else(ApiError::not_found)
}

/// Creates an article, published unless `publish` is false.
#[utoipa::path(post, path = "/api/v1/articles", tag = "articles", request_body = ArticleBody,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with this key get the first answer")),
    responses((status = 201, body = EditorArticle), (status = 400, body = ErrorBody),
        (status = 401, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(body): Body<ArticleBody>,
) -> Result<(StatusCode, Json<EditorArticle>), ApiError> {
    let (article, publish) = body.validate()?;
    let Some(id) = state.articles.create(&article, !publish, &actor).await? else {
        return Err(slug_taken(article.slug.as_str()));
    };
    Ok((StatusCode::CREATED, Json(found(&state, &id).await?)))
}

#[utoipa::path(get, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = EditorArticle), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EditorArticle>, ApiError> {
    Ok(Json(found(&state, &id).await?))
}

/// Replaces an article's text and metadata; `publish` is ignored here (use
/// the publish and unpublish calls).
#[utoipa::path(put, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = String, Path, description = "The id, as returned when it was created or listed")), request_body = ArticleBody,
    responses((status = 200, body = EditorArticle), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn update(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
    Body(body): Body<ArticleBody>,
) -> Result<Json<EditorArticle>, ApiError> {
    let (article, _) = body.validate()?;
    match state.articles.update(&id, &article, &actor).await? {
        EditOutcome::Saved => Ok(Json(found(&state, &id).await?)),
        EditOutcome::NotFound => Err(ApiError::not_found()),
        EditOutcome::SlugTaken => Err(slug_taken(article.slug.as_str())),
    }
}

#[utoipa::path(delete, path = "/api/v1/articles/{id}", tag = "articles", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn delete(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    if state.articles.delete(&id, &actor).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

async fn set_published(
    state: &AppState,
    actor: &crate::audit::Actor,
    id: &str,
    published: bool,
) -> Result<Json<EditorArticle>, ApiError> {
    if !state.articles.set_published(id, published, actor).await? {
        return Err(ApiError::not_found());
    }
    Ok(Json(found(state, id).await?))
}

/// Publishes a draft, dated now so the next digest covers it.
#[utoipa::path(post, path = "/api/v1/articles/{id}/publish", tag = "articles", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = EditorArticle), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn publish(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<EditorArticle>, ApiError> {
    set_published(&state, &actor, &id, true).await
}

/// Takes an article back to draft: readers and digests no longer see it.
#[utoipa::path(post, path = "/api/v1/articles/{id}/unpublish", tag = "articles", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = EditorArticle), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn unpublish(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<EditorArticle>, ApiError> {
    set_published(&state, &actor, &id, false).await
}
