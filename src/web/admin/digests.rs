//! Digests in the console: schedules and their next run, campaigns, "Send
//! now", previews for any reader, test sends, and a live progress view with
//! pause, resume and cancel.

use axum::{
    Form, Json,
    extract::{Path, Query, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use super::{Console, back_to};
use crate::{
    digest::{
        NextDigest, Started,
        control::{Control, Controlled},
    },
    domain::EmailAddress,
    web::{AppError, AppState},
};

pub async fn page(State(state): State<AppState>, console: Console) -> Result<Response, AppError> {
    let schedules = state.digests.overview().await?;
    let campaigns = state.digests.recent(50).await?;
    console.render(
        &state,
        "admin/digests.html",
        minijinja::context! { schedules, campaigns },
    )
}

#[derive(Debug, Deserialize)]
pub struct ScheduleForm {
    #[serde(default)]
    schedule: String,
}

pub async fn send_now(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<ScheduleForm>,
) -> Result<Response, AppError> {
    let Some(schedule) = state.digests.schedule(&form.schedule) else {
        return console.not_found(&state);
    };
    let actor = console.editor.actor();
    let started = state.digests.send_now(schedule, &actor).await?;
    match started {
        Started::Campaign { id, .. } => Ok(back_to(&format!("/admin/campaigns/{id}"))),
        Started::NothingNew | Started::AlreadyStarted => {
            let reason = state.digests.nothing_to_send(schedule).await?;
            console.message(&state, StatusCode::CONFLICT, "Nothing to send", &reason)
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PreviewQuery {
    #[serde(default)]
    schedule: String,
    /// A reader's address: their name and topics shape the preview.
    #[serde(default)]
    reader: String,
}

pub async fn preview(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<PreviewQuery>,
) -> Result<Response, AppError> {
    let Some(schedule) = state.digests.schedule(&query.schedule) else {
        return console.not_found(&state);
    };
    let no_such_reader = |console: &Console| {
        let message = "No reader has this address.";
        console.message(&state, StatusCode::NOT_FOUND, "No such reader", message)
    };
    let reader = match query.reader.trim() {
        "" => None,
        address => match EmailAddress::parse(address) {
            Ok(address) => Some(address),
            Err(_) => return no_such_reader(&console),
        },
    };
    let to = "preview@example.invalid";
    let (preview, nothing) = match state
        .previews
        .next_digest(schedule, to, reader.as_ref())
        .await?
    {
        NextDigest::Ready(preview) => (Some(*preview), None),
        NextDigest::NothingNew => (None, Some(state.digests.nothing_to_send(schedule).await?)),
        NextDigest::NothingInTopics => (None, Some(NOTHING_IN_TOPICS.to_owned())),
        NextDigest::UnknownReader => return no_such_reader(&console),
    };
    let page = console.render(
        &state,
        "admin/digest_preview.html",
        minijinja::context! {
            schedule => schedule.name,
            reader => query.reader.trim(),
            nothing,
            subject => preview.as_ref().map(|p| p.subject.clone()),
            html => preview.as_ref().map(|p| p.html.clone()),
            text => preview.as_ref().map(|p| p.text.clone()),
        },
    )?;
    Ok(([(header::CONTENT_SECURITY_POLICY, PREVIEW_POLICY)], page).into_response())
}

const NOTHING_IN_TOPICS: &str =
    "Articles are waiting, but none of them is in this reader's topics.";

/// The site's policy, but with the inline styles email templates are made
/// of: the preview's frame inherits this page's policy, and is sandboxed
/// (no scripts, no forms, its own origin).
const PREVIEW_POLICY: &str = "default-src 'self'; img-src 'self' data: https:; \
     style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

#[derive(Debug, Deserialize)]
pub struct TestForm {
    #[serde(default)]
    schedule: String,
    #[serde(default)]
    to: String,
}

/// Sends the schedule's next digest, as it stands, to any address.
pub async fn send_test(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<TestForm>,
) -> Result<Response, AppError> {
    let Some(schedule) = state.digests.schedule(&form.schedule) else {
        return console.not_found(&state);
    };
    let Ok(to) = EmailAddress::parse(&form.to) else {
        let message = "Please give a valid address for the test.";
        return console.message(
            &state,
            StatusCode::UNPROCESSABLE_ENTITY,
            "Invalid address",
            message,
        );
    };
    let actor = console.editor.actor();
    let sent = state.digests.test_sends_in_the_last_hour(&actor).await?;
    if sent >= i64::from(state.digests.test_sends_per_hour()) {
        return too_many_tests(&state, &console, sent);
    }
    let NextDigest::Ready(preview) = state
        .previews
        .next_digest(schedule, to.canonical(), None)
        .await?
    else {
        let reason = state.digests.nothing_to_send(schedule).await?;
        return console.message(&state, StatusCode::CONFLICT, "Nothing to send", &reason);
    };
    if let Err(error) = state.previews.send(*preview).await {
        tracing::warn!(
            error = crate::telemetry::error_text(&error),
            "test digest not sent"
        );
        let message = "The mail server did not take the test message; see the log for why.";
        return console.message(&state, StatusCode::BAD_GATEWAY, "Not sent", message);
    }
    state
        .digests
        .record_test_send(&actor, &schedule.name, &to, sent)
        .await?;
    let message = format!(
        "A test of the next {} digest went to {}.",
        schedule.name,
        to.canonical()
    );
    console.message(&state, StatusCode::OK, "Test sent", &message)
}

/// 429 past `editors.test_sends_per_hour`.
fn too_many_tests(state: &AppState, console: &Console, sent: i64) -> Result<Response, AppError> {
    let message = format!(
        "You have sent {sent} test digests in the last hour, the most an editor may (editors.test_sends_per_hour). Please try again later."
    );
    let page = console.message(
        state,
        StatusCode::TOO_MANY_REQUESTS,
        "Too many tests",
        &message,
    )?;
    Ok(([(header::RETRY_AFTER, "3600")], page).into_response())
}

pub async fn campaign(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(campaign) = state.digests.campaign(&id).await? else {
        return console.not_found(&state);
    };
    let sent = campaign.campaign.sent;
    let rates = state.stats.campaign_deliverability(&id, sent).await?;
    let relays = state.digests.relays();
    let actions = Control::applying_to(&campaign.campaign.status);
    console.render(
        &state,
        "admin/campaign.html",
        minijinja::context! { campaign, rates, relays, actions },
    )
}

/// The live view polls this.
pub async fn progress(
    State(state): State<AppState>,
    _console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(match state.digests.campaign(&id).await? {
        Some(campaign) => Json(campaign).into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    })
}

/// `pause`, `resume` or `cancel`.
pub async fn control(
    State(state): State<AppState>,
    console: Console,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let Some(control) = Control::parse(&action) else {
        return console.not_found(&state);
    };
    let actor = console.editor.actor();
    match state.digests.control(&id, control, &actor).await? {
        Controlled::Done(_) => Ok(back_to(&format!("/admin/campaigns/{id}"))),
        Controlled::NotFound => console.not_found(&state),
        Controlled::Conflict(campaign) => {
            let message = format!(
                "This campaign is {}; it cannot {action} now.",
                campaign.campaign.status
            );
            console.message(&state, StatusCode::CONFLICT, "Not possible now", &message)
        }
    }
}
