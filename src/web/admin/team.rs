//! The console's remaining pages: feeds (with "poll now"), the audit log,
//! and, for admins, editors and API tokens.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{Admin, Console, back_to};
use crate::{
    domain::EmailAddress,
    editors::Role,
    web::{AppError, AppState},
};

/// A configured feed and its last poll.
#[derive(Debug, serde::Serialize)]
struct FeedView {
    url: String,
    categories: Vec<String>,
    from_config: bool,
    polled_at: Option<i64>,
    last_result: Option<String>,
}

pub async fn feeds(State(state): State<AppState>, console: Console) -> Result<Response, AppError> {
    feeds_page(&state, &console, StatusCode::OK, None).await
}

async fn feeds_page(
    state: &AppState,
    console: &Console,
    status: StatusCode,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let polled = state.feeds.polls().await?;
    let feeds: Vec<FeedView> = state
        .feeds
        .all()
        .await?
        .into_iter()
        .map(|feed| {
            let last = polled.iter().find(|p| p.url == feed.url.as_str());
            FeedView {
                url: feed.url.to_string(),
                categories: feed.categories.clone(),
                from_config: feed.from_config,
                polled_at: last.and_then(|p| p.polled_at),
                last_result: last.and_then(|p| p.last_result.clone()),
            }
        })
        .collect();
    let context = minijinja::context! { feeds, error };
    console.render_with(state, status, "admin/feeds.html", context)
}

#[derive(Debug, Deserialize)]
pub struct NewFeedForm {
    #[serde(default)]
    url: String,
    /// Comma-separated.
    #[serde(default)]
    categories: String,
}

pub async fn add_feed(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<NewFeedForm>,
) -> Result<Response, AppError> {
    let categories = form
        .categories
        .split(',')
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(str::to_owned)
        .collect();
    let actor = console.editor.actor();
    match state.feeds.add(&form.url, categories, &actor).await? {
        Ok(()) => Ok(back_to("/admin/feeds")),
        Err(why) => {
            let status = StatusCode::UNPROCESSABLE_ENTITY;
            feeds_page(&state, &console, status, Some(&why)).await
        }
    }
}

pub async fn remove_feed(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<FeedForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    if !state.feeds.remove(&form.url, &actor).await? {
        return console.not_found(&state);
    }
    Ok(back_to("/admin/feeds"))
}

#[derive(Debug, Deserialize)]
pub struct FeedForm {
    #[serde(default)]
    url: String,
}

/// Polls one configured feed at once, whatever its schedule.
pub async fn poll_feed(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<FeedForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    // The outcome, success or failure, is kept as the feed's last result.
    if !state.feeds.poll_now(&form.url, &actor).await? {
        return console.not_found(&state);
    }
    Ok(back_to("/admin/feeds"))
}

#[derive(Debug, Default, Deserialize)]
pub struct AuditQuery {
    /// The id of the last entry on the previous page.
    #[serde(default)]
    before: String,
}

const AUDIT_PAGE: i64 = 100;

pub async fn audit(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<AuditQuery>,
) -> Result<Response, AppError> {
    let before = Some(query.before.as_str()).filter(|b| !b.is_empty());
    let entries = state.editors.audit_log(before, AUDIT_PAGE).await?;
    let next = (entries.len() == AUDIT_PAGE as usize)
        .then(|| entries.last().map(|e| e.id.clone()))
        .flatten();
    console.render(
        &state,
        "admin/audit.html",
        minijinja::context! { entries, next },
    )
}

pub async fn editors(
    State(state): State<AppState>,
    Admin(console): Admin,
) -> Result<Response, AppError> {
    let editors = state.editors.list().await?;
    console.render(
        &state,
        "admin/editors.html",
        minijinja::context! { editors },
    )
}

#[derive(Debug, Deserialize)]
pub struct EditorForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

/// Adds an editor and shows their set-password link, once.
pub async fn add_editor(
    State(state): State<AppState>,
    Admin(console): Admin,
    Form(form): Form<EditorForm>,
) -> Result<Response, AppError> {
    let Ok(email) = EmailAddress::parse(&form.email) else {
        let message = "Please give the editor's email address.";
        return console.message(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid address",
            message,
        );
    };
    let role = Role::from_stored(&form.role);
    let (link, _) = state
        .editors
        .add(&email, role, &console.editor.actor())
        .await?;
    let link = format!(
        "{}/admin/password/{}",
        state.settings.base_url,
        link.expose()
    );
    let editors = state.editors.list().await?;
    console.render(
        &state,
        "admin/editors.html",
        minijinja::context! { editors, link },
    )
}

pub async fn tokens(
    State(state): State<AppState>,
    Admin(console): Admin,
) -> Result<Response, AppError> {
    let tokens = state.tokens.list().await?;
    console.render(&state, "admin/tokens.html", minijinja::context! { tokens })
}

#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

/// Creates a token and shows it, once.
pub async fn create_token(
    State(state): State<AppState>,
    Admin(console): Admin,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let role = Role::from_stored(&form.role);
    let created = state.tokens.create(&form.name, role, &actor).await?;
    let (secret, error) = match created {
        Ok(token) => (Some(token.expose()), None),
        Err(error) => (None, Some(error.to_string())),
    };
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    let tokens = state.tokens.list().await?;
    console.render_with(
        &state,
        status,
        "admin/tokens.html",
        minijinja::context! { tokens, secret, error, name => form.name },
    )
}

pub async fn revoke_token(
    State(state): State<AppState>,
    Admin(console): Admin,
    Form(form): Form<TokenForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    if !state.tokens.revoke(&form.name, &actor).await? {
        return console.not_found(&state);
    }
    Ok(back_to("/admin/tokens"))
}
