//! Readers in the console: search by address, a detail page with state,
//! topics, consent history and deliveries, and (admins) export and erasure.

use axum::{
    Json,
    extract::{Path, Query, State},
    http::header,
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Admin, Console, back_to};
use crate::web::{AppError, AppState};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct SearchQuery {
    #[serde(default)]
    q: String,
    /// The id of the last reader on the previous page.
    #[serde(default)]
    after: String,
}

pub async fn search(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<SearchQuery>,
) -> Result<Response, AppError> {
    let after = Some(query.after.as_str()).filter(|a| !a.is_empty());
    let found = state.readers.list(&query.q, None, after, PAGE_SIZE).await?;
    let next = (found.len() == PAGE_SIZE as usize)
        .then(|| found.last().map(|r| r.id.clone()))
        .flatten();
    console.render(
        &state,
        "admin/readers.html",
        minijinja::context! { readers => found, q => query.q, next },
    )
}

pub async fn detail(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(reader) = state.readers.detail(&id).await? else {
        return console.not_found(&state);
    };
    console.render(
        &state,
        "admin/reader.html",
        minijinja::context! { id, reader },
    )
}

pub async fn export(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let Some(data) = state.readers.export(&id, &actor).await? else {
        return console.not_found(&state);
    };
    let disposition = format!("attachment; filename=\"reader-{id}.json\"");
    Ok(([(header::CONTENT_DISPOSITION, disposition)], Json(data)).into_response())
}

pub async fn erase(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    if !state.readers.erase(&id, &actor).await? {
        return console.not_found(&state);
    }
    Ok(back_to("/admin/readers"))
}
