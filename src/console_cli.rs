//! The console's everyday actions from a terminal: `article list|publish|
//! unpublish`, `digest status|pause|resume|cancel`, `subscriber list`, each
//! with `--json` for scripts. Whoever runs them is audited as `cli`.

use anyhow::{Context, bail};

use crate::{
    articles::editing,
    audit::Actor,
    clock::Clock,
    config::Config,
    digest::control::{self, Control, Controlled},
    readers,
    store::Store,
    web::{CampaignSummary, EditorArticle, ReaderLine},
};

async fn open(config: &Config) -> anyhow::Result<Store> {
    let store = Store::connect(&config.database).await?;
    store.migrate().await?;
    Ok(store)
}

#[allow(clippy::print_stdout)] // stdout is these commands' interface
fn print_line(text: &str) {
    println!("{text}");
}

fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    print_line(&serde_json::to_string_pretty(value)?);
    Ok(())
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|t| t.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_default()
}

/// `article list`: drafts first, then the newest published.
pub async fn list_articles(
    config: &Config,
    search: &str,
    limit: i64,
    json: bool,
) -> anyhow::Result<()> {
    let store = open(config).await?;
    let articles = editing::list(&store, search, limit, 0).await?;
    if json {
        let articles: Vec<EditorArticle> = articles.into_iter().map(Into::into).collect();
        print_json(&articles)?;
    } else {
        for a in &articles {
            let state = if a.draft.0 {
                "draft".to_owned()
            } else {
                date(a.published_at)
            };
            print_line(&format!("{:<16}  {}  {}", state, a.slug, a.title));
        }
    }
    store.close().await;
    Ok(())
}

/// `article publish|unpublish SLUG-OR-ID`.
pub async fn set_published(config: &Config, article: &str, published: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let id = match editing::id_by_slug(&store, article).await? {
        Some(id) => id,
        None => article.to_owned(),
    };
    let found =
        editing::set_published(&store, &Clock::default(), &id, published, &Actor::cli()).await?;
    store.close().await;
    if !found {
        bail!("no article has the slug or id {article:?}");
    }
    eprintln!(
        "{} {article}",
        if published {
            "published"
        } else {
            "unpublished"
        }
    );
    Ok(())
}

/// `digest status [ID]`: one campaign, or the recent ones.
pub async fn digest_status(config: &Config, id: Option<&str>, json: bool) -> anyhow::Result<()> {
    let store = open(config).await?;
    let clock = Clock::default();
    let campaigns = match id {
        Some(id) => vec![
            control::summary(&store, &clock, id)
                .await?
                .with_context(|| format!("no campaign {id:?}"))?,
        ],
        None => control::recent(&store, &clock, 20).await?,
    };
    store.close().await;
    if json {
        let campaigns: Vec<CampaignSummary> = campaigns.into_iter().map(Into::into).collect();
        return print_json(&campaigns);
    }
    for progress in &campaigns {
        let c = &progress.campaign;
        print_line(&format!(
            "{}  {:<9}  {}/{} sent, {} failed, {} pending, {} cancelled  {}  {}",
            date(c.created_at),
            c.status,
            c.sent,
            c.recipients,
            c.failed,
            progress.pending,
            c.cancelled,
            c.period_key,
            c.id
        ));
    }
    Ok(())
}

/// `digest pause|resume|cancel ID`.
pub async fn control_digest(config: &Config, id: &str, control: Control) -> anyhow::Result<()> {
    let store = open(config).await?;
    let outcome = control::apply(&store, &Clock::default(), id, control, &Actor::cli()).await?;
    store.close().await;
    match outcome {
        Controlled::Done(c) => {
            eprintln!(
                "campaign {} is {}",
                c.campaign.period_key, c.campaign.status
            );
            Ok(())
        }
        Controlled::NotFound => bail!("no campaign {id:?}"),
        Controlled::Conflict(c) => bail!(
            "campaign {} is {}; it cannot {} now",
            c.campaign.period_key,
            c.campaign.status,
            control.as_str()
        ),
    }
}

/// `subscriber list`: in signup order, paging through every match.
pub async fn list_subscribers(
    store: &Store,
    search: &str,
    status: Option<&str>,
    json: bool,
) -> anyhow::Result<()> {
    const PAGE: i64 = 1000;
    let mut after: Option<String> = None;
    let mut all = Vec::new();
    loop {
        let page = readers::list(store, search, status, after.as_deref(), PAGE).await?;
        let full = page.len() == PAGE as usize;
        after = page.last().map(|r| r.id.clone());
        if json {
            all.extend(page.into_iter().map(ReaderLine::from));
        } else {
            for r in &page {
                let suppressed = if r.suppressed_at.is_some() {
                    "  suppressed"
                } else {
                    ""
                };
                print_line(&format!(
                    "{}  {:<9}  {}{suppressed}",
                    date(r.created_at),
                    r.status,
                    r.email
                ));
            }
        }
        if !full {
            break;
        }
    }
    if json {
        print_json(&all)?;
    }
    Ok(())
}
