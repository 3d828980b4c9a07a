//! The API's errors: `{ "error": { "code", "message", "field"? } }` with
//! the status that goes with them; internals are logged, never shown.

use axum::{
    Json,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Serialize;
use utoipa::ToSchema;

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
    pub(super) fn rate_limited(reason: &str, wait: std::time::Duration) -> Self {
        let seconds = wait.as_secs() + 1;
        let mut error = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("{reason}; retry in {seconds} s."),
        );
        error.retry_after = Some(seconds);
        error
    }

    pub(super) fn forbidden() -> Self {
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
                tracing::warn!(
                    error = crate::telemetry::error_text(&error),
                    "database unavailable"
                );
                let mut unavailable = Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "unavailable",
                    "The database cannot be reached just now; try again shortly.",
                );
                unavailable.retry_after = Some(crate::web::error::UNAVAILABLE_RETRY_AFTER_S);
                return unavailable;
            }
            None => {}
        }
        tracing::error!(
            error = crate::telemetry::error_text(&error),
            "API request failed"
        );
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
