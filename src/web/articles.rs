//! The home page and articles: teasers for everyone, full stories for
//! signed-in readers.

use axum::{
    Router,
    extract::{Path, Query, State},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::get,
};
use minijinja::context;
use serde::Deserialize;

use super::{AppError, frame::Frame, signup::render_empty_form};
use crate::web::AppState;

/// The home page and the articles.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(home))
        .route("/articles", get(list))
        .route("/articles/{slug}", get(show))
}

const PER_PAGE: i64 = 20;
const ON_HOME: i64 = 5;

pub async fn home(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let articles = state.articles.published(ON_HOME, 0).await?;
    render_empty_form(&state, &frame, "home.html", context! { articles })
}

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    page: Option<u32>,
}

pub async fn list(
    State(state): State<AppState>,
    frame: Frame,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let page = i64::from(query.page.unwrap_or(1).max(1));
    // One more than a page tells whether there is a next one.
    let mut articles = state
        .articles
        .published(PER_PAGE + 1, (page - 1) * PER_PAGE)
        .await?;
    let has_next = articles.len() > PER_PAGE as usize;
    articles.truncate(PER_PAGE as usize);
    let html = state.pages.render(
        "articles.html",
        &frame,
        context! { articles, page, has_next },
    )?;
    Ok(html.into_response())
}

/// The 404 page, under the site's masthead; the plain one if even that
/// cannot be rendered.
pub async fn not_found(State(state): State<AppState>, frame: Frame) -> Response {
    match state.pages.render("not_found.html", &frame, context! {}) {
        Ok(html) => (StatusCode::NOT_FOUND, html).into_response(),
        Err(_) => super::error::not_found().await.into_response(),
    }
}

pub async fn show(
    State(state): State<AppState>,
    frame: Frame,
    Path(slug): Path<String>,
) -> Result<Response, AppError> {
    let Some((mut article, categories)) = state.articles.find_published(&slug).await? else {
        return Ok(not_found(State(state), frame).await);
    };
    if frame.reader.is_none() {
        // The full story never leaves the server for anonymous visitors.
        article.body_html.clear();
    }
    let teaser_in_body = crate::articles::teaser_opens_body(&article);
    let html = state.pages.render(
        "article.html",
        &frame,
        context! { article, categories, teaser_in_body },
    )?;
    Ok((StatusCode::OK, html).into_response())
}
