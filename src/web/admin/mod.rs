//! The editors' console under `/admin`: server-rendered pages that work
//! without JavaScript, with the public site's CSRF machinery and a session
//! of their own (S-10).

mod articles;
mod dashboard;
mod digests;
mod readers;
mod sign_in;
mod suppressions;
mod team;
mod webhooks;

use std::time::Duration;

use axum::{
    Router,
    body::{Body, to_bytes},
    extract::{DefaultBodyLimit, FromRequestParts, MatchedPath, Request, State},
    http::{Method, StatusCode, request::Parts},
    middleware::{self, Next},
    response::{IntoResponse, Redirect, Response},
    routing::{get, post},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Serialize;

use super::{AppError, extract};
use crate::{domain::Token, editors::SignedIn, web::AppState};

/// Articles are the largest console form.
const MAX_CONSOLE_FORM_BYTES: usize = 1024 * 1024;

pub fn routes(state: AppState) -> Router<AppState> {
    // The emailed set-password link: misses are counted per IP (E-04).
    let link = Router::new()
        .route(
            "/admin/password/{token}",
            get(sign_in::password_page).post(sign_in::set_password),
        )
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            super::guards::guard_links,
        ));
    Router::new()
        .merge(link)
        .route("/admin", get(dashboard::page))
        .route("/admin/login", get(sign_in::page).post(sign_in::sign_in))
        .route("/admin/logout", post(sign_in::sign_out))
        .route(
            "/admin/articles",
            get(articles::list).post(articles::create),
        )
        .route("/admin/articles/new", get(articles::new))
        .route(
            "/admin/articles/{id}",
            get(articles::edit).post(articles::save),
        )
        .route("/admin/articles/{id}/{action}", post(articles::act))
        .route("/admin/digests", get(digests::page))
        .route("/admin/digests/send", post(digests::send_now))
        .route("/admin/digests/preview", get(digests::preview))
        .route("/admin/digests/test", post(digests::send_test))
        .route("/admin/campaigns/{id}", get(digests::campaign))
        .route("/admin/campaigns/{id}/progress", get(digests::progress))
        .route("/admin/campaigns/{id}/{action}", post(digests::control))
        .route("/admin/readers", get(readers::search))
        .route("/admin/readers/{id}", get(readers::detail))
        .route("/admin/readers/{id}/export", get(readers::export))
        .route("/admin/readers/{id}/erase", post(readers::erase))
        .route("/admin/feeds", get(team::feeds).post(team::add_feed))
        .route("/admin/feeds/remove", post(team::remove_feed))
        .route("/admin/feeds/poll", post(team::poll_feed))
        .route("/admin/audit", get(team::audit))
        .route("/admin/editors", get(team::editors).post(team::add_editor))
        .route("/admin/tokens", get(team::tokens).post(team::create_token))
        .route("/admin/tokens/revoke", post(team::revoke_token))
        .route(
            "/admin/suppressions",
            get(suppressions::page).post(suppressions::add),
        )
        .route("/admin/suppressions/remove", post(suppressions::remove))
        .merge(webhooks::routes())
        .route_layer(middleware::from_fn_with_state(state.clone(), check_csrf))
        .route_layer(middleware::from_fn_with_state(
            state,
            extract::ensure_csrf_cookie,
        ))
        .route_layer(DefaultBodyLimit::max(MAX_CONSOLE_FORM_BYTES))
}

/// Every console POST carries the page's CSRF token: checked here
/// once, so no handler can forget it.
async fn check_csrf(State(state): State<AppState>, request: Request, next: Next) -> Response {
    if request.method() != Method::POST {
        return next.run(request).await;
    }
    let (mut parts, body) = request.into_parts();
    let limit = body_limit(&mut parts, &state).await;
    let Ok(bytes) = to_bytes(body, limit).await else {
        return (StatusCode::PAYLOAD_TOO_LARGE, "The form is too large.").into_response();
    };
    let submitted = url::form_urlencoded::parse(&bytes)
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let jar = CookieJar::from_headers(&parts.headers);
    if !state.csrf.verify(&jar, &submitted) {
        let page = state.pages.render_console(
            "admin/message.html",
            "",
            None,
            minijinja::context! {
                title => "This form has expired",
                message => "Please go back, reload the page and try again.",
            },
        );
        return match page {
            Ok(page) => (StatusCode::FORBIDDEN, page).into_response(),
            Err(error) => AppError::from(error).into_response(),
        };
    }
    next.run(Request::from_parts(parts, Body::from(bytes)))
        .await
}

/// Forms are small; only a signed-in editor's article form (its Markdown
/// body) may be larger, so nobody else makes the console read a megabyte
/// before it knows who is asking.
async fn body_limit(parts: &mut Parts, state: &AppState) -> usize {
    let article_form = parts
        .extensions
        .get::<MatchedPath>()
        .is_some_and(|path| matches!(path.as_str(), "/admin/articles" | "/admin/articles/{id}"));
    if article_form && Console::from_request_parts(parts, state).await.is_ok() {
        MAX_CONSOLE_FORM_BYTES
    } else {
        super::MAX_FORM_BYTES
    }
}

/// `__Host-` binds the cookie to this exact origin over https.
fn session_cookie_name(secure: bool) -> &'static str {
    if secure {
        "__Host-bs_editor"
    } else {
        "bs_editor"
    }
}

/// An editor's session cookie: HttpOnly, SameSite=Strict (the console is
/// never entered from another site's link with a session needed), Path=/.
fn session_cookie(value: String, secure: bool, max_age: Duration) -> Cookie<'static> {
    // Max-Age is whole seconds.
    let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
    Cookie::build((session_cookie_name(secure), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .path("/")
        .max_age(time::Duration::seconds(max_age))
        .build()
}

/// A console page's inputs: the signed-in editor and the CSRF token for
/// its forms. Anonymous visitors are sent to the sign-in page.
pub struct Console {
    pub editor: SignedIn,
    pub csrf: String,
}

/// Why a console request was not let in.
pub enum Refused {
    SignIn,
    /// A page saying why (403 for editors on admins' pages).
    Page(Response),
    Error(AppError),
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn => Redirect::to("/admin/login").into_response(),
            Self::Page(page) => page,
            Self::Error(error) => error.into_response(),
        }
    }
}

/// A console request by an admin; editors get the 403 page.
pub struct Admin(pub Console);

impl FromRequestParts<AppState> for Admin {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refused> {
        let console = Console::from_request_parts(parts, state).await?;
        match console.unless_admin(state) {
            Ok(None) => Ok(Self(console)),
            Ok(Some(refusal)) => Err(Refused::Page(refusal)),
            Err(error) => Err(Refused::Error(error)),
        }
    }
}

impl FromRequestParts<AppState> for Console {
    type Rejection = Refused;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Refused> {
        let jar = CookieJar::from_headers(&parts.headers);
        let secure = state.settings.is_https;
        let Some(token) = jar
            .get(session_cookie_name(secure))
            .and_then(|c| Token::parse(c.value()))
        else {
            return Err(Refused::SignIn);
        };
        match state.editors.signed_in(&token).await {
            Ok(Some(editor)) => Ok(Self {
                editor,
                csrf: extract::csrf_token(parts, state),
            }),
            Ok(None) => Err(Refused::SignIn),
            Err(error) => Err(Refused::Error(error.into())),
        }
    }
}

impl Console {
    /// Renders console page `name` for this editor.
    fn render(
        &self,
        state: &AppState,
        name: &str,
        context: impl Serialize,
    ) -> Result<Response, AppError> {
        self.render_with(state, StatusCode::OK, name, context)
    }

    fn render_with(
        &self,
        state: &AppState,
        status: StatusCode,
        name: &str,
        context: impl Serialize,
    ) -> Result<Response, AppError> {
        let page = state
            .pages
            .render_console(name, &self.csrf, Some(&self.editor), context)?;
        Ok((status, page).into_response())
    }

    /// A page with a title and a message.
    fn message(
        &self,
        state: &AppState,
        status: StatusCode,
        title: &str,
        message: &str,
    ) -> Result<Response, AppError> {
        let context = minijinja::context! { title, message };
        self.render_with(state, status, "admin/message.html", context)
    }

    fn not_found(&self, state: &AppState) -> Result<Response, AppError> {
        self.message(
            state,
            StatusCode::NOT_FOUND,
            "Not found",
            "There is nothing at this address.",
        )
    }

    /// `Some(403 page)` unless this editor is an admin.
    fn unless_admin(&self, state: &AppState) -> Result<Option<Response>, AppError> {
        if self.editor.role == crate::editors::Role::Admin {
            return Ok(None);
        }
        self.message(
            state,
            StatusCode::FORBIDDEN,
            "Admins only",
            "Only an admin can do this. Ask one of your admins.",
        )
        .map(Some)
    }
}

/// After a form: back to a page, as browsers expect (303 See Other).
fn back_to(path: &str) -> Response {
    Redirect::to(path).into_response()
}
