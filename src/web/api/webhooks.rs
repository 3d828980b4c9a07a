//! `/api/v1/webhooks`, for admin tokens: the endpoints outgoing webhooks
//! are sent to, added (the secret is in that answer only), turned off and
//! on, removed, each change audited; one endpoint's latest events.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{ApiError, Body, Caller, ErrorBody, rfc3339};
use crate::{
    store::{webhook_endpoints::EndpointRow, webhooks::MessageRow},
    web::AppState,
    webhook_endpoints::EndpointRefused,
};

/// An endpoint that events are POSTed to.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Endpoint {
    pub id: String,
    pub url: String,
    /// The event types sent to it.
    pub events: Vec<String>,
    pub description: String,
    /// False once turned off, by an admin or after a day of failures.
    pub enabled: bool,
    /// Since when every request has failed (RFC 3339); null after a success.
    #[schema(format = DateTime)]
    pub failing_since: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub disabled_at: Option<String>,
    pub disabled_reason: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// Events waiting to be sent to it.
    pub pending: i64,
}

impl From<EndpointRow> for Endpoint {
    fn from(row: EndpointRow) -> Self {
        Self {
            events: row.event_types(),
            id: row.id,
            url: row.url,
            description: row.description,
            enabled: row.enabled == 1,
            failing_since: row.failing_since.map(rfc3339),
            last_error: row.last_error,
            disabled_at: row.disabled_at.map(rfc3339),
            disabled_reason: row.disabled_reason,
            created_at: rfc3339(row.created_at),
            pending: row.pending,
        }
    }
}

/// One event sent, waiting or given up.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Event {
    /// The `webhook-id` it is sent with.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: String,
    /// `pending`, `sent` or `failed` (given up).
    pub status: String,
    pub attempts: i64,
    /// When it is tried next, while pending.
    #[schema(format = DateTime)]
    pub next_attempt_at: Option<String>,
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub sent_at: Option<String>,
}

impl From<MessageRow> for Event {
    fn from(row: MessageRow) -> Self {
        let pending = row.status == "pending";
        Self {
            id: row.event_id,
            kind: row.event_type,
            status: row.status,
            attempts: row.attempts,
            next_attempt_at: pending.then(|| rfc3339(row.next_attempt_at)),
            last_error: row.last_error,
            created_at: rfc3339(row.created_at),
            sent_at: row.sent_at.map(rfc3339),
        }
    }
}

/// An endpoint with its latest events, newest first.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct EndpointWithEvents {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    pub recent_events: Vec<Event>,
}

/// An endpoint just added, with the secret its requests are signed with.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AddedEndpoint {
    #[serde(flatten)]
    pub endpoint: Endpoint,
    /// `whsec_…`: given in this answer only.
    pub secret: String,
}

fn refusal(refused: &EndpointRefused) -> ApiError {
    let message = refused.to_string();
    let invalid = |field| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_field",
            message.clone(),
        )
        .with_field(field)
    };
    match refused {
        EndpointRefused::Url(_) => invalid("url"),
        EndpointRefused::Events(_) => invalid("events"),
        EndpointRefused::DescriptionTooLong => invalid("description"),
        EndpointRefused::NotFound => ApiError::new(StatusCode::NOT_FOUND, "not_found", message),
    }
}

/// Every endpoint. Admins only.
#[utoipa::path(get, path = "/api/v1/webhooks", tag = "webhooks",
    responses((status = 200, body = [Endpoint]), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<Vec<Endpoint>>, ApiError> {
    caller.require_admin()?;
    let rows = state.webhook_endpoints.list().await?;
    Ok(Json(rows.into_iter().map(Endpoint::from).collect()))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewEndpoint {
    /// An http(s) address on the public internet (or one the operator
    /// allowed in `outgoing_webhooks.allow_addresses`).
    url: String,
    /// The event types to send; every type if absent or empty.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

/// Registers an endpoint; the answer holds its secret, given this once.
/// Admins only.
#[utoipa::path(post, path = "/api/v1/webhooks", tag = "webhooks", request_body = NewEndpoint,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with this key get the first answer")),
    responses((status = 201, description = "Added", body = AddedEndpoint),
        (status = 400, body = ErrorBody), (status = 401, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn add(
    State(state): State<AppState>,
    caller: Caller,
    Body(body): Body<NewEndpoint>,
) -> Result<(StatusCode, Json<AddedEndpoint>), ApiError> {
    caller.require_admin()?;
    if body.events.iter().any(|t| t.contains(',')) {
        return Err(refusal(&EndpointRefused::Events(
            "an event type holds no comma".into(),
        )));
    }
    let added = state
        .webhook_endpoints
        .add(
            &body.url,
            &body.events.join(","),
            &body.description,
            &caller.0,
        )
        .await?
        .map_err(|refused| refusal(&refused))?;
    let answer = AddedEndpoint {
        endpoint: Endpoint::from(added.endpoint),
        secret: added.secret,
    };
    Ok((StatusCode::CREATED, Json(answer)))
}

/// An endpoint and its latest 50 events. Admins only.
#[utoipa::path(get, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, body = EndpointWithEvents), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<EndpointWithEvents>, ApiError> {
    caller.require_admin()?;
    let (endpoint, events) = state
        .webhook_endpoints
        .get(&id)
        .await?
        .ok_or_else(|| refusal(&EndpointRefused::NotFound))?;
    Ok(Json(EndpointWithEvents {
        endpoint: Endpoint::from(endpoint),
        recent_events: events.into_iter().map(Event::from).collect(),
    }))
}

/// Removes an endpoint and the events waiting for it. Admins only.
#[utoipa::path(delete, path = "/api/v1/webhooks/{id}", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 204, description = "Removed"), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    caller.require_admin()?;
    state
        .webhook_endpoints
        .remove(&id, &caller.0)
        .await?
        .map_err(|refused| refusal(&refused))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Turns an endpoint back on: the events that were waiting for it are sent
/// at once (none is queued for it while it is off). Harmless to repeat.
/// Admins only.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/enable", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn enable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    switch(&state, &caller, &id, true).await
}

/// Turns an endpoint off: no new event is queued for it. Harmless to
/// repeat. Admins only.
#[utoipa::path(post, path = "/api/v1/webhooks/{id}/disable", tag = "webhooks",
    params(("id" = String, Path, description = "The endpoint's id")),
    responses((status = 200, body = Endpoint), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn disable(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Endpoint>, ApiError> {
    switch(&state, &caller, &id, false).await
}

async fn switch(
    state: &AppState,
    caller: &Caller,
    id: &str,
    enabled: bool,
) -> Result<Json<Endpoint>, ApiError> {
    caller.require_admin()?;
    let endpoint = state
        .webhook_endpoints
        .set_enabled(id, enabled, &caller.0)
        .await?
        .map_err(|refused| refusal(&refused))?;
    Ok(Json(Endpoint::from(endpoint)))
}
