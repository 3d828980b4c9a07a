//! One error type for handlers: logs the cause once, shows an opaque page.

use axum::{
    http::StatusCode,
    response::{Html, IntoResponse, Response},
};

use crate::store::Fault;

/// How long a client is asked to wait while the database is unavailable:
/// long enough for a restart or a failover, short enough to be retried.
pub(crate) const UNAVAILABLE_RETRY_AFTER_S: u64 = 30;

/// An unexpected failure. Expected outcomes (bad input, invalid links) are
/// answered by the handlers themselves with their own pages.
#[derive(Debug)]
pub struct AppError(anyhow::Error);

impl<E: Into<anyhow::Error>> From<E> for AppError {
    fn from(error: E) -> Self {
        Self(error.into())
    }
}

/// How long a client is asked to wait when every password hashing thread
/// is busy: a flood passes in seconds, or its sender is throttled by then.
pub(crate) const BUSY_RETRY_AFTER_S: u64 = 5;

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let error = crate::telemetry::error_text(&self.0);
        if self
            .0
            .downcast_ref::<crate::accounts::HasherBusy>()
            .is_some()
        {
            tracing::warn!(error, "password hashing busy");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", BUSY_RETRY_AFTER_S.to_string())],
                plain_page(
                    "Busy just now",
                    "Too many sign-ins are being checked at this moment. Nothing you sent was changed; please try again in a few seconds.",
                ),
            )
                .into_response();
        }
        match crate::store::fault(&self.0) {
            Some(Fault::UnstorableText) => {
                tracing::info!(error, "request with unstorable text");
                (
                    StatusCode::BAD_REQUEST,
                    plain_page(
                        "That request could not be read",
                        "It contained characters that no form here accepts. Please go back and check what you entered.",
                    ),
                )
                    .into_response()
            }
            Some(Fault::Unavailable) => {
                tracing::warn!(error, "database unavailable");
                (
                    StatusCode::SERVICE_UNAVAILABLE,
                    [("retry-after", UNAVAILABLE_RETRY_AFTER_S.to_string())],
                    plain_page(
                        "Temporarily unavailable",
                        "We can't reach our database just now. Nothing you sent was lost; please try again in a minute.",
                    ),
                )
                    .into_response()
            }
            None => {
                tracing::error!(error, "request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    plain_page("Something went wrong", "Please try again in a moment."),
                )
                    .into_response()
            }
        }
    }
}

/// A page that needs no template, for when templates themselves may be the problem.
fn plain_page(title: &str, message: &str) -> Html<String> {
    Html(format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>\
         <link rel=\"stylesheet\" href=\"/static/style.css\"></head>\
         <body><main class=\"narrow\"><h1>{title}</h1><p>{message}</p><p><a href=\"/\">Home</a></p></main></body></html>"
    ))
}

pub async fn not_found() -> (StatusCode, Html<String>) {
    (
        StatusCode::NOT_FOUND,
        plain_page("Page not found", "There is nothing at this address."),
    )
}
