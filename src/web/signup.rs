//! Signup and confirmation pages (D-01…D-11). Handlers parse, call
//! [`crate::signup`], and render.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{AppError, csrf_refused, invalid_link, message_page};
use crate::{
    app::AppState,
    consent::Evidence,
    domain::{EmailAddress, SubscriberName, Token},
    signup::SignupRequest,
};

/// The signup form as posted. Unknown fields are refused (S-02).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SubscribeForm {
    email: String,
    name: String,
    /// Present only when the digest box was ticked (L-01).
    newsletter: Option<String>,
    /// The wording version the form showed beside the box (G-05).
    consent_version: String,
    csrf: String,
    /// The honeypot: hidden from people, filled in by bots (D-11).
    website: String,
}

pub async fn form(State(state): State<AppState>, jar: CookieJar) -> Result<Response, AppError> {
    render_empty_form(&state, jar, "subscribe.html", context! {})
}

/// A page holding an empty signup form, plus `extra` template variables.
pub(super) fn render_empty_form(
    state: &AppState,
    jar: CookieJar,
    template: &str,
    extra: minijinja::Value,
) -> Result<Response, AppError> {
    let form = SubscribeForm::default();
    render_form(state, jar, template, &form, None, StatusCode::OK, extra)
}

pub async fn subscribe(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SubscribeForm>,
) -> Result<Response, AppError> {
    if let Some(response) = super::limit_email_requests(&state, peer.ip())? {
        return Ok(response);
    }
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    if !form.website.is_empty() {
        // D-07/D-11: a bot gets the same answer as everyone, and nothing is stored.
        tracing::info!(event = "signup_honeypot", "signup dropped by honeypot");
        return message_page(&state, StatusCode::OK, "check_inbox.html");
    }
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(error) => return invalid(&state, jar, &form, &error.to_string()),
    };
    let name = match SubscriberName::parse_optional(&form.name) {
        Ok(name) => name,
        Err(error) => return invalid(&state, jar, &form, &error.to_string()),
    };
    let newsletter_wording = match &form.newsletter {
        None => None,
        Some(_) if state.signup.is_known_wording(&form.consent_version).await? => {
            Some(form.consent_version.clone())
        }
        Some(_) => {
            let message = "The wording of the newsletter consent has changed. Please read it again and tick the box if you agree.";
            let form = SubscribeForm {
                newsletter: None,
                ..form
            };
            return invalid(&state, jar, &form, message);
        }
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let request = SignupRequest {
        email,
        name,
        newsletter_wording,
        evidence: Evidence::new(peer.ip(), user_agent, state.config.privacy.ip_mode),
    };
    state.signup.subscribe(&request).await?;
    message_page(&state, StatusCode::OK, "check_inbox.html")
}

pub async fn confirm_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    let usable = match Token::parse(&token) {
        Some(token) => state.signup.confirmation_is_usable(&token).await?,
        None => false,
    };
    if !usable {
        return invalid_link(&state);
    }
    // D-06: a page with one button; the POST does the change.
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state.pages.render("confirm.html", context! { csrf })?;
    Ok((jar, page).into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConfirmForm {
    csrf: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    Path(token): Path<String>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<ConfirmForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    let Some(token) = Token::parse(&token) else {
        return invalid_link(&state);
    };
    let user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok());
    let evidence = Evidence::new(peer.ip(), user_agent, state.config.privacy.ip_mode);
    if state.signup.confirm(&token, &evidence).await? {
        message_page(&state, StatusCode::OK, "confirmed.html")
    } else {
        invalid_link(&state)
    }
}

fn invalid(
    state: &AppState,
    jar: CookieJar,
    form: &SubscribeForm,
    message: &str,
) -> Result<Response, AppError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render_form(
        state,
        jar,
        "subscribe.html",
        form,
        Some(message),
        status,
        context! {},
    )
}

fn render_form(
    state: &AppState,
    jar: CookieJar,
    template: &str,
    form: &SubscribeForm,
    error: Option<&str>,
    status: StatusCode,
    extra: minijinja::Value,
) -> Result<Response, AppError> {
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state.pages.render(
        template,
        context! {
            csrf,
            error,
            email => form.email,
            name => form.name,
            newsletter => form.newsletter.is_some(),
            wording => state.newsletter_wording.body,
            wording_id => state.newsletter_wording.id,
            ..extra
        },
    )?;
    Ok((status, jar, page).into_response())
}
