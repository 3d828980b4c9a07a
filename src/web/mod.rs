//! The public web site: router, pages, forms and their protections.

mod csrf;
mod error;
mod health;
mod pages;
mod signup;
mod static_files;

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath},
    http::{HeaderName, HeaderValue, Request, StatusCode, header},
    routing::get,
};
use tower::ServiceBuilder;
use tower_http::{
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

pub use csrf::Csrf;
pub use error::AppError;
pub use pages::Pages;

use crate::app::AppState;

/// Forms are small; anything larger is refused with 413 (S-03).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Scripts and styles only from this site; no framing; forms post only here (S-05).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

pub fn router(state: AppState) -> Router {
    let timeout = Duration::from_secs(state.config.server.request_timeout_s);
    let hsts = state
        .config
        .server
        .is_https()
        .then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    Router::new()
        .route("/", get(signup::home))
        .route("/subscribe", get(signup::form).post(signup::subscribe))
        .route(
            "/confirm/{token}",
            get(signup::confirm_page).post(signup::confirm),
        )
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{*path}", get(static_files::serve))
        .fallback(error::not_found)
        .with_state(state)
        .layer(
            ServiceBuilder::new()
                .layer(
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(tower_http::LatencyUnit::Micros),
                        ),
                )
                .layer(TimeoutLayer::with_status_code(
                    StatusCode::REQUEST_TIMEOUT,
                    timeout,
                ))
                .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
                .layer(SetResponseHeaderLayer::if_not_present(
                    header::CONTENT_SECURITY_POLICY,
                    HeaderValue::from_static(CONTENT_SECURITY_POLICY),
                ))
                .layer(SetResponseHeaderLayer::overriding(
                    header::X_CONTENT_TYPE_OPTIONS,
                    HeaderValue::from_static("nosniff"),
                ))
                // Token links must not leak through Referer; no page needs one (S-05).
                .layer(SetResponseHeaderLayer::overriding(
                    header::REFERRER_POLICY,
                    HeaderValue::from_static("no-referrer"),
                ))
                .layer(SetResponseHeaderLayer::if_not_present(
                    HeaderName::from_static("strict-transport-security"),
                    hsts,
                )),
        )
}

/// One span per request, named by route, never by URI: URIs carry tokens (D-17).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}
