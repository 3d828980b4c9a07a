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
    audit::{self, Actor},
    digest::{
        self, NextDigest, Started,
        control::{self, Control, Controlled},
    },
    domain::{EmailAddress, Schedule},
    store,
    web::{AppError, AppState},
};

/// A schedule as the page lists it.
#[derive(Debug, serde::Serialize)]
struct ScheduleView {
    name: String,
    frequency: &'static str,
    next_fire: Option<i64>,
    /// When it last sent a digest to anyone; `None`: never.
    last_sent: Option<i64>,
    upcoming_articles: usize,
    max_article_age: String,
}

pub async fn page(State(state): State<AppState>, console: Console) -> Result<Response, AppError> {
    let now = state.clock.now();
    let mut schedules = Vec::new();
    for schedule in &state.config.digest.schedules {
        let (articles, _) = digest::upcoming_articles(&state.store, &state.clock, schedule).await?;
        schedules.push(ScheduleView {
            frequency: schedule.frequency.as_str(),
            next_fire: schedule.next_fire(now).map(|t| t.timestamp_millis()),
            last_sent: digest::last_sent(&state.store, schedule).await?,
            upcoming_articles: distinct_articles(&articles),
            max_article_age: schedule.max_article_age_text(),
            name: schedule.name.clone(),
        });
    }
    let campaigns = control::recent(&state.store, &state.clock, 50).await?;
    console.render(
        &state,
        "admin/digests.html",
        minijinja::context! { schedules, campaigns },
    )
}

/// Campaign articles come one row per category.
fn distinct_articles(rows: &[store::campaign_articles::CampaignArticle]) -> usize {
    let mut slugs: Vec<&str> = rows.iter().map(|a| a.slug.as_str()).collect();
    slugs.sort_unstable();
    slugs.dedup();
    slugs.len()
}

fn find_schedule<'a>(state: &'a AppState, name: &str) -> Option<&'a Schedule> {
    state
        .config
        .digest
        .schedules
        .iter()
        .find(|s| s.name == name)
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
    let Some(schedule) = find_schedule(&state, &form.schedule) else {
        return console.not_found(&state);
    };
    let actor = console.editor.actor();
    let started = digest::send_now(&state.store, &state.clock, schedule, false, &actor).await?;
    match started {
        Started::Campaign { id, .. } => Ok(back_to(&format!("/admin/campaigns/{id}"))),
        Started::NothingNew | Started::AlreadyStarted => {
            let reason = digest::nothing_to_send(&state.store, schedule).await?;
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
    let Some(schedule) = find_schedule(&state, &query.schedule) else {
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
        NextDigest::NothingNew => (
            None,
            Some(digest::nothing_to_send(&state.store, schedule).await?),
        ),
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

/// The audit log's name for a test send; the hourly limit counts them there.
const TEST_SEND: &str = "digest.test";

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
    let Some(schedule) = find_schedule(&state, &form.schedule) else {
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
    let sent = test_sends_in_the_last_hour(&state, &actor).await?;
    if sent >= i64::from(state.config.editors.test_sends_per_hour) {
        return too_many_tests(&state, &console, sent);
    }
    let NextDigest::Ready(preview) = state
        .previews
        .next_digest(schedule, to.canonical(), None)
        .await?
    else {
        let reason = digest::nothing_to_send(&state.store, schedule).await?;
        return console.message(&state, StatusCode::CONFLICT, "Nothing to send", &reason);
    };
    if let Err(error) = state.previews.send(*preview).await {
        tracing::warn!(error = format!("{error:#}"), "test digest not sent");
        let message = "The mail server did not take the test message; see the log for why.";
        return console.message(&state, StatusCode::BAD_GATEWAY, "Not sent", message);
    }
    record_test_send(&state, &actor, &schedule.name, &to, sent).await?;
    let message = format!(
        "A test of the next {} digest went to {}.",
        schedule.name,
        to.canonical()
    );
    console.message(&state, StatusCode::OK, "Test sent", &message)
}

/// The test digests this editor sent in the last hour, as the audit log
/// counts them.
async fn test_sends_in_the_last_hour(state: &AppState, actor: &Actor) -> anyhow::Result<i64> {
    let since = state.clock.now_ms() - crate::clock::hours_ms(1);
    let mut conn = state.store.pool().acquire().await?;
    store::audit::count_recent(&mut conn, &actor.label, TEST_SEND, since).await
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

/// The audit log's line for a test send, which the hourly limit counts.
async fn record_test_send(
    state: &AppState,
    actor: &Actor,
    schedule: &str,
    to: &EmailAddress,
    sent_before: i64,
) -> anyhow::Result<()> {
    let mut conn = state.store.pool().acquire().await?;
    // Masked: the log outlives erasures, and any editor reads it.
    let detail = serde_json::json!({
        "to": crate::domain::mask_email(to.canonical()),
        "sent_this_hour": sent_before + 1,
    });
    audit::record(
        &mut conn,
        state.clock.now_ms(),
        actor,
        TEST_SEND,
        schedule,
        detail,
    )
    .await
}

pub async fn campaign(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(campaign) = control::summary(&state.store, &state.clock, &id).await? else {
        return console.not_found(&state);
    };
    console.render(
        &state,
        "admin/campaign.html",
        minijinja::context! { campaign },
    )
}

/// The live view polls this.
pub async fn progress(
    State(state): State<AppState>,
    _console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    Ok(
        match control::summary(&state.store, &state.clock, &id).await? {
            Some(campaign) => Json(campaign).into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        },
    )
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
    match control::apply(&state.store, &state.clock, &id, control, &actor).await? {
        Controlled::Done(_) => Ok(back_to(&format!("/admin/campaigns/{id}"))),
        Controlled::NotFound => console.not_found(&state),
        Controlled::Conflict(campaign) => {
            let message = format!(
                "This campaign is {}; it cannot {action} now.",
                campaign.status
            );
            console.message(&state, StatusCode::CONFLICT, "Not possible now", &message)
        }
    }
}
