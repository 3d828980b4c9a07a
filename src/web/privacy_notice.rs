//! `/privacy`: the current privacy notice and every earlier version (G-05).

use axum::{
    Router,
    extract::{Path, State},
    response::{IntoResponse, Response},
    routing::get,
};
use minijinja::context;

use super::{AppError, error::not_found, frame::Frame};
use crate::{articles::render_markdown, web::AppState};

/// The privacy notice, current and past versions.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/privacy", get(current))
        .route("/privacy/{version}", get(version))
}

pub async fn current(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let version = state.privacy_notice.id.clone();
    render(&state, &frame, &version).await
}

pub async fn version(
    State(state): State<AppState>,
    frame: Frame,
    Path(version): Path<String>,
) -> Result<Response, AppError> {
    render(&state, &frame, &version).await
}

async fn render(state: &AppState, frame: &Frame, version: &str) -> Result<Response, AppError> {
    let Some(notice) = state.consent.notice(version).await? else {
        return Ok(not_found().await.into_response());
    };
    let versions: Vec<_> = notice
        .versions
        .into_iter()
        .map(|(id, created_at)| context! { id, created_at })
        .collect();
    let context = context! {
        notice => render_markdown(&notice.markdown),
        version,
        since => notice.since,
        is_current => version == state.privacy_notice.id,
        versions,
    };
    Ok(state
        .pages
        .render("privacy.html", frame, context)?
        .into_response())
}
