//! Sign-in, sign-out, password and sign-in-link pages, and the account page.

use std::net::SocketAddr;

use axum::{
    Form,
    extract::{ConnectInfo, Path, State},
    http::StatusCode,
    response::{IntoResponse, Redirect, Response},
};
use axum_extra::extract::cookie::CookieJar;
use minijinja::context;
use serde::Deserialize;

use super::{
    AppError, csrf_refused, invalid_link, message_page,
    session::{MaybeReader, removal_cookie, session_cookie},
    too_many_requests,
};
use crate::{
    app::AppState,
    domain::{EmailAddress, NewPassword, Token, TokenPurpose},
};

/// The one answer to every failed sign-in.
const INVALID_CREDENTIALS: &str = "Invalid email or password";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LoginForm {
    email: String,
    password: String,
    csrf: String,
}

pub async fn login_page(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    render_login(&state, jar, "", None, StatusCode::OK)
}

pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    if let Err(wait) = state.login_throttle.check(peer.ip(), form.email.trim()) {
        return too_many_requests(&state, wait);
    }
    match state.accounts.sign_in(&form.email, &form.password).await? {
        Some(session) => {
            let cookie = session_cookie(
                &session,
                secure(&state),
                state.config.accounts.session_absolute_h,
            );
            Ok((jar.add(cookie), Redirect::to("/account")).into_response())
        }
        None => render_login(
            &state,
            jar,
            &form.email,
            Some(INVALID_CREDENTIALS),
            StatusCode::UNAUTHORIZED,
        ),
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CsrfForm {
    csrf: String,
}

/// Revokes the session server-side and drops the cookie.
pub async fn logout(
    State(state): State<AppState>,
    MaybeReader(reader): MaybeReader,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    if let Some(reader) = reader {
        state.accounts.sign_out(&reader).await?;
    }
    Ok((jar.add(removal_cookie(secure(&state))), Redirect::to("/")).into_response())
}

pub async fn account(
    State(state): State<AppState>,
    MaybeReader(reader): MaybeReader,
    jar: CookieJar,
) -> Result<Response, AppError> {
    let Some(reader) = reader else {
        return Ok(Redirect::to("/login").into_response());
    };
    let Some(account) = state.accounts.account_page(&reader).await? else {
        return Ok(Redirect::to("/login").into_response());
    };
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state.pages.render(
        "account.html",
        context! { account, csrf, signed_in => true },
    )?;
    Ok((jar, page).into_response())
}

pub async fn password_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    if !usable(&state, &token, TokenPurpose::SetPassword).await? {
        return invalid_link(&state);
    }
    render_password_form(&state, jar, None, StatusCode::OK)
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PasswordForm {
    password: String,
    csrf: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    Path(token): Path<String>,
    MaybeReader(reader): MaybeReader,
    jar: CookieJar,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    let Some(token) = Token::parse(&token) else {
        return invalid_link(&state);
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(error) => {
            return render_password_form(
                &state,
                jar,
                Some(&error.to_string()),
                StatusCode::UNPROCESSABLE_ENTITY,
            );
        }
    };
    // The session of this browser survives; every other one is revoked.
    let keep = reader.as_ref().map(|reader| &reader.session);
    if state.accounts.set_password(&token, &password, keep).await? {
        Ok(Redirect::to("/login").into_response())
    } else {
        invalid_link(&state)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EmailForm {
    email: String,
    csrf: String,
}

pub async fn reset_page(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    render_email_form(&state, jar, "login_reset.html", "", None, StatusCode::OK)
}

pub async fn link_page(
    State(state): State<AppState>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    render_email_form(&state, jar, "login_link.html", "", None, StatusCode::OK)
}

/// `POST /login/reset`: the same answer for every address.
pub async fn request_reset(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    jar: CookieJar,
    form: Form<EmailForm>,
) -> Result<Response, AppError> {
    request_link(state, peer, jar, form, LinkKind::Reset).await
}

/// `POST /login/link`: the same answer for every address.
pub async fn request_sign_in_link(
    state: State<AppState>,
    peer: ConnectInfo<SocketAddr>,
    jar: CookieJar,
    form: Form<EmailForm>,
) -> Result<Response, AppError> {
    request_link(state, peer, jar, form, LinkKind::SignIn).await
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
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    jar: CookieJar,
    Form(form): Form<EmailForm>,
    kind: LinkKind,
) -> Result<Response, AppError> {
    if let Some(response) = super::limit_email_requests(&state, peer.ip())? {
        return Ok(response);
    }
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    let email = match EmailAddress::parse(&form.email) {
        Ok(email) => email,
        Err(error) => {
            let message = error.to_string();
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render_email_form(
                &state,
                jar,
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
    message_page(&state, StatusCode::OK, "link_sent.html")
}

/// D-06, A-10: following the link shows a button; the POST signs in.
pub async fn sign_in_link_page(
    State(state): State<AppState>,
    Path(token): Path<String>,
    jar: CookieJar,
) -> Result<Response, AppError> {
    if !usable(&state, &token, TokenPurpose::SignIn).await? {
        return invalid_link(&state);
    }
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state.pages.render("sign_in_link.html", context! { csrf })?;
    Ok((jar, page).into_response())
}

pub async fn sign_in_with_link(
    State(state): State<AppState>,
    Path(token): Path<String>,
    jar: CookieJar,
    Form(form): Form<CsrfForm>,
) -> Result<Response, AppError> {
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state);
    }
    let session = match Token::parse(&token) {
        Some(token) => state.accounts.sign_in_with_link(&token).await?,
        None => None,
    };
    let Some(session) = session else {
        return invalid_link(&state);
    };
    let cookie = session_cookie(
        &session,
        secure(&state),
        state.config.accounts.session_absolute_h,
    );
    Ok((jar.add(cookie), Redirect::to("/account")).into_response())
}

async fn usable(state: &AppState, token: &str, purpose: TokenPurpose) -> Result<bool, AppError> {
    Ok(match Token::parse(token) {
        Some(token) => state.accounts.link_is_usable(&token, purpose).await?,
        None => false,
    })
}

fn secure(state: &AppState) -> bool {
    state.config.server.is_https()
}

fn render_login(
    state: &AppState,
    jar: CookieJar,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    render_email_form(state, jar, "login.html", email, error, status)
}

fn render_email_form(
    state: &AppState,
    jar: CookieJar,
    template: &str,
    email: &str,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state
        .pages
        .render(template, context! { csrf, email, error })?;
    Ok((status, jar, page).into_response())
}

fn render_password_form(
    state: &AppState,
    jar: CookieJar,
    error: Option<&str>,
    status: StatusCode,
) -> Result<Response, AppError> {
    let (jar, csrf) = state.csrf.issue(jar);
    let page = state
        .pages
        .render("set_password.html", context! { csrf, error })?;
    Ok((status, jar, page).into_response())
}
