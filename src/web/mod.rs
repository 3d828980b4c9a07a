//! The public web site: router, pages, forms and their protections.

mod accounts;
mod admin;
mod api;
mod articles;
mod cookie_choice;
mod cookies;
mod csrf;
mod data_rights;
mod error;
mod extract;
pub(crate) mod frame;
mod guards;
mod guesses;
mod health;
mod in_flight;
mod pages;
mod privacy_notice;
mod reader_links;
mod session;
mod settings;
mod signup;
mod state;
mod static_files;
mod webhooks;

use std::time::Duration;

use axum::{
    Router,
    extract::{DefaultBodyLimit, MatchedPath},
    http::{HeaderMap, HeaderName, HeaderValue, Request, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::get,
};
use governor::clock::{Clock as _, DefaultClock};
use tower::ServiceBuilder;
use tower_http::{
    set_header::SetResponseHeaderLayer,
    timeout::TimeoutLayer,
    trace::{DefaultOnResponse, TraceLayer},
};
use tracing::Level;

/// The API's views of articles, campaigns and readers, which the CLI's
/// `--json` prints too: one shape for scripts either way.
pub use api::{CampaignSummary, EditorArticle, ReaderLine};
pub use csrf::Csrf;
pub use error::AppError;
pub use guesses::GuessThrottle;
pub use in_flight::InFlight;
pub use pages::Pages;
pub use settings::{ClientNetworks, WebSettings};
pub use state::AppState;

use crate::consent::Evidence;
use frame::Frame;

/// Forms are small; anything larger is refused with 413 (S-03).
pub const MAX_FORM_BYTES: usize = 16 * 1024;

/// Scripts and styles only from this site; no framing; forms post only here (S-05).
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// The whole site: readers' pages, the console, the API, and what every
/// request goes through.
pub fn router(state: AppState) -> Router {
    let mut router = Router::new()
        .merge(public_pages(&state))
        .merge(admin::routes(state.clone()))
        .merge(api::routes(state.clone()))
        .merge(webhooks::routes());
    if state.settings.metrics_on_site {
        router = router.route("/metrics", get(guarded_metrics));
    }
    let router = router
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/static/{*path}", get(static_files::serve))
        .fallback(articles::not_found)
        .layer(middleware::from_fn_with_state(
            state.clone(),
            guards::limit_in_flight,
        ));
    let settings = state.settings.clone();
    with_protections(router.with_state(state), &settings)
}

/// Readers' and visitors' pages. They get a CSRF cookie on first sight, so
/// every form works.
fn public_pages(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(articles::routes())
        .merge(signup::routes())
        .merge(accounts::routes())
        .merge(cookies::routes())
        .merge(data_rights::routes())
        .merge(privacy_notice::routes())
        .merge(emailed_links(state))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            extract::ensure_csrf_cookie,
        ))
}

/// Routes whose path holds an emailed token: misses are counted per IP (E-04).
fn emailed_links(state: &AppState) -> Router<AppState> {
    Router::new()
        .merge(signup::link_routes())
        .merge(accounts::link_routes())
        .merge(reader_links::link_routes())
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            guards::guard_links,
        ))
}

/// What every request and answer goes through, outermost first: metrics, a
/// span per request, the time limit, the body limit, the security headers.
fn with_protections(router: Router, settings: &WebSettings) -> Router {
    let timeout = settings.request_timeout;
    let hsts = settings
        .is_https
        .then(|| HeaderValue::from_static("max-age=31536000; includeSubDomains"));
    router.layer(
        ServiceBuilder::new()
            .layer(middleware::from_fn(crate::metrics::track_requests))
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

/// The router of a separate `server.metrics_bind` listener.
pub fn metrics_router(state: AppState) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(state)
}

/// `/metrics` on the site itself: for an admin API token only, as the
/// figures are the publication's business (Prometheus sends it with
/// `authorization: { credentials: … }`).
async fn guarded_metrics(state: axum::extract::State<AppState>, headers: HeaderMap) -> Response {
    let bearer = api::bearer(&headers);
    match state.tokens.authenticate(bearer).await {
        Ok(Some(actor)) if actor.is_admin() => metrics(state).await,
        Ok(_) => (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, "Bearer")],
            "Send an admin API token, or set server.metrics_bind.",
        )
            .into_response(),
        Err(error) => AppError::from(error).into_response(),
    }
}

/// `/metrics`: Prometheus text format.
async fn metrics(axum::extract::State(state): axum::extract::State<AppState>) -> Response {
    match state.health.metrics().await {
        Ok(text) => ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response(),
        Err(error) => AppError::from(error).into_response(),
    }
}

/// One span per request, named by route, never by URI: URIs carry tokens (D-17).
fn request_span<B>(request: &Request<B>) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    tracing::info_span!("request", method = %request.method(), route)
}

/// A page with a fixed message and no form.
fn message_page(
    state: &AppState,
    frame: &Frame,
    status: StatusCode,
    template: &str,
) -> Result<Response, AppError> {
    Ok((
        status,
        state
            .pages
            .render(template, frame, minijinja::context! {})?,
    )
        .into_response())
}

/// 403: the form's CSRF token is missing or not this browser's.
fn csrf_refused(state: &AppState, frame: &Frame) -> Result<Response, AppError> {
    message_page(state, frame, StatusCode::FORBIDDEN, "form_expired.html")
}

/// 404 with the one page for unknown, used and expired links (D-04).
fn invalid_link(state: &AppState, frame: &Frame) -> Result<Response, AppError> {
    message_page(state, frame, StatusCode::NOT_FOUND, "invalid_link.html")
}

/// 429 with the page that says so and how long to wait.
fn too_many_requests(
    state: &AppState,
    frame: &Frame,
    wait: Duration,
) -> Result<Response, AppError> {
    let page = message_page(state, frame, StatusCode::TOO_MANY_REQUESTS, "too_many.html")?;
    let retry_after = (wait.as_secs() + 1).to_string();
    Ok(([(header::RETRY_AFTER, retry_after)], page).into_response())
}

/// 429 without a template, saying how long to wait.
fn too_many_requests_plain(wait: Duration) -> Response {
    let retry_after = (wait.as_secs() + 1).to_string();
    (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::RETRY_AFTER, retry_after)],
        "Too many attempts; please wait a minute and try again.",
    )
        .into_response()
}

/// The per-IP limit on requests that send email (signup, reset, sign-in
/// link, D-10): `Some(429 page)` past it.
fn limit_email_requests(state: &AppState, frame: &Frame) -> Result<Option<Response>, AppError> {
    let Some(limiter) = &state.email_request_limiter else {
        return Ok(None);
    };
    match limiter.check_key(&frame.client_net) {
        Ok(()) => Ok(None),
        Err(not_until) => {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            too_many_requests(state, frame, wait).map(Some)
        }
    }
}

/// How a consent was given, from the connection and its headers (G-04).
fn evidence(state: &AppState, frame: &Frame, headers: &HeaderMap) -> Evidence {
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    state
        .consent
        .evidence(frame.client_ip, user_agent, &state.privacy_notice.id)
}
