//! Cookie consent (C-01…C-08): the banner's choice, the `/cookies` page, and
//! the cookie that remembers the choice (strictly necessary, so exempt).

use axum::{
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::{
    Form as HtmlForm,
    cookie::{Cookie, CookieJar, SameSite},
};
use minijinja::context;
use serde::Deserialize;

use super::{AppError, csrf_refused, frame::Frame};
use crate::{app::AppState, consent};

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

    fn cookie(&self, banner_version: &str, secure: bool, max_age_days: u64) -> Cookie<'static> {
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
        let max_age = i64::try_from(max_age_days * 86_400).unwrap_or(i64::MAX);
        Cookie::build((COOKIE, value))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .max_age(time::Duration::seconds(max_age))
            .build()
    }
}

/// `GET /cookies`: change or withdraw the choice at any time (C-07).
pub async fn page(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let accepted = frame
        .cookie_choice
        .as_ref()
        .map(|c| c.accepted.clone())
        .unwrap_or_default();
    let categories: Vec<_> = state
        .config
        .cookies
        .categories
        .iter()
        .map(|name| context! { name, on => accepted.contains(name) })
        .collect();
    let chosen = frame.cookie_choice.is_some();
    Ok(state
        .pages
        .render("cookies.html", &frame, context! { categories, chosen })?
        .into_response())
}

/// `POST /cookies`: `choice` = `accept_all`, `reject_all` or `save` (with
/// the ticked `category` fields), plus `csrf` and `return_to`.
/// The banner's and the settings page's form; unknown fields are refused (S-02).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CookieForm {
    /// Missing reads as empty, so it is refused as 403 like a wrong one.
    #[serde(default)]
    csrf: String,
    choice: Choice,
    return_to: Option<String>,
    /// Repeated, one per ticked category (with `choice = save`).
    #[serde(default)]
    category: Vec<String>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Choice {
    AcceptAll,
    RejectAll,
    Save,
}

pub async fn choose(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    jar: CookieJar,
    HtmlForm(form): HtmlForm<CookieForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    let configured = &state.config.cookies.categories;
    let accepted: Vec<String> = match form.choice {
        Choice::AcceptAll => configured.clone(),
        Choice::RejectAll => Vec::new(),
        Choice::Save => configured
            .iter()
            .filter(|name| form.category.contains(name))
            .cloned()
            .collect(),
    };
    let consent_id = frame
        .cookie_choice
        .map(|c| c.consent_id)
        .or_else(|| earlier_consent_id(&jar))
        .unwrap_or_else(|| uuid::Uuid::now_v7().simple().to_string());
    let decisions: Vec<(&str, bool)> = configured
        .iter()
        .map(|name| (name.as_str(), accepted.contains(name)))
        .collect();
    consent::record_cookie_choice(
        &state.store,
        &state.clock,
        &consent_id,
        &state.cookie_banner.id,
        &decisions,
    )
    .await?;
    let choice = CookieChoice {
        consent_id,
        accepted,
    };
    let cookie = choice.cookie(
        &state.cookie_banner.id,
        state.config.server.is_https(),
        state.config.cookies.max_age_days,
    );
    let jar = jar.add(cookie);
    // The banner's script posts in the background and needs no page.
    if headers
        .get("x-requested-with")
        .is_some_and(|v| v == "fetch")
    {
        return Ok((jar, StatusCode::NO_CONTENT).into_response());
    }
    Ok((jar, Redirect::to(local_path(form.return_to.as_deref()))).into_response())
}

/// The consent id of a choice made for an older banner, so one browser keeps
/// one pseudonymous id across banner versions.
fn earlier_consent_id(jar: &CookieJar) -> Option<String> {
    let id = jar.get(COOKIE)?.value().split('.').next()?.to_owned();
    (id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit())).then_some(id)
}

/// Only a path on this site; anything else goes home (no open redirect).
/// Visible ASCII only: browsers drop tabs and line breaks, so "/\t/evil"
/// would become "//evil".
fn local_path(candidate: Option<&str>) -> &str {
    match candidate {
        Some(path)
            if path.starts_with('/')
                && path
                    .bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'\\')
                && !matches!(path.as_bytes().get(1), Some(b'/')) =>
        {
            path
        }
        _ => "/",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn return_to_never_leaves_the_site() {
        assert_eq!(local_path(Some("/articles/x")), "/articles/x");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/\\evil",
            "evil",
            "/\t/evil.example",
            "/\n",
        ] {
            assert_eq!(local_path(Some(bad)), "/", "{bad}");
        }
    }

    #[test]
    fn a_choice_round_trips_through_its_cookie_and_expires_with_the_banner() {
        let version = "0123456789abcdef0123";
        let choice = CookieChoice {
            consent_id: "0".repeat(32),
            accepted: vec!["analytics".into()],
        };
        let jar = CookieJar::new().add(choice.cookie(version, false, 180));
        let read = CookieChoice::from_jar(&jar, version).expect("choice");
        assert_eq!(read.accepted, ["analytics"]);
        assert!(
            CookieChoice::from_jar(&jar, "ffffffffffffffff0000").is_none(),
            "a new banner asks again"
        );
    }
}
