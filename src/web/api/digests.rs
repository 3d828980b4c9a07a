//! `/api/v1/digests`: campaigns started by schedule ("send now"), watched,
//! paused, resumed and cancelled; previews of the next digest.

use axum::{
    Json,
    extract::{Path, State},
    http::StatusCode,
};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{ApiError, Body, Caller, ErrorBody, Params, page_size, rfc3339};
use crate::{
    audit::Actor,
    digest::{
        NextDigest, Started,
        control::{CampaignProgress, Control, Controlled},
    },
    domain::{EmailAddress, Schedule},
    store::campaign_figures::Figures,
    web::AppState,
};

/// A campaign as editors watch it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignSummary {
    pub id: String,
    pub schedule: String,
    pub period_key: String,
    /// The subject the schedule sets (`subject` in its config); null when
    /// it sets none and each digest takes the template's.
    pub subject: Option<String>,
    pub status: String,
    pub recipients: i64,
    pub sent: i64,
    pub failed: i64,
    pub cancelled: i64,
    /// Deliveries put back after a transient failure (an SMTP server down
    /// or answering 4xx), each time one was.
    pub retries: i64,
    /// When the latest of those retries falls due: the backoff now in force.
    #[schema(format = DateTime)]
    pub next_retry_at: Option<String>,
    /// The error behind the latest retry.
    pub last_error: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(format = DateTime)]
    pub finished_at: Option<String>,
    /// Recipients not yet sent, failed or cancelled.
    pub pending: i64,
    /// Messages sent per second since the campaign started.
    pub rate_per_s: f64,
    /// Until when some of its digests wait, while they do: a receiving
    /// domain's limit or deferral, or the warm-up's daily ceiling, named in
    /// `held_by`.
    #[schema(format = DateTime)]
    pub held_until: Option<String>,
    pub held_by: Option<String>,
    /// What each SMTP relay did for it, by name; given for one campaign,
    /// empty in lists.
    pub relays: Vec<CampaignFigures>,
    /// The same for each receiving domain listed in
    /// `delivery.domain_limits`.
    pub domains: Vec<CampaignFigures>,
}

/// One SMTP relay's or receiving domain's figures for a campaign, over
/// every instance.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct CampaignFigures {
    /// The relay's name (`[[smtp.relays]]`) or the domain.
    pub name: String,
    pub sent: i64,
    /// Messages not taken: they went to another relay, or were retried later.
    pub deferred: i64,
    /// Messages refused for good.
    pub failed: i64,
    /// A domain's digests held back when claimed (its limit, its
    /// deferral, the warm-up); always 0 for a relay.
    pub held: i64,
}

impl From<Figures> for CampaignFigures {
    fn from(f: Figures) -> Self {
        Self {
            name: f.name,
            sent: f.sent,
            deferred: f.deferred,
            failed: f.failed,
            held: f.held,
        }
    }
}

impl From<CampaignProgress> for CampaignSummary {
    fn from(progress: CampaignProgress) -> Self {
        let c = progress.campaign;
        Self {
            id: c.id,
            schedule: c.schedule,
            period_key: c.period_key,
            subject: Some(c.subject).filter(|subject| !subject.is_empty()),
            status: c.status,
            recipients: c.recipients,
            sent: c.sent,
            failed: c.failed,
            cancelled: c.cancelled,
            retries: c.retries,
            next_retry_at: c.next_retry_at.map(rfc3339),
            last_error: c.last_error,
            created_at: rfc3339(c.created_at),
            finished_at: c.finished_at.map(rfc3339),
            pending: progress.pending,
            rate_per_s: progress.rate_per_s,
            held_until: c.held_until.map(rfc3339),
            held_by: c.held_by,
            relays: progress.relays.into_iter().map(Into::into).collect(),
            domains: progress.domains.into_iter().map(Into::into).collect(),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 500 (default 50).
    limit: Option<u32>,
}

/// Campaigns, newest first.
#[utoipa::path(get, path = "/api/v1/digests", tag = "digests", params(ListParams),
    responses((status = 200, body = [CampaignSummary]), (status = 401, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    _caller: Caller,
    Params(params): Params<ListParams>,
) -> Result<Json<Vec<CampaignSummary>>, ApiError> {
    let limit = page_size(params.limit);
    let campaigns = state.digests.recent(limit).await?;
    Ok(Json(
        campaigns.into_iter().map(CampaignSummary::from).collect(),
    ))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDigest {
    /// A configured schedule's name: its readers get the digest now.
    schedule: String,
    /// Published articles' ids (1 to 100): the digest holds exactly these,
    /// sent before or not, and the schedule's next digest leaves them out.
    /// Without them, it holds every article the schedule has not sent yet
    /// (published within its age limit).
    articles: Option<Vec<String>>,
}

/// 422 unless every id is a published article.
async fn check_articles(state: &AppState, ids: &[String]) -> Result<(), ApiError> {
    let invalid = |message: String| {
        ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_field", message)
            .with_field("articles")
    };
    if ids.is_empty() || ids.len() > 100 {
        return Err(invalid("Give 1 to 100 article ids.".into()));
    }
    for id in ids {
        match state.articles.get(id).await? {
            Some(article) if !article.draft.0 => {}
            _ => return Err(invalid(format!("{id:?} is not a published article."))),
        }
    }
    Ok(())
}

fn schedule(state: &AppState, name: &str) -> Result<Schedule, ApiError> {
    state.digests.schedule(name).cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unknown_schedule",
            format!("No schedule is called {name:?}."),
        )
        .with_field("schedule")
    })
}

/// Starts a campaign now: "Send now" for a schedule, or a digest of chosen
/// articles. 409 when the schedule has no article it has not sent yet.
#[utoipa::path(post, path = "/api/v1/digests", tag = "digests", request_body = CreateDigest,
    params(("Idempotency-Key" = Option<String>, Header, description = "Retries with this key get the first answer")),
    responses((status = 201, body = CampaignSummary), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Body(body): Body<CreateDigest>,
) -> Result<(StatusCode, Json<CampaignSummary>), ApiError> {
    let schedule = schedule(&state, &body.schedule)?;
    let digests = &state.digests;
    let started = match &body.articles {
        Some(ids) => {
            check_articles(&state, ids).await?;
            digests.send_articles(&schedule, ids, &actor).await?
        }
        None => digests.send_now(&schedule, &actor).await?,
    };
    match started {
        Started::Campaign { id, .. } => {
            let campaign = digests.campaign(&id).await?;
            let campaign = campaign.ok_or_else(ApiError::not_found)?;
            Ok((StatusCode::CREATED, Json(CampaignSummary::from(campaign))))
        }
        Started::NothingNew | Started::AlreadyStarted => Err(ApiError::new(
            StatusCode::CONFLICT,
            "nothing_new",
            digests.nothing_to_send(&schedule).await?,
        )),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewParams {
    schedule: String,
    /// A reader's address: the preview uses their name and topics.
    reader: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DigestPreview {
    /// False when nothing new would be sent.
    available: bool,
    subject: Option<String>,
    html: Option<String>,
    text: Option<String>,
}

/// The schedule's next digest as it stands, optionally as a reader would get it.
#[utoipa::path(get, path = "/api/v1/digests/preview", tag = "digests", params(PreviewParams),
    responses((status = 200, body = DigestPreview), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn preview(
    State(state): State<AppState>,
    _caller: Caller,
    Params(params): Params<PreviewParams>,
) -> Result<Json<DigestPreview>, ApiError> {
    let schedule = schedule(&state, &params.schedule)?;
    let reader = match params.reader.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(address) => Some(EmailAddress::parse(address).map_err(|e| {
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_field",
                e.to_string(),
            )
            .with_field("reader")
        })?),
    };
    let to = "preview@example.invalid";
    let preview = match state
        .previews
        .next_digest(&schedule, to, reader.as_ref())
        .await?
    {
        NextDigest::Ready(preview) => Some(*preview),
        NextDigest::NothingNew | NextDigest::NothingInTopics => None,
        NextDigest::UnknownReader => return Err(ApiError::not_found()),
    };
    Ok(Json(DigestPreview {
        available: preview.is_some(),
        subject: preview.as_ref().map(|p| p.subject.clone()),
        html: preview.as_ref().map(|p| p.html.clone()),
        text: preview.map(|p| p.text),
    }))
}

/// A campaign's status, counts and send rate.
#[utoipa::path(get, path = "/api/v1/digests/{id}", tag = "digests", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = CampaignSummary), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn get(
    State(state): State<AppState>,
    _caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignSummary>, ApiError> {
    state
        .digests
        .campaign(&id)
        .await?
        .map(|campaign| Json(CampaignSummary::from(campaign)))
        .ok_or_else(ApiError::not_found)
}

async fn apply(
    state: &AppState,
    actor: &Actor,
    id: &str,
    control: Control,
) -> Result<Json<CampaignSummary>, ApiError> {
    match state.digests.control(id, control, actor).await? {
        Controlled::Done(campaign) => Ok(Json(CampaignSummary::from(campaign))),
        Controlled::NotFound => Err(ApiError::not_found()),
        Controlled::Conflict(campaign) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "invalid_state",
            format!(
                "The campaign is {}; it cannot {} now.",
                campaign.campaign.status,
                control.as_str()
            ),
        )),
    }
}

/// Stops sending until resumed; deliveries in flight finish.
#[utoipa::path(post, path = "/api/v1/digests/{id}/pause", tag = "digests", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = CampaignSummary), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignSummary>, ApiError> {
    apply(&state, &actor, &id, Control::Pause).await
}

#[utoipa::path(post, path = "/api/v1/digests/{id}/resume", tag = "digests", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = CampaignSummary), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignSummary>, ApiError> {
    apply(&state, &actor, &id, Control::Resume).await
}

/// Cancels every delivery not yet made.
#[utoipa::path(post, path = "/api/v1/digests/{id}/cancel", tag = "digests", params(("id" = String, Path, description = "The id, as returned when it was created or listed")),
    responses((status = 200, body = CampaignSummary), (status = 401, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Caller(actor): Caller,
    Path(id): Path<String>,
) -> Result<Json<CampaignSummary>, ApiError> {
    apply(&state, &actor, &id, Control::Cancel).await
}
