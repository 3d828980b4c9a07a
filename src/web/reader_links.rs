//! The links every digest carries: one-click unsubscribe (RFC 8058, E-03…E-05)
//! and the preference centre, both usable without signing in.

use axum::{
    Form, Router,
    extract::{FromRequest, Multipart, Path, Request, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
    routing::get,
};
// serde_html_form: repeated fields (`topic`) into a Vec, unknown fields refused.
use axum_extra::extract::{Form as HtmlForm, cookie::CookieJar};
use minijinja::context;
use serde::Deserialize;

use super::{AppError, csrf_refused, evidence, frame::Frame, invalid_link, message_page};
use crate::{
    consent::{self, Source},
    domain::LinkPurpose,
    preferences::{Applied, PreferenceChange, PreferenceError, Proof},
    web::AppState,
};

/// The unsubscribe and preference links every digest carries.
pub fn link_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe_page).post(unsubscribe),
        )
        .route(
            "/preferences/{token}",
            get(preferences_page).post(save_preferences),
        )
}

/// `GET /unsubscribe/{token}`: a page with one button; a GET never
/// unsubscribes (E-05), since mail scanners follow links.
pub async fn unsubscribe_page(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    if state
        .links
        .verify(LinkPurpose::Unsubscribe, &token)
        .is_none()
    {
        return invalid_link(&state, &frame);
    }
    message_page(&state, &frame, StatusCode::OK, "unsubscribe.html")
}

/// `POST /unsubscribe/{token}` with `List-Unsubscribe=One-Click`, form-urlencoded
/// or multipart, without cookies or CSRF token: withdraws and answers 200,
/// never a redirect; repeating it changes nothing (E-03).
pub async fn unsubscribe(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    let fields = match body_fields(&state, request).await {
        Ok(fields) => fields,
        Err(rejection) => return Ok(rejection),
    };
    let has = |key: &str, value: &str| fields.iter().any(|(k, v)| k == key && v == value);
    if !has("List-Unsubscribe", "One-Click") {
        let message = "The body must be List-Unsubscribe=One-Click (RFC 8058).";
        return Ok((StatusCode::BAD_REQUEST, message).into_response());
    }
    let Some(subscriber_id) = state.links.verify(LinkPurpose::Unsubscribe, &token) else {
        return invalid_link(&state, &frame);
    };
    // Our own page's button says so; anything else is a mail client's one-click.
    let source = if has("from", "page") {
        Source::UnsubscribePage
    } else {
        Source::OneClick
    };
    state.consent.unsubscribe(&subscriber_id, source).await?;
    let preferences = state.links.token(LinkPurpose::Preferences, &subscriber_id);
    let page = state
        .pages
        .render("unsubscribed.html", &frame, context! { preferences })?;
    Ok(page.into_response())
}

/// The fields of a form-urlencoded or multipart body.
async fn body_fields(
    state: &AppState,
    request: Request,
) -> Result<Vec<(String, String)>, Response> {
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"));
    if !multipart {
        let Form(fields) = Form::<Vec<(String, String)>>::from_request(request, state)
            .await
            .map_err(IntoResponse::into_response)?;
        return Ok(fields);
    }
    let mut form = Multipart::from_request(request, state)
        .await
        .map_err(IntoResponse::into_response)?;
    let mut fields = Vec::new();
    while let Some(field) = form
        .next_field()
        .await
        .map_err(IntoResponse::into_response)?
    {
        let name = field.name().unwrap_or_default().to_owned();
        let value = field.text().await.map_err(IntoResponse::into_response)?;
        fields.push((name, value));
    }
    Ok(fields)
}

/// `GET /preferences/{token}`: the preference centre, linked from every digest.
pub async fn preferences_page(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
) -> Result<Response, AppError> {
    let Some(subscriber_id) = state.links.verify(LinkPurpose::Preferences, &token) else {
        return invalid_link(&state, &frame);
    };
    render_preferences(
        &state,
        &frame,
        &subscriber_id,
        "preferences.html",
        Feedback::None,
        StatusCode::OK,
    )
    .await
}

pub async fn save_preferences(
    State(state): State<AppState>,
    frame: Frame,
    Path(token): Path<String>,
    headers: HeaderMap,
    jar: CookieJar,
    HtmlForm(form): HtmlForm<PreferencesForm>,
) -> Result<Response, AppError> {
    let Some(subscriber_id) = state.links.verify(LinkPurpose::Preferences, &token) else {
        return invalid_link(&state, &frame);
    };
    let evidence = evidence(&state, &frame, &headers);
    let proof = Proof::EmailedLink(&state.signup);
    apply_preferences(
        &state,
        &frame,
        &jar,
        &subscriber_id,
        form,
        proof,
        &evidence,
        "preferences.html",
    )
    .await
}

/// The preferences form as posted; unknown fields are refused (S-02).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PreferencesForm {
    /// Missing reads as empty, so it is refused as 403 like a wrong one.
    #[serde(default)]
    csrf: String,
    /// Present when the digest box is ticked.
    digest: Option<String>,
    /// The wording shown beside the box.
    consent_version: Option<String>,
    #[serde(default = "daily")]
    frequency: String,
    paused: Option<String>,
    /// Repeated, one per ticked topic.
    #[serde(default)]
    topic: Vec<String>,
}

fn daily() -> String {
    "daily".into()
}

/// Applies a preferences form, then shows the form again.
#[allow(clippy::too_many_arguments)]
pub(super) async fn apply_preferences(
    state: &AppState,
    frame: &Frame,
    jar: &CookieJar,
    subscriber_id: &str,
    form: PreferencesForm,
    proof: Proof<'_>,
    evidence: &consent::Evidence,
    template: &str,
) -> Result<Response, AppError> {
    if !state.csrf.verify(jar, &form.csrf) {
        return csrf_refused(state, frame);
    }
    let change = PreferenceChange {
        digest_on: form.digest.is_some(),
        wording_id: form.consent_version,
        frequency: form.frequency,
        paused: form.paused.is_some(),
        topics: form.topic,
    };
    let updated = state
        .preferences
        .update(subscriber_id, &change, proof, evidence)
        .await?;
    let (feedback, status) = match updated {
        Ok(Applied::Saved) => (Feedback::Saved, StatusCode::OK),
        Ok(Applied::ConfirmationSent) => (Feedback::ConfirmationSent, StatusCode::OK),
        Err(PreferenceError::Gone) => return invalid_link(state, frame),
        Err(error) => (
            Feedback::Error(error.to_string()),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
    };
    render_preferences(state, frame, subscriber_id, template, feedback, status).await
}

/// What the preferences form says above itself.
pub(super) enum Feedback {
    None,
    Saved,
    /// Turning the digest on from an emailed link waits for a confirmation.
    ConfirmationSent,
    Error(String),
}

/// Renders a page holding the preferences form for a reader.
pub(super) async fn render_preferences(
    state: &AppState,
    frame: &Frame,
    subscriber_id: &str,
    template: &str,
    feedback: Feedback,
    status: StatusCode,
) -> Result<Response, AppError> {
    let Some(view) = state.preferences.view(subscriber_id).await? else {
        return invalid_link(state, frame);
    };
    let (saved, confirmation_sent, error) = match feedback {
        Feedback::None => (false, false, None),
        Feedback::Saved => (true, false, None),
        Feedback::ConfirmationSent => (true, true, None),
        Feedback::Error(message) => (false, false, Some(message)),
    };
    let context = context! {
        view,
        saved,
        confirmation_sent,
        error,
        wording => state.newsletter_wording.body,
        wording_id => state.newsletter_wording.id,
        frequencies => state.preferences.frequencies(),
    };
    Ok((status, state.pages.render(template, frame, context)?).into_response())
}
