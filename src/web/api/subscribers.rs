//! `/api/v1/subscribers` (list with filters and cursor pagination, get,
//! consents; export and erase for admins) and `/api/v1/stats`.

use axum::http::{HeaderMap, header};
use axum::{
    Json,
    body::Bytes,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Caller, ErrorBody, Params, page_size, rfc3339};
use crate::{readers, stats, web::AppState};

/// One line of an editor's list of readers.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderLine {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub status: String,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub confirmed_at: Option<String>,
    #[schema(format = DateTime)]
    pub suppressed_at: Option<String>,
}

impl From<readers::ReaderLine> for ReaderLine {
    fn from(row: readers::ReaderLine) -> Self {
        Self {
            id: row.id,
            email: row.email,
            name: row.name,
            status: row.status,
            created_at: rfc3339(row.created_at),
            confirmed_at: row.confirmed_at.map(rfc3339),
            suppressed_at: row.suppressed_at.map(rfc3339),
        }
    }
}

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
    let after = params.after.as_deref();
    let found = state.readers.list(&q, status, after, limit).await?;
    Ok(Json(found.into_iter().map(ReaderLine::from).collect()))
}

/// Everything held about a subscriber, with their digest deliveries.
#[utoipa::path(get, path = "/api/v1/subscribers/{id}", tag = "subscribers", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = Object), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    state
        .readers
        .detail(&id)
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
    let detail = state
        .readers
        .detail(&id)
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
    state
        .readers
        .export(&id, &caller.0)
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
    if state.readers.erase(&id, &caller.0).await? {
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
    let wording = &state.newsletter_wording.id;
    let report = state
        .readers
        .import(bytes.as_ref(), &actor, wording)
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
    let figures = state.stats.collect(days).await?;
    Ok(Json(Stats::from(figures)))
}

// No doc comment: it would become the schema's description, which has none.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Stats {
    pub readers: ReaderCounts,
    /// Oldest first, one entry per day, today last.
    pub days: Vec<Day>,
}

/// Readers by state. A reader may be in several (e.g. confirmed and paused).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ReaderCounts {
    pub pending: i64,
    pub confirmed: i64,
    /// Confirmed, newsletter consent in force, not paused, not suppressed.
    pub digest_on: i64,
    pub paused: i64,
    /// Newsletter consent withdrawn.
    pub unsubscribed: i64,
    /// Never sent to again after a hard bounce.
    pub suppressed: i64,
}

/// Signups and unsubscribes on one UTC day.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Day {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub signups: i64,
    pub unsubscribes: i64,
}

impl From<stats::Figures> for Stats {
    fn from(figures: stats::Figures) -> Self {
        let r = figures.readers;
        Self {
            readers: ReaderCounts {
                pending: r.pending,
                confirmed: r.confirmed,
                digest_on: r.digest_on,
                paused: r.paused,
                unsubscribed: r.unsubscribed,
                suppressed: r.suppressed,
            },
            days: figures
                .days
                .into_iter()
                .map(|d| Day {
                    date: d.date,
                    signups: d.signups,
                    unsubscribes: d.unsubscribes,
                })
                .collect(),
        }
    }
}
