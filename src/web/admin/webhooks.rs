//! Outgoing webhooks in the console, for admins: the endpoints with their
//! state and events waiting, one endpoint's latest events, and the forms
//! that add, turn off, turn on and remove one. A new endpoint's secret is
//! shown once, on the page that answers its form.

use axum::{
    Form, Router,
    extract::{Path, State},
    http::StatusCode,
    response::Response,
    routing::get,
};
use serde::Deserialize;

use super::{Admin, Console, back_to};
use crate::{
    domain::EventType,
    web::{AppError, AppState},
    webhook_endpoints::{Added, DESCRIPTION_CHARS, URL_CHARS},
};

const PATH: &str = "/admin/webhooks";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/admin/webhooks", get(page).post(add))
        .route("/admin/webhooks/{id}", get(endpoint).post(act))
}

pub async fn page(
    State(state): State<AppState>,
    Admin(console): Admin,
) -> Result<Response, AppError> {
    list_page(&state, &console, StatusCode::OK, None, None).await
}

/// The endpoints, with a refusal or a new endpoint's secret above them.
async fn list_page(
    state: &AppState,
    console: &Console,
    status: StatusCode,
    error: Option<String>,
    added: Option<Added>,
) -> Result<Response, AppError> {
    let endpoints = state.webhook_endpoints.list().await?;
    let context = minijinja::context! {
        endpoints,
        error,
        added => added.map(|a| minijinja::context! { id => a.endpoint.id, url => a.endpoint.url, secret => a.secret }),
        event_types => EventType::ALL.map(EventType::as_str),
        url_chars => URL_CHARS,
        description_chars => DESCRIPTION_CHARS,
    };
    console.render_with(state, status, "admin/webhooks.html", context)
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    url: String,
    /// The ticked event types; none ticked is every type.
    #[serde(default)]
    events: Vec<String>,
    #[serde(default)]
    description: String,
}

pub async fn add(
    State(state): State<AppState>,
    Admin(console): Admin,
    axum_extra::extract::Form(form): axum_extra::extract::Form<AddForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let events = form.events.join(",");
    match state
        .webhook_endpoints
        .add(&form.url, &events, &form.description, &actor)
        .await?
    {
        Ok(added) => list_page(&state, &console, StatusCode::OK, None, Some(added)).await,
        Err(refused) => {
            let error = Some(format!("Not added: {refused}."));
            list_page(
                &state,
                &console,
                StatusCode::UNPROCESSABLE_ENTITY,
                error,
                None,
            )
            .await
        }
    }
}

/// One endpoint and its latest events.
pub async fn endpoint(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some((endpoint, events)) = state.webhook_endpoints.get(&id).await? else {
        return console.not_found(&state);
    };
    let event_types = endpoint.event_types();
    let context = minijinja::context! { endpoint, event_types, events };
    console.render_with(&state, StatusCode::OK, "admin/webhook.html", context)
}

#[derive(Debug, Deserialize)]
pub struct Action {
    action: String,
}

/// Turns an endpoint on or off, or removes it.
pub async fn act(
    State(state): State<AppState>,
    Admin(console): Admin,
    Path(id): Path<String>,
    Form(form): Form<Action>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let endpoints = &state.webhook_endpoints;
    let done = match form.action.as_str() {
        "enable" => endpoints.set_enabled(&id, true, &actor).await?.map(|_| ()),
        "disable" => endpoints.set_enabled(&id, false, &actor).await?.map(|_| ()),
        "remove" => endpoints.remove(&id, &actor).await?,
        _ => {
            let message = "Choose enable, disable or remove.";
            return console.message(&state, StatusCode::BAD_REQUEST, "Unknown action", message);
        }
    };
    match done {
        Ok(()) if form.action == "remove" => Ok(back_to(PATH)),
        Ok(()) => Ok(back_to(&format!("{PATH}/{id}"))),
        Err(_) => console.not_found(&state),
    }
}
