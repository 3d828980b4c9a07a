//! `Idempotency-Key` on POSTs: the first request with a key runs and, if
//! it succeeds, its answer is kept for a day; a retry with the same key and
//! body gets that answer again instead of publishing or sending twice.

use axum::{
    body::{Body, to_bytes},
    extract::{Request, State},
    http::{HeaderValue, Method, StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};
use sha2::{Digest, Sha256};

use super::{ApiError, MAX_API_BODY_BYTES};
use crate::web::AppState;

const HEADER: &str = "idempotency-key";

pub async fn replay(State(state): State<AppState>, request: Request, next: Next) -> Response {
    match run(&state, request, next).await {
        Ok(response) | Err(response) => response,
    }
}

async fn run(state: &AppState, request: Request, next: Next) -> Result<Response, Response> {
    if request.method() != Method::POST {
        return Ok(next.run(request).await);
    }
    let Some(key) = idempotency_key(&request).map_err(IntoResponse::into_response)? else {
        return Ok(next.run(request).await);
    };
    // Keys belong to the live token that sent them; without one there is
    // nothing to replay, and the handler answers 401.
    let token = state
        .tokens
        .find(super::bearer(request.headers()))
        .await
        .map_err(|e| ApiError::from(e).into_response())?;
    let Some(actor) = token.map(|t| t.id) else {
        return Ok(next.run(request).await);
    };
    let (parts, body) = request.into_parts();
    let bytes = to_bytes(body, MAX_API_BODY_BYTES).await.map_err(|_| {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "The body is too large.",
        )
        .into_response()
    })?;
    let request_hash = hash_request(parts.uri.path(), &bytes);
    // A reservation left by a request that died is taken over.
    if !state
        .idempotency
        .reserve(&actor, &key, &request_hash)
        .await
        .map_err(internal)?
    {
        return Err(kept(state, &actor, &key, &request_hash).await);
    }
    let response = next
        .run(Request::from_parts(parts, Body::from(bytes)))
        .await;
    keep(state, &actor, &key, response).await
}

/// The request's `Idempotency-Key`, if it has one; 400 if it is not 1 to
/// 255 visible ASCII characters.
fn idempotency_key(request: &Request) -> Result<Option<String>, ApiError> {
    let Some(key) = request.headers().get(HEADER) else {
        return Ok(None);
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| (1..=255).contains(&k.len()))
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                "invalid_idempotency_key",
                "Idempotency-Key must be 1 to 255 visible ASCII characters.",
            )
        })?;
    Ok(Some(key.to_owned()))
}

/// What a retry must match: the path and the body.
fn hash_request(path: &str, body: &[u8]) -> String {
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    hex::encode(hasher.finalize())
}

fn internal(error: anyhow::Error) -> Response {
    ApiError::from(error).into_response()
}

/// Keeps a successful answer for the key; a failed one lets the key go,
/// so a retry runs again.
async fn keep(
    state: &AppState,
    actor: &str,
    key: &str,
    response: Response,
) -> Result<Response, Response> {
    let keys = &state.idempotency;
    if !response.status().is_success() {
        keys.release(actor, key).await.map_err(internal)?;
        return Ok(response);
    }
    let (parts, body) = response.into_parts();
    let body = to_bytes(body, usize::MAX)
        .await
        .map_err(|e| internal(e.into()))?;
    let text = String::from_utf8_lossy(&body);
    let status = i64::from(parts.status.as_u16());
    keys.complete(actor, key, status, &text)
        .await
        .map_err(internal)?;
    Ok(Response::from_parts(parts, Body::from(body)))
}

/// The answer for a key seen before.
async fn kept(state: &AppState, actor: &str, key: &str, request_hash: &str) -> Response {
    let found = match state.idempotency.kept_answer(actor, key).await {
        Ok(found) => found,
        Err(error) => return ApiError::from(error).into_response(),
    };
    match found {
        Some(kept) if kept.request_hash != request_hash => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "idempotency_key_reused",
            "This Idempotency-Key was used for a different request.",
        )
        .into_response(),
        Some(kept) if kept.status == 0 => ApiError::new(
            StatusCode::CONFLICT,
            "request_in_progress",
            "A request with this Idempotency-Key is still running; retry shortly.",
        )
        .into_response(),
        Some(kept) => {
            let status = u16::try_from(kept.status)
                .ok()
                .and_then(|s| StatusCode::from_u16(s).ok())
                .unwrap_or(StatusCode::OK);
            let mut response = (status, kept.body).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert("idempotent-replayed", HeaderValue::from_static("true"));
            response
        }
        // Released between our two reads: the first attempt failed.
        None => ApiError::new(
            StatusCode::CONFLICT,
            "request_in_progress",
            "A request with this Idempotency-Key just failed; retry it.",
        )
        .into_response(),
    }
}
