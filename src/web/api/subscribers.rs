//! `/api/v1/subscribers` (list with filters and cursor pagination, get,
//! consents; export and erase for admins) and `/api/v1/stats`.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::IntoParams;

use super::{ApiError, Caller, ErrorBody, Params, page_size};
use crate::{
    app::AppState,
    readers,
    stats::{self, Stats},
    store::subscribers::ReaderLine,
};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Part of the address.
    q: Option<String>,
    /// `pending` or `confirmed`.
    status: Option<String>,
    /// The cursor: the id of the last subscriber of the previous page.
    after: Option<String>,
    /// 1 to 500 (default 50).
    limit: Option<u32>,
}

/// Subscribers in signup order.
#[utoipa::path(get, path = "/api/v1/subscribers", tag = "subscribers", params(ListParams),
    responses((status = 200, body = [ReaderLine]), (status = 401, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<ReaderLine>>, ApiError> {
    let status = params.status.as_deref();
    if status.is_some_and(|s| s != "pending" && s != "confirmed") {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            "status is `pending` or `confirmed`.",
        )
        .with_field("status"));
    }
    let q = params.q.unwrap_or_default();
    let limit = page_size(params.limit);
    let found = readers::list(&state.store, &q, status, params.after.as_deref(), limit).await?;
    Ok(Json(found))
}

/// Everything held about a subscriber, with their digest deliveries.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    readers::detail(&state.store, &state.clock, &id)
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// A subscriber's consent events, oldest first, each with the wording shown.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}/consents", tag = "subscribers", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = [Object]), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn consents(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let detail = readers::detail(&state.store, &state.clock, &id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(Json(detail["consent"]["events"].clone()))
}

/// The subscriber's data export (docs/export.md). Admins only.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}/export", tag = "subscribers", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin()?;
    readers::export(&state.store, &state.clock, &id, &caller.0)
        .await?
        .map(Json)
        .ok_or_else(ApiError::not_found)
}

/// Erases a subscriber: only a keyed hash of the address and pseudonymised
/// consent records remain. Admins only.
#[utoipa::path(delete, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 204), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
pub async fn erase(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    let key = &state.suppression_key;
    if readers::erase(&state.store, &state.clock, key, &id, &caller.0).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(ApiError::not_found())
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StatsParams {
    /// Days of signups and unsubscribes, 1 to 366 (default 90).
    days: Option<u16>,
}

/// Subscribers by state, and signups and unsubscribes per day.
#[utoipa::path(get, path = "/api/v1/stats", tag = "stats", params(StatsParams),
    responses((status = 200, body = Stats), (status = 401, body = ErrorBody)))]
pub async fn stats(
    State(state): State<AppState>,
    _caller: Caller,
    Params(params): Params<StatsParams>,
) -> Result<Json<Stats>, ApiError> {
    let days = i64::from(params.days.unwrap_or(90).clamp(1, 366));
    Ok(Json(
        stats::collect(&state.store, &state.clock, days).await?,
    ))
}
