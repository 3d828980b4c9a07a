//! Reading each request into what handlers take: the CSRF cookie every
//! browser gets on its first page, the token its forms carry, and the
//! `Frame` of every page.

use axum::{
    extract::{FromRequestParts, Request, State},
    http::{HeaderValue, header, request::Parts},
    middleware::Next,
    response::Response,
};
use axum_extra::extract::cookie::CookieJar;

use super::{
    AppError,
    cookie_choice::CookieChoice,
    frame::{Frame, client_ip, client_network, return_path},
    session::MaybeReader,
};
use crate::{domain::Token, web::AppState};

/// The browser's CSRF cookie value, as the middleware found or made it.
#[derive(Clone)]
struct CsrfCookie(String);

/// Gives every browser a CSRF cookie on its first page, so any form on any
/// page (the cookie banner is on all of them) can carry a valid token.
pub async fn ensure_csrf_cookie(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let jar = CookieJar::from_headers(request.headers());
    let existing = jar
        .get(state.csrf.cookie_name())
        .map(|c| c.value().to_owned());
    let value = existing
        .clone()
        .unwrap_or_else(|| Token::generate().expose().to_owned());
    request.extensions_mut().insert(CsrfCookie(value.clone()));
    let mut response = next.run(request).await;
    if existing.is_none()
        && let Ok(cookie) = HeaderValue::from_str(&state.csrf.cookie(value).to_string())
    {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

impl FromRequestParts<AppState> for Frame {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let csrf = csrf_token(parts, state);
        let MaybeReader(reader) = MaybeReader::from_request_parts(parts, state).await?;
        let jar = CookieJar::from_headers(&parts.headers);
        let cookie_choice = CookieChoice::from_jar(&jar, &state.cookie_banner.id);
        Ok(Self {
            csrf,
            reader,
            cookie_choice,
            path: return_path(parts.uri.path()),
            client_ip: client_ip(parts, &state.settings.clients.trusted_proxies),
            client_net: client_network(parts, &state.settings.clients),
        })
    }
}

/// The token this page's forms carry, for the browser's CSRF cookie.
pub fn csrf_token(parts: &Parts, state: &AppState) -> String {
    match parts.extensions.get::<CsrfCookie>() {
        Some(CsrfCookie(value)) => state.csrf.sign(value),
        None => String::new(),
    }
}
