//! Editors' sign-in, sign-out and set-password pages.

use axum::{
    Form,
    extract::{FromRequestParts, Path, State},
    http::{StatusCode, request::Parts},
    response::{IntoResponse, Response},
};
use axum_extra::extract::cookie::{Cookie, CookieJar};
use serde::Deserialize;

use super::{Console, back_to, session_cookie, session_cookie_name};
use crate::{
    domain::{EmailAddress, NewPassword, Token},
    web::{AppError, AppState, extract, frame, too_many_requests_plain},
};

/// The one answer to every failed sign-in.
const INVALID_CREDENTIALS: &str = "Invalid email or password";

/// What the sign-in pages need before anyone is signed in.
pub struct Anonymous {
    csrf: String,
    /// What the sign-in limits count against.
    client_net: std::net::IpAddr,
}

impl FromRequestParts<AppState> for Anonymous {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        Ok(Self {
            csrf: extract::csrf_token(parts, state),
            client_net: frame::client_network(parts, &state.settings.clients),
        })
    }
}

fn render(
    state: &AppState,
    page: &Anonymous,
    status: StatusCode,
    name: &str,
    context: minijinja::Value,
) -> Result<Response, AppError> {
    let html = state
        .pages
        .render_console(name, &page.csrf, None, context)?;
    Ok((status, html).into_response())
}

pub async fn page(State(state): State<AppState>, page: Anonymous) -> Result<Response, AppError> {
    render(
        &state,
        &page,
        StatusCode::OK,
        "admin/login.html",
        minijinja::context! {},
    )
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub async fn sign_in(
    State(state): State<AppState>,
    page: Anonymous,
    jar: CookieJar,
    Form(form): Form<LoginForm>,
) -> Result<Response, AppError> {
    // Readers' and editors' attempts share the throttle; keys differ by prefix.
    let account_key = EmailAddress::parse(&form.email).map_or_else(
        |_| format!("editor:{}", form.email.trim()),
        |a| format!("editor:{}", a.canonical()),
    );
    if let Err(wait) = state.login_throttle.check(page.client_net, &account_key) {
        return Ok(too_many_requests_plain(wait));
    }
    let Some(session) = state.editors.sign_in(&form.email, &form.password).await? else {
        let context = minijinja::context! { error => INVALID_CREDENTIALS, email => form.email };
        return render(
            &state,
            &page,
            StatusCode::UNAUTHORIZED,
            "admin/login.html",
            context,
        );
    };
    let secure = state.settings.is_https;
    // The browser's previous session ends with the new one.
    if let Some(previous) = jar
        .get(session_cookie_name(secure))
        .and_then(|c| Token::parse(c.value()))
        && let Some(editor) = state.editors.signed_in(&previous).await?
    {
        state.editors.sign_out(&editor).await?;
    }
    let cookie = session_cookie(
        session.expose().to_owned(),
        secure,
        state.editors.session_absolute(),
    );
    Ok((jar.add(cookie), back_to("/admin")).into_response())
}

pub async fn sign_out(
    State(state): State<AppState>,
    console: Console,
    jar: CookieJar,
) -> Result<Response, AppError> {
    state.editors.sign_out(&console.editor).await?;
    let secure = state.settings.is_https;
    let mut removal = Cookie::build((session_cookie_name(secure), ""))
        .path("/")
        .secure(secure)
        .build();
    removal.make_removal();
    Ok((jar.add(removal), back_to("/admin/login")).into_response())
}

async fn link_is_live(state: &AppState, token: &str) -> Result<Option<Token>, AppError> {
    let Some(token) = Token::parse(token) else {
        return Ok(None);
    };
    Ok(state
        .editors
        .password_link_is_live(&token)
        .await?
        .then_some(token))
}

fn invalid_link(state: &AppState, page: &Anonymous) -> Result<Response, AppError> {
    let context = minijinja::context! {
        title => "This link does not work",
        message => "It has been used, has expired or was never issued. Ask an admin for a new one.",
    };
    render(
        state,
        page,
        StatusCode::NOT_FOUND,
        "admin/message.html",
        context,
    )
}

pub async fn password_page(
    State(state): State<AppState>,
    page: Anonymous,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if link_is_live(&state, &token).await?.is_none() {
        return invalid_link(&state, &page);
    }
    render(
        &state,
        &page,
        StatusCode::OK,
        "admin/password.html",
        minijinja::context! {},
    )
}

#[derive(Debug, Deserialize)]
pub struct PasswordForm {
    #[serde(default)]
    password: String,
}

pub async fn set_password(
    State(state): State<AppState>,
    page: Anonymous,
    Path(token): Path<String>,
    Form(form): Form<PasswordForm>,
) -> Result<Response, AppError> {
    let Some(token) = link_is_live(&state, &token).await? else {
        return invalid_link(&state, &page);
    };
    let password = match NewPassword::parse(&form.password) {
        Ok(password) => password,
        Err(error) => {
            let context = minijinja::context! { error => error.to_string() };
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            return render(&state, &page, status, "admin/password.html", context);
        }
    };
    if !state.editors.set_password(&token, &password).await? {
        return invalid_link(&state, &page);
    }
    Ok(back_to("/admin/login"))
}
