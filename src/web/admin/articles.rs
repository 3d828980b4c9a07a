//! Articles in the console: list and search, write and edit in Markdown
//! with a preview, publish, unpublish, delete.

use axum::{
    Form,
    extract::{Path, Query, State},
    http::StatusCode,
    response::Response,
};
use serde::Deserialize;

use super::{Console, back_to};
use crate::{
    articles::{ArticleInput, EditOutcome, category_list, render_markdown},
    web::{AppError, AppState},
};

const PAGE_SIZE: i64 = 50;

#[derive(Debug, Default, Deserialize)]
pub struct ListQuery {
    #[serde(default)]
    q: String,
    #[serde(default)]
    page: u32,
}

pub async fn list(
    State(state): State<AppState>,
    console: Console,
    Query(query): Query<ListQuery>,
) -> Result<Response, AppError> {
    let offset = i64::from(query.page) * PAGE_SIZE;
    let articles = state.articles.list(&query.q, PAGE_SIZE + 1, offset).await?;
    let more = articles.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    let articles = &articles[..articles.len().min(PAGE_SIZE as usize)];
    console.render(
        &state,
        "admin/articles.html",
        minijinja::context! { articles, q => query.q, page => query.page, more },
    )
}

/// The editor's form, as typed.
#[derive(Debug, Default, Deserialize, serde::Serialize)]
pub struct ArticleForm {
    #[serde(default)]
    title: String,
    #[serde(default)]
    slug: String,
    #[serde(default)]
    author: String,
    /// Comma-separated.
    #[serde(default)]
    categories: String,
    #[serde(default)]
    teaser: String,
    #[serde(default)]
    body_markdown: String,
    /// "preview", "draft" or "publish" (new articles), "preview" or "save" (edits).
    #[serde(default)]
    intent: String,
}

impl ArticleForm {
    fn input(&self) -> ArticleInput {
        let optional = |text: &str| Some(text.trim().to_owned()).filter(|t| !t.is_empty());
        ArticleInput {
            title: self.title.clone(),
            slug: optional(&self.slug),
            author: optional(&self.author),
            categories: category_list(&self.categories),
            teaser: optional(&self.teaser),
            published_at: None,
            body_markdown: self.body_markdown.clone(),
        }
    }
}

/// The form again, with a preview or an error.
fn form_page(
    state: &AppState,
    console: &Console,
    id: Option<&str>,
    form: &ArticleForm,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let preview = (form.intent == "preview").then(|| render_markdown(&form.body_markdown));
    let status = if error.is_some() {
        StatusCode::UNPROCESSABLE_ENTITY
    } else {
        StatusCode::OK
    };
    console.render_with(
        state,
        status,
        "admin/article_form.html",
        minijinja::context! { id, form, preview, error },
    )
}

pub async fn new(State(state): State<AppState>, console: Console) -> Result<Response, AppError> {
    form_page(&state, &console, None, &ArticleForm::default(), None)
}

pub async fn create(
    State(state): State<AppState>,
    console: Console,
    Form(form): Form<ArticleForm>,
) -> Result<Response, AppError> {
    if form.intent == "preview" {
        return form_page(&state, &console, None, &form, None);
    }
    let article = match form.input().validate() {
        Ok(article) => article,
        Err(error) => return form_page(&state, &console, None, &form, Some(&error.to_string())),
    };
    let draft = form.intent != "publish";
    let actor = console.editor.actor();
    match state.articles.create(&article, draft, &actor).await? {
        Some(id) => Ok(back_to(&format!("/admin/articles/{id}"))),
        None => {
            let error = format!("Another article has the address /articles/{}", article.slug);
            form_page(&state, &console, None, &form, Some(&error))
        }
    }
}

pub async fn edit(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
) -> Result<Response, AppError> {
    let Some(article) = state.articles.get(&id).await? else {
        return console.not_found(&state);
    };
    let form = ArticleForm {
        title: article.title.clone(),
        slug: article.slug.clone(),
        author: article.author.clone(),
        categories: article.categories.replace(',', ", "),
        teaser: article.teaser.clone(),
        body_markdown: article.body_markdown.clone(),
        intent: String::new(),
    };
    console.render(
        &state,
        "admin/article_form.html",
        minijinja::context! { id, form, article },
    )
}

pub async fn save(
    State(state): State<AppState>,
    console: Console,
    Path(id): Path<String>,
    Form(form): Form<ArticleForm>,
) -> Result<Response, AppError> {
    if form.intent == "preview" {
        return form_page(&state, &console, Some(&id), &form, None);
    }
    let article = match form.input().validate() {
        Ok(article) => article,
        Err(error) => {
            return form_page(&state, &console, Some(&id), &form, Some(&error.to_string()));
        }
    };
    let actor = console.editor.actor();
    match state.articles.update(&id, &article, &actor).await? {
        EditOutcome::Saved => Ok(back_to(&format!("/admin/articles/{id}"))),
        EditOutcome::NotFound => console.not_found(&state),
        EditOutcome::SlugTaken => {
            let error = format!("Another article has the address /articles/{}", article.slug);
            form_page(&state, &console, Some(&id), &form, Some(&error))
        }
    }
}

/// `publish`, `unpublish` or `delete`.
pub async fn act(
    State(state): State<AppState>,
    console: Console,
    Path((id, action)): Path<(String, String)>,
) -> Result<Response, AppError> {
    let actor = console.editor.actor();
    let articles = &state.articles;
    let found = match action.as_str() {
        "publish" => articles.set_published(&id, true, &actor).await?,
        "unpublish" => articles.set_published(&id, false, &actor).await?,
        "delete" => {
            return if articles.delete(&id, &actor).await? {
                Ok(back_to("/admin/articles"))
            } else {
                console.not_found(&state)
            };
        }
        _ => false,
    };
    if found {
        Ok(back_to(&format!("/admin/articles/{id}")))
    } else {
        console.not_found(&state)
    }
}
