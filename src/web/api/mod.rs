//! The JSON API under `/api/v1` for scripts and other systems: bearer
//! tokens, JSON errors, idempotent POSTs, and an OpenAPI 3.1 document built
//! from the same handlers that serve it, so the two cannot drift.

mod articles;
mod digests;
mod docs;
mod error;
mod idempotency;
mod openapi;
mod subscribers;
mod suppressions;
mod webhooks;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State},
    http::{StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::de::DeserializeOwned;
use utoipa::OpenApi as _;
use utoipa_axum::{router::OpenApiRouter, routes};

pub use articles::EditorArticle;
pub use digests::CampaignSummary;
pub use error::{ApiError, ErrorBody};
use openapi::{ApiDoc, with_shared_answers};
pub use subscribers::ReaderLine;

use crate::{audit::Actor, web::AppState};

/// A stored time (Unix ms) as the API gives every time: RFC 3339, UTC,
/// milliseconds (`2026-12-07T09:30:00.000Z`), as it takes them too.
pub(super) use crate::clock::rfc3339_text as rfc3339;

/// A time the API was given, in RFC 3339, as Unix ms.
pub(super) fn parse_time(text: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(text.trim())
        .ok()
        .map(|at| at.timestamp_millis())
}

/// API bodies are JSON documents of articles at most; CSV imports are not here.
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024;

/// The API's routes and the OpenAPI document describing exactly them.
pub fn routes(state: AppState) -> Router<AppState> {
    let (router, document) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(articles::list, articles::create))
        .routes(routes!(articles::get, articles::update, articles::delete))
        .routes(routes!(articles::publish))
        .routes(routes!(articles::unpublish))
        .routes(routes!(digests::list, digests::create))
        .routes(routes!(digests::preview))
        .routes(routes!(digests::get))
        .routes(routes!(digests::pause))
        .routes(routes!(digests::resume))
        .routes(routes!(digests::cancel))
        .routes(routes!(subscribers::list))
        .routes(routes!(subscribers::import))
        .routes(routes!(subscribers::get, subscribers::erase))
        .routes(routes!(subscribers::consents))
        .routes(routes!(subscribers::export))
        .routes(routes!(subscribers::stats))
        .routes(routes!(suppressions::list, suppressions::add))
        .routes(routes!(suppressions::remove))
        .routes(routes!(webhooks::list, webhooks::add))
        .routes(routes!(webhooks::get, webhooks::remove))
        .routes(routes!(webhooks::enable))
        .routes(routes!(webhooks::disable))
        .split_for_parts();
    let document = std::sync::Arc::new(with_shared_answers(document));
    let reference = std::sync::Arc::new(docs::Reference::of(&document));
    router
        .layer(middleware::from_fn_with_state(
            state.clone(),
            idempotency::replay,
        ))
        .layer(middleware::from_fn_with_state(state, guard_tokens))
        .layer(DefaultBodyLimit::max(MAX_API_BODY_BYTES))
        .route(
            "/api/openapi.json",
            get(move || {
                let document = document.clone();
                async move { Json(document.as_ref().clone()) }
            }),
        )
        .route(
            "/api/docs",
            get(move |State(state): State<AppState>| {
                let reference = reference.clone();
                async move {
                    state
                        .pages
                        .render_console("admin/api_docs.html", "", None, reference.as_ref())
                        .map_err(crate::web::AppError::from)
                }
            }),
        )
}

/// The caller behind `Authorization: Bearer <token>`; 401 without a live token.
pub struct Caller(pub Actor);

impl Caller {
    /// 403 unless the token has the admin role.
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.0.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }
}

/// The credential after `Authorization: Bearer`, or "".
pub(super) fn bearer(headers: &header::HeaderMap) -> &str {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map_or("", str::trim)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let bearer = bearer(&parts.headers);
        match state.tokens.authenticate(bearer).await? {
            Some(actor) => {
                limit(state, &actor)?;
                Ok(Self(actor))
            }
            None => Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Send a live API token as `Authorization: Bearer <token>`.",
            )),
        }
    }
}

/// 429 with `Retry-After` past the token's requests per minute.
fn limit(state: &AppState, actor: &Actor) -> Result<(), ApiError> {
    use governor::clock::{Clock as _, DefaultClock};
    let Some(limiter) = &state.api_limiter else {
        return Ok(());
    };
    limiter.check_key(&actor.label).map_err(|not_until| {
        let wait = not_until.wait_time_from(DefaultClock::default().now());
        ApiError::rate_limited("Too many requests for this token", wait)
    })
}

/// A wrong token (401) counts as a miss against the client's IP; past the
/// budget, every call from it gets 429 for a while (E-04).
async fn guard_tokens(State(state): State<AppState>, request: Request, next: Next) -> Response {
    super::guards::guard(
        &state,
        request,
        next,
        StatusCode::UNAUTHORIZED,
        |_, _, wait| async move {
            ApiError::rate_limited(
                "Too many calls with tokens that match nothing from this address",
                wait,
            )
            .into_response()
        },
    )
    .await
}

/// A JSON body whose rejections are API errors: 400 for bad JSON, 422 for
/// a well-formed body with unknown, missing or mistyped fields.
pub struct Body<T>(pub T);

impl<T: DeserializeOwned> FromRequest<AppState> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        match Json::<T>::from_request(request, state).await {
            Ok(Json(value)) => Ok(Self(value)),
            Err(rejection) => {
                let status = rejection.status();
                let code = match status {
                    StatusCode::UNPROCESSABLE_ENTITY => "invalid_field",
                    StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
                    StatusCode::PAYLOAD_TOO_LARGE => "too_large",
                    _ => "invalid_json",
                };
                Err(ApiError::new(status, code, rejection.body_text()))
            }
        }
    }
}

/// Query parameters whose rejections are API errors (400, `invalid_query`).
pub struct Params<T>(pub T);

impl<T: DeserializeOwned + Send> FromRequestParts<AppState> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(Self(value)),
            Err(rejection) => Err(ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_query",
                rejection.body_text(),
            )),
        }
    }
}

/// Page sizes: 50 by default, 500 at most.
pub fn page_size(limit: Option<u32>) -> i64 {
    i64::from(limit.unwrap_or(50).clamp(1, 500))
}
