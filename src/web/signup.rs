//! Signup and confirmation pages (D-01…D-11). Handlers parse, call
//! [`crate::signup`], and render.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode},
    response::{IntoResponse, Response},
    routing::get,
};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{AppError, csrf_refused, evidence, frame::Frame, invalid_link, message_page};
use crate::{
    domain::{EmailAddress, SubscriberName, Token},
    signup::SignupRequest,
    web::AppState,
};

/// The signup form.
pub fn routes() -> Router<AppState> {
    Router::new().route("/subscribe", get(form).post(subscribe))
}

/// The emailed confirmation link.
pub fn link_routes() -> Router<AppState> {
    Router::new().route("/confirm/{token}", get(confirm_page).post(confirm))
}

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

pub async fn form(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    render_empty_form(&state, &frame, "subscribe.html", context! {})
}

/// A page holding an empty signup form, plus `extra` template variables.
pub(super) fn render_empty_form(
    state: &AppState,
    frame: &Frame,
    template: &str,
    extra: minijinja::Value,
) -> Result<Response, AppError> {
    let form = SubscribeForm::default();
    render_form(state, frame, template, &form, None, StatusCode::OK, extra)
}

pub async fn subscribe(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<SubscribeForm>,
) -> Result<Response, AppError> {
    if let Some(response) = super::limit_email_requests(&state, &frame)? {
        return Ok(response);
    }
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    if !form.website.is_empty() {
        // D-07/D-11: a bot gets the same answer as everyone, and nothing is stored.
        tracing::info!(event = "signup_honeypot", "signup dropped by honeypot");
        return message_page(&state, &frame, StatusCode::OK, "check_inbox.html");
    }
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(error) => return invalid(&state, &frame, &form, &error.to_string()),
    };
    let name = match SubscriberName::parse_optional(&form.name) {
        Ok(name) => name,
        Err(error) => return invalid(&state, &frame, &form, &error.to_string()),
    };
    let newsletter_wording = match &form.newsletter {
        None => None,
        // The wording the form shows now was stored at start-up, and
        // stored wordings stay: no need to ask the database about it.
        Some(_)
            if form.consent_version == state.newsletter_wording.id
                || state.signup.is_known_wording(&form.consent_version).await? =>
        {
            Some(form.consent_version.clone())
        }
        Some(_) => {
            let message = "The wording of the newsletter consent has changed. Please read it again and tick the box if you agree.";
            let form = SubscribeForm {
                newsletter: None,
                ..form
            };
            return invalid(&state, &frame, &form, message);
        }
    };
    let request = SignupRequest {
        email,
        name,
        newsletter_wording,
        evidence: evidence(&state, &frame, &headers),
    };
    state.signup.subscribe(&request).await?;
    message_page(&state, &frame, StatusCode::OK, "check_inbox.html")
}

pub async fn confirm_page(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let confirmation = match Token::parse(&token) {
        Some(token) => state.signup.confirmation(&token).await?,
        None => None,
    };
    let Some(digest_wording) = confirmation else {
        return invalid_link(&state, &frame);
    };
    // D-06: a page with one button; the POST does the change. It says
    // whether the digest consent is part of what is confirmed.
    let page = state
        .pages
        .render("confirm.html", &frame, context! { digest_wording })?;
    Ok(page.into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrfForm {
    pub csrf: String,
}

pub async fn confirm(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
    headers: HeaderMap,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    let Some(token) = Token::parse(&token) else {
        return invalid_link(&state, &frame);
    };
    if state
        .signup
        .confirm(&token, &evidence(&state, &frame, &headers))
        .await?
    {
        message_page(&state, &frame, StatusCode::OK, "confirmed.html")
    } else {
        invalid_link(&state, &frame)
    }
}

fn invalid(
    state: &AppState,
    frame: &Frame,
    form: &SubscribeForm,
    message: &str,
) -> Result<Response, AppError> {
    let status = StatusCode::UNPROCESSABLE_ENTITY;
    render_form(
        state,
        frame,
        "subscribe.html",
        form,
        Some(message),
        status,
        context! {},
    )
}

fn render_form(
    state: &AppState,
    frame: &Frame,
    template: &str,
    form: &SubscribeForm,
    error: Option<&str>,
    status: StatusCode,
    extra: minijinja::Value,
) -> Result<Response, AppError> {
    let page = state.pages.render(
        template,
        frame,
        context! {
            error,
            email => form.email,
            name => form.name,
            newsletter => form.newsletter.is_some(),
            wording => state.newsletter_wording.body,
            wording_id => state.newsletter_wording.id,
            ..extra
        },
    )?;
    Ok((status, page).into_response())
}
