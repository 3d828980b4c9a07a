//! The cookie that remembers a browser's cookie choice (C-01…C-08); strictly
//! necessary, so exempt. Read for every page's banner, written by `/cookies`.

use std::time::Duration;

use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};

const COOKIE: &str = "bs_cookie_consent";
/// Characters of the banner's version id kept in the cookie.
const VERSION_CHARS: usize = 16;

/// A browser's choice: its pseudonymous consent id, the banner version it
/// answered, and the categories it accepted.
#[derive(Debug, Clone)]
pub struct CookieChoice {
    pub consent_id: String,
    pub accepted: Vec<String>,
}

impl CookieChoice {
    /// The choice in the jar, if it answers the current banner version
    /// (a changed banner asks again).
    pub fn from_jar(jar: &CookieJar, banner_version: &str) -> Option<Self> {
        let value = jar.get(COOKIE)?.value().to_owned();
        let mut parts = value.split('.');
        let (id, version, accepted) = (parts.next()?, parts.next()?, parts.next()?);
        let id_ok = id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit());
        if !id_ok || !banner_version.starts_with(version) || version.len() != VERSION_CHARS {
            return None;
        }
        let accepted = match accepted {
            "-" => Vec::new(),
            list => list.split('+').map(str::to_owned).collect(),
        };
        Some(Self {
            consent_id: id.to_owned(),
            accepted,
        })
    }

    pub fn cookie(&self, banner_version: &str, secure: bool, max_age: Duration) -> Cookie<'static> {
        let accepted = if self.accepted.is_empty() {
            "-".to_owned()
        } else {
            self.accepted.join("+")
        };
        let value = format!(
            "{}.{}.{accepted}",
            self.consent_id,
            &banner_version[..VERSION_CHARS]
        );
        // Max-Age is whole seconds.
        let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
        Cookie::build((COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .max_age(time::Duration::seconds(max_age))
            .build()
    }
}

/// The consent id of a choice made for an older banner, so one browser keeps
/// one pseudonymous id across banner versions.
pub fn earlier_consent_id(jar: &CookieJar) -> Option<String> {
    let id = jar.get(COOKIE)?.value().split('.').next()?.to_owned();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_round_trips_through_its_cookie_and_expires_with_the_banner() {
        let version = "0123456789abcdef0123";
        let choice = CookieChoice {
            consent_id: "0".repeat(32),
            accepted: vec!["analytics".into()],
        };
        let max_age = Duration::from_secs(180 * 24 * 3600);
        let jar = CookieJar::new().add(choice.cookie(version, false, max_age));
        let read = CookieChoice::from_jar(&jar, version).expect("choice");
        assert_eq!(read.accepted, ["analytics"]);
        assert!(
            CookieChoice::from_jar(&jar, "ffffffffffffffff0000").is_none(),
            "a new banner asks again"
        );
    }
}
