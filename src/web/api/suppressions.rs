//! `/api/v1/suppressions`, for admin tokens: the suppression list, newest
//! first or one address's entry; an address added by hand or taken off,
//! each change audited.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Body, Caller, ErrorBody, Params, parse_time, rfc3339};
use crate::{
    feedback::{SuppressionRefused, SuppressionRow},
    web::AppState,
};

/// One entry of the suppression list: an address never mailed again.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Suppression {
    /// The address's keyed hash, in hex: the list keeps no address.
    pub email_hash: String,
    /// `erased`, `hard_bounce`, `soft_bounces`, `complaint` or `manual`.
    pub reason: String,
    /// The reader it suppresses, while they exist.
    pub subscriber_id: Option<String>,
    /// That reader's address; null once they are erased, or if the address
    /// was never a reader's.
    pub email: Option<String>,
    /// The bounce or complaint report that caused it.
    pub event_id: Option<String>,
    /// An editor's note on an address added by hand.
    pub note: Option<String>,
    /// When it was listed; the `before` of the next page.
    #[schema(format = DateTime)]
    pub created_at: String,
}

impl From<SuppressionRow> for Suppression {
    fn from(row: SuppressionRow) -> Self {
        Self {
            email_hash: row.email_hash,
            reason: row.reason,
            subscriber_id: row.subscriber_id,
            email: row.email,
            event_id: row.event_id,
            note: row.note,
            created_at: rfc3339(row.created_at),
        }
    }
}

/// A refusal of the list's rules, answered with its own status.
fn refusal(refused: &SuppressionRefused) -> ApiError {
    let message = refused.to_string();
    match refused {
        SuppressionRefused::NotAnAddress => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                .with_field("address")
        }
        SuppressionRefused::NoteTooLong => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
                .with_field("note")
        }
        SuppressionRefused::NotListed => {
            ApiError::new(StatusCode::NOT_FOUND, "not_listed", message)
        }
        SuppressionRefused::Erased => ApiError::new(StatusCode::CONFLICT, "erased", message),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// A whole address: its entry only. The list holds keyed hashes, so
    /// part of an address finds nothing.
    address: Option<String>,
    /// The cursor: the `created_at` of the last entry of the previous page
    /// (RFC 3339).
    #[param(format = DateTime)]
    before: Option<String>,
}

/// The suppression list, newest first, 50 entries a page. Admins only.
#[utoipa::path(get, path = "/api/v1/suppressions", tag = "suppressions", params(ListParams),
    responses((status = 200, body = [Suppression]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<Suppression>>, ApiError> {
    caller.require_admin()?;
    let address = params.address.as_deref();
    let before = match params.before.as_deref().map(parse_time) {
        Some(None) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                "before must be a time in RFC 3339, as created_at gives it",
            )
            .with_field("before"));
        }
        Some(Some(ms)) => Some(ms),
        None => None,
    };
    let rows = state
        .suppressions
        .list(address, before)
        .await?
        .map_err(|refused| refusal(&refused))?;
    Ok(Json(rows.into_iter().map(Suppression::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewSuppression {
    /// The address never to mail again.
    address: String,
    /// Why, for the audit log and the console (500 characters at most).
    note: Option<String>,
}

/// Never mails an address again: 201 when added, 200 when it was on the
/// list already (its first reason stays). Admins only.
#[utoipa::path(post, path = "/api/v1/suppressions", tag = "suppressions", request_body = NewSuppression,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with this key get the first answer")),
    responses((status = 201, description = "Added", body = Suppression),
        (status = 200, description = "On the list already", body = Suppression),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewSuppression>,
) -> Result<(StatusCode, Json<Suppression>), ApiError> {
    caller.require_admin()?;
    let note = body.note.as_deref().unwrap_or("");
    let suppressions = &state.suppressions;
    let added = suppressions
        .add(&body.address, note, &caller.0)
        .await?
        .map_err(|refused| refusal(&refused))?;
    let listed = suppressions
        .list(Some(body.address.as_str()), None)
        .await?
        .map_err(|refused| refusal(&refused))?;
    let entry = listed
        .into_iter()
        .next()
        .ok_or_else(|| anyhow::anyhow!("a suppression just added is not listed"))?;
    let status = if added {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(Suppression::from(entry))))
}

/// Mails an address again. An erased reader's entry stays until they sign
/// up afresh (409). Admins only.
#[utoipa::path(delete, path = "/api/v1/suppressions/{address}", tag = "suppressions",
    params(("address" = String, Path, description = "The whole address, percent-encoded")),
    responses((status = 204, description = "Taken off the list"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(address): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state
        .suppressions
        .remove(&address, &caller.0)
        .await?
        .map_err(|refused| refusal(&refused))?;
    Ok(StatusCode::NO_CONTENT)
}
