//! Middleware that turns a client away before any handler runs: past its
//! share of requests in flight (`in_flight`), or after too many links and
//! API tokens that match nothing (`guesses`, E-04).

use std::time::Duration;

use axum::{
    extract::{FromRequestParts, MatchedPath, Request, State},
    http::{StatusCode, header},
    middleware::Next,
    response::{IntoResponse, Response},
};

use super::{
    frame::{Frame, client_network},
    too_many_requests,
};
use crate::web::AppState;

/// Requests in flight (`in_flight`): 429 with `Retry-After: 1` past the
/// client's share. Health checks are never held back: a load balancer's come from the
/// proxy's own address, whose share a client could otherwise fill.
pub async fn limit_in_flight(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    let health = matches!(request.uri().path(), "/healthz" | "/readyz");
    let Some(in_flight) = state.in_flight.as_ref().filter(|_| !health) else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let network = client_network(&parts, &state.settings.clients);
    let Some(_ticket) = in_flight.enter(network) else {
        return (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "1")],
            "Too many requests at once from your network: please wait for the answers.",
        )
            .into_response();
    };
    next.run(Request::from_parts(parts, body)).await
}

/// For routes whose path holds an emailed token: a 404 is a miss (every
/// unknown, used or expired link gets one, D-04); a refused IP gets the
/// 429 page.
pub async fn guard_links(State(state): State<AppState>, request: Request, next: Next) -> Response {
    guard(
        &state,
        request,
        next,
        StatusCode::NOT_FOUND,
        |state, mut parts, wait| async move {
            match Frame::from_request_parts(&mut parts, &state).await {
                Ok(frame) => too_many_requests(&state, &frame, wait)
                    .unwrap_or_else(IntoResponse::into_response),
                Err(error) => error.into_response(),
            }
        },
    )
    .await
}

/// Runs the request unless its client is refused, and counts a `miss`
/// answer against it; `refuse` makes the answer for a refused client.
pub async fn guard<F, R>(
    state: &AppState,
    request: Request,
    next: Next,
    miss: StatusCode,
    refuse: F,
) -> Response
where
    F: FnOnce(AppState, axum::http::request::Parts, Duration) -> R,
    R: Future<Output = Response>,
{
    let (parts, body) = request.into_parts();
    let ip = client_network(&parts, &state.settings.clients);
    if let Err(wait) = state.guesses.admit(ip) {
        return refuse(state.clone(), parts, wait).await;
    }
    let route = parts
        .extensions
        .get::<MatchedPath>()
        .map_or_else(String::new, |path| path.as_str().to_owned());
    let response = next.run(Request::from_parts(parts, body)).await;
    if response.status() == miss {
        state.guesses.missed(ip, &route);
    }
    response
}
