//! The session cookie and the extractor that turns it into a signed-in reader.

use std::time::Duration;

use axum::{extract::FromRequestParts, http::request::Parts};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

use super::AppError;
use crate::{accounts::Reader, domain::Token, web::AppState};

/// `__Host-` binds the cookie to this exact origin over https.
fn cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-bs_session"
    } else {
        "bs_session"
    }
}

/// The cookie that carries a new session's secret: HttpOnly, SameSite=Lax,
/// Path=/, Secure over https, and no longer-lived than the session itself.
pub fn session_cookie(token: &Token, secure: bool, max_age: Duration) -> Cookie<'static> {
    // Max-Age is whole seconds.
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    Cookie::build((cookie_name(secure), token.expose().to_owned()))
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(max_age))
        .build()
}

/// Tells the browser to drop the session cookie.
pub fn removal_cookie(secure: bool) -> Cookie<'static> {
    let mut cookie = Cookie::build((cookie_name(secure), ""))
        .path("/")
        .secure(secure)
        .build();
    cookie.make_removal();
    cookie
}

/// The signed-in reader, or `None` for anonymous visitors and dead sessions.
pub struct MaybeReader(pub Option<Reader>);

impl FromRequestParts<AppState> for MaybeReader {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let jar = CookieJar::from_headers(&parts.headers);
        let secure = state.settings.is_https;
        let Some(token) = jar
            .get(cookie_name(secure))
            .and_then(|c| Token::parse(c.value()))
        else {
            return Ok(Self(None));
        };
        Ok(Self(state.accounts.reader(&token).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn over_https_the_cookie_is_secure_and_host_prefixed() {
        let token = Token::generate();
        let max_age = Duration::from_secs(720 * 3600);
        let cookie = session_cookie(&token, true, max_age).to_string();
        for attribute in [
            "__Host-bs_session=",
            "HttpOnly",
            "SameSite=Lax",
            "Secure",
            "Path=/",
            "Max-Age=2592000",
        ] {
            assert!(
                cookie.contains(attribute),
                "{attribute} missing from {cookie}"
            );
        }
        let plain = session_cookie(&token, false, max_age).to_string();
        assert!(
            plain.starts_with("bs_session=") && !plain.contains("Secure"),
            "{plain}"
        );
    }
}
