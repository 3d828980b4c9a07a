//! The suppression list in the console, for admins: newest first, found by
//! a whole address (the list keeps keyed hashes only), added to by hand
//! and taken from; the service audits each change.

use axum::{
    Form,
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use serde::{Deserialize, Serialize};

use super::{Admin, Console, back_to};
use crate::{
    feedback::{SUPPRESSION_NOTE_CHARS, SUPPRESSIONS_PAGE, SuppressionRefused, SuppressionRow},
    web::{AppError, AppState},
};

const PATH: &str = "/admin/suppressions";

/// An entry as the page shows it: the reader's address while they exist,
/// and the start of the hash, which matches the CLI's list.
#[derive(Debug, Serialize)]
struct Entry {
    reason: String,
    created_at: i64,
    email: Option<String>,
    note: Option<String>,
    hash: String,
}

impl From<SuppressionRow> for Entry {
    fn from(row: SuppressionRow) -> Self {
        Self {
            hash: row.email_hash.chars().take(12).collect(),
            reason: row.reason,
            created_at: row.created_at,
            email: row.email,
            note: row.note,
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    /// A whole address to look up.
    #[serde(default)]
    address: String,
    /// The `created_at` of the last entry on the previous page.
    #[serde(default)]
    before: String,
}

/// What the page says above the list, and the status it is answered with.
struct Said {
    status: StatusCode,
    error: Option<String>,
    notice: Option<&'static str>,
}

impl Said {
    const NOTHING: Self = Self {
        status: StatusCode::OK,
        error: None,
        notice: None,
    };

    /// A refusal in the service's words, never a 500.
    fn refused(refused: &SuppressionRefused) -> Self {
        let status = match refused {
            SuppressionRefused::NotAnAddress | SuppressionRefused::NoteTooLong => {
                StatusCode::UNPROCESSABLE_ENTITY
            }
            SuppressionRefused::NotListed => StatusCode::NOT_FOUND,
            SuppressionRefused::Erased => StatusCode::CONFLICT,
        };
        Self {
            status,
            error: Some(format!("Not done: {refused}.")),
            notice: None,
        }
    }
}

pub async fn page(
    State(state): State<AppState>,
    Admin(console): Admin,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    list_page(&state, &console, &query, Said::NOTHING).await
}

/// The list (or the entry of `query.address`) with what the page says.
async fn list_page(
    state: &AppState,
    console: &Console,
    query: &ListQuery,
    said: Said,
) -> Result<Response, AppError> {
    let address = query.address.trim();
    let before = query.before.parse::<i64>().ok();
    let (rows, said) = match state.suppressions.list(Some(address), before).await? {
        Ok(rows) => (rows, said),
        Err(refused) => (Vec::new(), Said::refused(&refused)),
    };
    let entries: Vec<Entry> = rows.into_iter().map(Entry::from).collect();
    let next = (entries.len() == SUPPRESSIONS_PAGE as usize)
        .then(|| entries.last().map(|e| e.created_at))
        .flatten();
    let context = minijinja::context! {
        entries,
        address,
        next,
        error => said.error,
        notice => said.notice,
        note_chars => SUPPRESSION_NOTE_CHARS,
    };
    console.render_with(state, said.status, "admin/suppressions.html", context)
}

#[derive(Debug, Deserialize)]
pub struct AddForm {
    #[serde(default)]
    address: String,
    /// Why, for the audit log and this page.
    #[serde(default)]
    note: String,
}

/// Never mails an address again.
pub async fn add(
    State(state): State<AppState>,
    Admin(console): Admin,
    Form(form): Form<AddForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let said = match state
        .suppressions
        .add(&form.address, &form.note, &actor)
        .await?
    {
        Ok(true) => return Ok(back_to(PATH)),
        Ok(false) => Said {
            notice: Some("That address was on the list already; its first reason stays."),
            ..Said::NOTHING
        },
        Err(refused) => Said::refused(&refused),
    };
    list_page(&state, &console, &ListQuery::default(), said).await
}

#[derive(Debug, Deserialize)]
pub struct RemoveForm {
    #[serde(default)]
    address: String,
}

/// Mails an address again, unless its reader erased themselves.
pub async fn remove(
    State(state): State<AppState>,
    Admin(console): Admin,
    Form(form): Form<RemoveForm>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let said = match state.suppressions.remove(&form.address, &actor).await? {
        Ok(()) => return Ok(back_to(PATH)),
        Err(refused) => Said::refused(&refused),
    };
    list_page(&state, &console, &ListQuery::default(), said).await
}
