//! The JSON API under `/api/v1` for scripts and other systems: bearer
//! tokens, JSON errors, idempotent POSTs, and an OpenAPI 3.1 document built
//! from the same handlers that serve it, so the two cannot drift.

mod articles;
mod digests;
mod idempotency;
mod subscribers;

use axum::{
    Json, Router,
    extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State},
    http::{StatusCode, header, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Response},
    routing::get,
};
use serde::{Serialize, de::DeserializeOwned};
use utoipa::{
    Modify, OpenApi, ToSchema,
    openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme},
};
use utoipa_axum::{router::OpenApiRouter, routes};

use crate::{app::AppState, audit::Actor, editors::tokens};

/// API bodies are JSON documents of articles at most; CSV imports are not here.
pub const MAX_API_BODY_BYTES: usize = 1024 * 1024;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Broadsheet API",
        version = "1",
        description = "Articles, digests, subscribers and figures of a Broadsheet publication. \
            Every call needs `Authorization: Bearer <token>` (`broadsheet token create`). \
            Errors are `{\"error\": {\"code\", \"message\", \"field\"?}}`. POSTs accept an \
            `Idempotency-Key` header: a retry with the same key and body gets the first answer."
    ),
    modifiers(&BearerAuth),
    security(("bearer" = [])),
    tags(
        (name = "articles", description = "Articles, drafts and publishing"),
        (name = "digests", description = "Digest campaigns: start, watch, pause, resume, cancel"),
        (name = "subscribers", description = "Readers, their consents, export and erasure"),
        (name = "stats", description = "Figures")
    )
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

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
        .split_for_parts();
    let document = std::sync::Arc::new(with_shared_answers(document));
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
}

/// Answers any operation may give, said once here rather than on each
/// handler: 400 (a malformed query, body or text), 429 (the per-token
/// limit, or too many wrong tokens from the caller's address) and 503 (the
/// database cannot be reached); with a body, 413 and 415 too. An
/// operation's own description of an answer is kept.
fn with_shared_answers(mut document: utoipa::openapi::OpenApi) -> utoipa::openapi::OpenApi {
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let answer = |description: &str| {
        ResponseBuilder::new()
            .description(description)
            .content(
                "application/json",
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            )
            .build()
    };
    let every = [
        (
            "400",
            answer("A malformed query parameter or body, or text that cannot be stored."),
        ),
        (
            "429",
            answer(
                "Too many requests for this token, or too many calls with wrong tokens from \
                 this address; see Retry-After.",
            ),
        ),
        (
            "503",
            answer("The database cannot be reached just now; see Retry-After."),
        ),
    ];
    let with_body = [
        (
            "413",
            answer("The body is larger than this operation takes."),
        ),
        (
            "415",
            answer("The body is not of the documented content type."),
        ),
    ];
    for item in document.paths.paths.values_mut() {
        let operations = [
            &mut item.get,
            &mut item.put,
            &mut item.post,
            &mut item.delete,
        ];
        for operation in operations.into_iter().flatten() {
            let shared = every.iter().chain(
                with_body
                    .iter()
                    .filter(|_| operation.request_body.is_some()),
            );
            for (status, answer) in shared {
                operation
                    .responses
                    .responses
                    .entry((*status).into())
                    .or_insert_with(|| answer.clone().into());
            }
        }
    }
    document
}

/// An API error: `{ "error": { "code", "message", "field"? } }`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// A stable, machine-readable name, e.g. `not_found`.
    code: String,
    message: String,
    /// The request field at fault, if one is.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<String>,
}

#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
    field: Option<String>,
    /// Seconds, for a 429.
    retry_after: Option<u64>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            field: None,
            retry_after: None,
        }
    }

    pub fn with_field(mut self, field: &str) -> Self {
        self.field = Some(field.to_owned());
        self
    }

    pub fn not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "not_found",
            "There is no such resource.",
        )
    }

    /// 429 with `Retry-After`, in whole seconds rounded up.
    fn rate_limited(reason: &str, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + 1;
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{reason}; retry in {seconds} s."),
        );
        error.retry_after = Some(seconds);
        error
    }

    fn forbidden() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This needs a token with the admin role.",
        )
    }
}

impl<E: Into<anyhow::Error>> From<E> for ApiError {
    fn from(error: E) -> Self {
        let error = error.into();
        match crate::store::fault(&error) {
            Some(crate::store::Fault::UnstorableText) => {
                return Self::new(
                    StatusCode::BAD_REQUEST,
                    "invalid_text",
                    "The request contains characters that cannot be stored (such as NUL).",
                );
            }
            Some(crate::store::Fault::Unavailable) => {
                tracing::warn!(error = format!("{error:#}"), "database unavailable");
                let mut unavailable = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The database cannot be reached just now; try again shortly.",
                );
                unavailable.retry_after = Some(super::error::UNAVAILABLE_RETRY_AFTER_S);
                return unavailable;
            }
            None => {}
        }
        tracing::error!(error = format!("{error:#}"), "API request failed");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "Something went wrong on our side; nothing was changed unless the answer says so.",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: ErrorDetail {
                code: self.code.to_owned(),
                message: self.message,
                field: self.field,
            },
        };
        let mut response = (self.status, Json(body)).into_response();
        if let Some(seconds) = self.retry_after
            && let Ok(value) = header::HeaderValue::from_str(&seconds.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        response
    }
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
        match tokens::authenticate(&state.store, &state.clock, bearer).await? {
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
    super::guesses::guard(
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
