//! `/api/v1/subscribers` (list with filters and cursor pagination, get,
//! consents; export and erase for admins) and `/api/v1/stats`.

use axum::http::{HeaderMap, header};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Caller, ErrorBody, Params, page_size};
use crate::{
    readers,
    stats::{self, Stats},
    store::subscribers::ReaderLine,
    web::AppState,
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

/// What an import did.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ImportSummary {
    imported: u64,
    /// Addresses already known: left as they are.
    existing: u64,
    /// Erased or bounced addresses, which only a fresh double opt-in brings back.
    suppressed: u64,
    /// Skipped rows: the CSV line number and why.
    invalid: Vec<InvalidRow>,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct InvalidRow {
    line: u64,
    reason: String,
}

/// Imports readers who consented elsewhere, as confirmed digest readers,
/// from CSV (`email,name,topics,consented_at,source`; topics separated by
/// `;`), at most 1 MiB (the CLI takes files of any size). Importing again
/// changes nothing.
#[utoipa::path(post, path = "/api/v1/subscribers/import", tag = "subscribers",
    request_body(content = String, content_type = "text/csv"),
    responses((status = 200, body = ImportSummary), (status = 401, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn import(
    State(state): State<AppState>,
    Caller(actor): Caller,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Json<ImportSummary>, ApiError> {
    let bytes = csv_body(&headers, body).await?;
    let report = crate::import::import(
        &state.store,
        bytes.as_ref(),
        &format!("api:{}", actor.label),
        &state.newsletter_wording.id,
        &state.suppression_key,
        |_| {},
    )
    .await?;
    let summary = ImportSummary {
        imported: report.imported,
        existing: report.existing,
        suppressed: report.suppressed,
        invalid: report
            .invalid
            .into_iter()
            .map(|(line, reason)| InvalidRow { line, reason })
            .collect(),
    };
    let detail = serde_json::json!({ "imported": summary.imported, "existing": summary.existing });
    let mut conn = state.store.pool().acquire().await?;
    crate::audit::record(
        &mut conn,
        state.clock.now_ms(),
        &actor,
        "subscribers.import",
        "",
        detail,
    )
    .await?;
    Ok(Json(summary))
}

/// The CSV body, read whole: 415 unless it is `text/csv`, 413 past 1 MiB,
/// 422 if its header row is not the expected one.
async fn csv_body(headers: &HeaderMap, body: axum::body::Body) -> Result<Bytes, ApiError> {
    let is_csv = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/csv"));
    if !is_csv {
        return Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Send the rows as text/csv.",
        ));
    }
    let bytes = axum::body::to_bytes(body, super::MAX_API_BODY_BYTES)
        .await
        .map_err(|_| {
            ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too_large",
                "At most 1 MiB; use `broadsheet subscriber import` for larger files.",
            )
        })?;
    let header_row = {
        let mut reader = csv::ReaderBuilder::new()
            .flexible(true)
            .from_reader(bytes.as_ref());
        reader
            .headers()
            .map_err(|e| e.to_string())
            .and_then(crate::import::check_header)
    };
    if let Err(reason) = header_row {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_csv",
            reason,
        ));
    }
    Ok(bytes)
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
