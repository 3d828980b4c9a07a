//! Sign-in, sign-out, password and sign-in-link pages, and the account page.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{
    AppError, csrf_refused,
    frame::Frame,
    invalid_link, message_page,
    session::{removal_cookie, session_cookie},
    signup::CsrfForm,
    too_many_requests,
};
use crate::{
    domain::{EmailAddress, NewPassword, Token, TokenPurpose},
    web::AppState,
};

/// Signing in and out, resets and sign-in links asked for, the account page.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/reset", get(reset_page).post(request_reset))
        .route("/login/link", get(link_page).post(request_sign_in_link))
        .route("/logout", post(logout))
        .route("/account", get(account))
}

/// The emailed sign-in and set-password links.
pub fn link_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/login/link/{token}",
            get(sign_in_link_page).post(sign_in_with_link),
        )
        .route(
            "/account/password/{token}",
            get(password_page).post(set_password),
        )
}

/// The one answer to every failed sign-in.
const INVALID_CREDENTIALS: &str = "Invalid email or password";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

pub async fn login_page(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    render_email_form(&state, &frame, "login.html", "", None, StatusCode::OK)
}

pub async fn login(
    State(state): State<AppState>,
    frame: Frame,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    // One key per account however the address is written (case, Unicode domain).
    let account_key = EmailAddress::parse(&form.email).map_or_else(
        |_| form.email.trim().to_owned(),
        |a| a.canonical().to_owned(),
    );
    if let Err(wait) = state.login_throttle.check(frame.client_net, &account_key) {
        return too_many_requests(&state, &frame, wait);
    }
    match state.accounts.sign_in(&form.email, &form.password).await? {
        Some(session) => {
            // The browser's previous session ends with the new one.
            if let Some(previous) = &frame.reader {
                state.accounts.sign_out(previous).await?;
            }
            let cookie =
                session_cookie(&session, secure(&state), state.accounts.session_absolute());
            Ok((jar.add(cookie), Redirect::to("/account")).into_response())
        }
        None => {
            let status = StatusCode::UNAUTHORIZED;
            render_email_form(
                &state,
                &frame,
                "login.html",
                &form.email,
                Some(INVALID_CREDENTIALS),
                status,
            )
        }
    }
}

/// Revokes the session server-side and drops the cookie.
pub async fn logout(
    State(state): State<AppState>,
    frame: Frame,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    if let Some(reader) = &frame.reader {
        state.accounts.sign_out(reader).await?;
    }
    Ok((jar.add(removal_cookie(secure(&state))), Redirect::to("/")).into_response())
}

pub async fn account(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(account) = state.accounts.account_page(reader).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    Ok(state
        .pages
        .render("account.html", &frame, context! { account })?
        .into_response())
}

pub async fn password_page(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let usable = match Token::parse(&token) {
        Some(token) => state.accounts.password_link_is_usable(&token).await?,
        None => false,
    };
    if !usable {
        return invalid_link(&state, &frame);
    }
    render_password_form(&state, &frame, None, StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordForm {
    password: String,
    csrf: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    let Some(token) = Token::parse(&token) else {
        return invalid_link(&state, &frame);
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(error) => {
            return render_password_form(
                &state,
                &frame,
                Some(&error.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    // The session of this browser survives; every other one is revoked.
    let keep = frame.reader.as_ref().map(|reader| &reader.session);
    if state.accounts.set_password(&token, &password, keep).await? {
        Ok(Redirect::to("/login").into_response())
    } else {
        invalid_link(&state, &frame)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailForm {
    email: String,
    csrf: String,
}

pub async fn reset_page(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    render_email_form(&state, &frame, "login_reset.html", "", None, StatusCode::OK)
}

pub async fn link_page(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    render_email_form(&state, &frame, "login_link.html", "", None, StatusCode::OK)
}

/// `POST /login/reset`: the same answer for every address.
pub async fn request_reset(
    state: State<AppState>,
    frame: Frame,
    jar: CookieJar,
    form: Form<EmailForm>,
) -> Result<Response, AppError> {
    request_link(state, frame, jar, form, LinkKind::Reset).await
}

/// `POST /login/link`: the same answer for every address.
pub async fn request_sign_in_link(
    state: State<AppState>,
    frame: Frame,
    jar: CookieJar,
    form: Form<EmailForm>,
) -> Result<Response, AppError> {
    request_link(state, frame, jar, form, LinkKind::SignIn).await
}

/// The two emailed links a reader can ask for by address.
#[derive(Clone, Copy)]
enum LinkKind {
    Reset,
    SignIn,
}

impl LinkKind {
    fn form_template(self) -> &'static str {
        match self {
            Self::Reset => "login_reset.html",
            Self::SignIn => "login_link.html",
        }
    }
}

async fn request_link(
    State(state): State<AppState>,
    frame: Frame,
    jar: CookieJar,
    Form(form): Form<EmailForm>,
    kind: LinkKind,
) -> Result<Response, AppError> {
    if let Some(response) = super::limit_email_requests(&state, &frame)? {
        return Ok(response);
    }
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(error) => {
            let message = error.to_string();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_email_form(
                &state,
                &frame,
                kind.form_template(),
                &form.email,
                Some(&message),
                status,
            );
        }
    };
    match kind {
        LinkKind::Reset => state.accounts.request_reset(&email).await?,
        LinkKind::SignIn => state.accounts.request_sign_in_link(&email).await?,
    }
    message_page(&state, &frame, StatusCode::OK, "link_sent.html")
}

/// D-06, A-10: following the link shows a button; the POST signs in.
pub async fn sign_in_link_page(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if !usable(&state, &token, TokenPurpose::SignIn).await? {
        return invalid_link(&state, &frame);
    }
    message_page(&state, &frame, StatusCode::OK, "sign_in_link.html")
}

pub async fn sign_in_with_link(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    let session = match Token::parse(&token) {
        Some(token) => state.accounts.sign_in_with_link(&token).await?,
        None => None,
    };
    let Some(session) = session else {
        return invalid_link(&state, &frame);
    };
    let cookie = session_cookie(&session, secure(&state), state.accounts.session_absolute());
    Ok((jar.add(cookie), Redirect::to("/account")).into_response())
}

async fn usable(state: &AppState, token: &str, purpose: TokenPurpose) -> Result<bool, AppError> {
    Ok(match Token::parse(token) {
        Some(token) => state.accounts.link_is_usable(&token, purpose).await?,
        None => false,
    })
}

fn secure(state: &AppState) -> bool {
    state.settings.is_https
}

fn render_email_form(
    state: &AppState,
    frame: &Frame,
    template: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let page = state
        .pages
        .render(template, frame, context! { email, error })?;
    Ok((status, page).into_response())
}

fn render_password_form(
    state: &AppState,
    frame: &Frame,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let page = state
        .pages
        .render("set_password.html", frame, context! { error })?;
    Ok((status, page).into_response())
}
