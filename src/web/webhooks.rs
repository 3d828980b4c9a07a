//! `POST /webhooks/{provider}`: sending providers' bounce and complaint
//! events. No session, no CSRF token: each provider proves itself its own
//! way (`feedback::webhooks`). A provider not configured answers 404, a
//! request it did not sign 401, one not in its format 400.

use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::post,
};
use serde_json::json;

use super::{AppError, AppState};
use crate::feedback::{Provider, WebhookError, WebhookRequest};

/// Providers batch events: SendGrid posts up to a thousand at once (some
/// hundreds of KiB); Mailgun's body must be read before its signature is.
const MAX_WEBHOOK_BYTES: usize = 1024 * 1024;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/webhooks/{provider}", post(receive))
        .layer(DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
}

async fn receive(
    State(state): State<AppState>,
    Path(provider): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, AppError> {
    let Ok(provider) = provider.parse::<Provider>() else {
        return Ok(not_found());
    };
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let request = WebhookRequest {
        authorization: text(header::AUTHORIZATION.as_str()),
        sendgrid_signature: text("x-twilio-email-event-webhook-signature"),
        sendgrid_timestamp: text("x-twilio-email-event-webhook-timestamp"),
        body: &body,
    };
    match state.webhooks.receive(provider, &request).await {
        Ok(received) => Ok((StatusCode::OK, Json(received)).into_response()),
        Err(WebhookError::NotConfigured) => Ok(not_found()),
        Err(WebhookError::Refused(refused)) => {
            let status = if refused.is_malformed() {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            };
            tracing::info!(?provider, %refused, "webhook request refused");
            let error = json!({ "error": refused.to_string() });
            Ok((status, Json(error)).into_response())
        }
        Err(WebhookError::Failed(error)) => Err(error.into()),
    }
}

fn not_found() -> Response {
    let error = json!({ "error": "no such webhook" });
    (StatusCode::NOT_FOUND, Json(error)).into_response()
}
