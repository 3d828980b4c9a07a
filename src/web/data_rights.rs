//! A signed-in reader's data rights: preferences, export, erasure, and their
//! consent history with receipts (G-08, G-13, G-19/G-20).

use axum::{
    Form, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Redirect, Response},
    routing::get,
};
use axum_extra::extract::{Form as HtmlForm, cookie::CookieJar};
use minijinja::context;
use serde::Deserialize;

use super::{
    AppError, csrf_refused, evidence,
    frame::Frame,
    message_page,
    reader_links::{Feedback, PreferencesForm, apply_preferences, render_preferences},
    session::removal_cookie,
};
use crate::{preferences::Proof, web::AppState};

/// A signed-in reader's preferences, export, deletion and consent receipts.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/account/preferences",
            get(preferences_page).post(save_preferences),
        )
        .route("/account/export", get(export))
        .route("/account/delete", get(delete_page).post(delete))
        .route("/account/consents", get(consents))
        .route("/account/consents/{id}", get(receipt))
}

fn sign_in_first() -> Response {
    Redirect::to("/login").into_response()
}

/// `POST /account/preferences`: the account page's preference form.
pub async fn save_preferences(
    State(state): State<AppState>,
    frame: Frame,
    headers: HeaderMap,
    jar: CookieJar,
    HtmlForm(form): HtmlForm<PreferencesForm>,
) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    let evidence = evidence(&state, &frame, &headers);
    let id = reader.subscriber_id.clone();
    apply_preferences(
        &state,
        &frame,
        &jar,
        &id,
        form,
        Proof::SignedIn,
        &evidence,
        "account_preferences.html",
    )
    .await
}

/// `GET /account/preferences`.
pub async fn preferences_page(
    State(state): State<AppState>,
    frame: Frame,
) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    let id = reader.subscriber_id.clone();
    render_preferences(
        &state,
        &frame,
        &id,
        "account_preferences.html",
        Feedback::None,
        StatusCode::OK,
    )
    .await
}

/// `GET /account/export`: everything held about the reader, as JSON.
pub async fn export(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    let Ok(_permit) = state.export_permits.try_acquire() else {
        return super::too_many_requests(&state, &frame, std::time::Duration::from_secs(5));
    };
    let Some(data) = state.privacy.export(&reader.subscriber_id).await? else {
        return Ok(sign_in_first());
    };
    tracing::info!(event = "export", subscriber_id = %reader.subscriber_id, "data exported");
    let disposition = "attachment; filename=\"broadsheet-export.json\"";
    Ok((
        [
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store"),
        ],
        Json(data),
    )
        .into_response())
}

/// `GET /account/delete`: asks for the password before erasing.
pub async fn delete_page(
    State(state): State<AppState>,
    frame: Frame,
) -> Result<Response, AppError> {
    if frame.reader.is_none() {
        return Ok(sign_in_first());
    }
    Ok(state
        .pages
        .render("delete.html", &frame, context! { error => None::<&str> })?
        .into_response())
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeleteForm {
    password: String,
    csrf: String,
}

/// `POST /account/delete`: erases the reader once the password checks out.
pub async fn delete(
    State(state): State<AppState>,
    frame: Frame,
    jar: CookieJar,
    Form(form): Form<DeleteForm>,
) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    if !state.csrf.verify(&jar, &form.csrf) {
        return csrf_refused(&state, &frame);
    }
    // A password check costs a hash: throttled as sign-in is, per client
    // network and per account, before it is made.
    let account_key = format!("account:{}", reader.subscriber_id);
    if let Err(wait) = state.login_throttle.check(frame.client_net, &account_key) {
        return super::too_many_requests(&state, &frame, wait);
    }
    if !state
        .accounts
        .verify_password(reader, &form.password)
        .await?
    {
        let page = state.pages.render(
            "delete.html",
            &frame,
            context! { error => "That password is not right." },
        )?;
        return Ok((StatusCode::UNAUTHORIZED, page).into_response());
    }
    state.privacy.erase(&reader.subscriber_id).await?;
    let jar = jar.add(removal_cookie(state.settings.is_https));
    let signed_out = Frame {
        reader: None,
        ..frame
    };
    Ok((
        jar,
        message_page(&state, &signed_out, StatusCode::OK, "erased.html")?,
    )
        .into_response())
}

/// `GET /account/consents`: the reader's consent history.
pub async fn consents(State(state): State<AppState>, frame: Frame) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    let events = state.consent.events_of(&reader.subscriber_id).await?;
    Ok(state
        .pages
        .render("consents.html", &frame, context! { events })?
        .into_response())
}

/// `GET /account/consents/{id}`: one event as a consent receipt with the
/// fields of Kantara Consent Receipt v1.1 (G-08).
pub async fn receipt(
    State(state): State<AppState>,
    frame: Frame,
    Path(event_id): Path<String>,
) -> Result<Response, AppError> {
    let Some(reader) = &frame.reader else {
        return Ok(sign_in_first());
    };
    let receipt = state
        .consent
        .receipt(&reader.subscriber_id, &reader.username, &event_id)
        .await?;
    let Some(receipt) = receipt else {
        return Ok(super::error::not_found().await.into_response());
    };
    Ok(Json(receipt).into_response())
}
