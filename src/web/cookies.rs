//! Cookie consent (C-01…C-08): the banner's choice and the `/cookies` page.
//! The cookie that remembers the choice is in `cookie_choice`.

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use axum_extra::extract::{Form as HtmlForm, cookie::CookieJar};
use minijinja::context;
use serde::Deserialize;

use super::{
    AppError,
    cookie_choice::{CookieChoice, earlier_consent_id},
    csrf_refused,
    frame::Frame,
};
use crate::web::AppState;

/// The cookie settings page and the banner's form.
pub fn routes() -> Router<AppState> {
    Router::new().route("/cookies", get(page).post(choose))
}

/// `GET /cookies`: change or withdraw the choice at any time (C-07).
pub async fn page(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let accepted = frame
        .cookie_choice
        .as_ref()
        .map(|c| c.accepted.clone())
        .unwrap_or_default();
    let categories: Vec<_> = state
        .settings
        .cookie_categories
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
    let configured = &state.settings.cookie_categories;
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
    state
        .consent
        .record_cookie_choice(&consent_id, &state.cookie_banner.id, &decisions)
        .await?;
    let choice = CookieChoice {
        consent_id,
        accepted,
    };
    let cookie = choice.cookie(
        &state.cookie_banner.id,
        state.settings.is_https,
        state.settings.cookie_max_age,
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
}
