//! A campaign's articles (`campaign_articles`), and which published
//! articles a schedule has not carried to readers yet.

use anyhow::Context;
use sqlx::FromRow;

use super::Store;

/// One article of a campaign, with one of its categories ('' for none).
#[derive(Debug, Clone, FromRow)]
pub struct CampaignArticle {
    pub slug: String,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub published_at: i64,
    pub category: String,
}

pub async fn campaign_articles(
    store: &Store,
    campaign_id: &str,
) -> anyhow::Result<Vec<CampaignArticle>> {
    sqlx::query_as(
        "SELECT a.slug, a.title, a.teaser, a.author, a.published_at, COALESCE(c.category, '') AS category
         FROM campaign_articles ca JOIN articles a ON a.id = ca.article_id
         LEFT JOIN article_categories c ON c.article_id = a.id
         WHERE ca.campaign_id = $1 ORDER BY a.published_at DESC, a.id",
    )
    .bind(campaign_id)
    .fetch_all(store.pool())
    .await
    .context("while reading a campaign's articles")
}

/// A campaign `c` that carries its articles to readers: it has recipients,
/// and was not cancelled before it sent anything (an editor who stops a
/// digest at once has its articles go with the next one).
const CARRIES: &str = "c.recipients > 0 AND (c.status <> 'cancelled' OR c.sent > 0)";

/// The articles a schedule has not sent yet, over `articles a`, with three
/// parameters from `$first`: the oldest publication time (exclusive), the
/// newest (inclusive), the schedule. An article counts as sent once a
/// campaign of the schedule carries it ([`CARRIES`]); which campaign, and
/// the article's own date, do not matter.
pub(super) fn unsent(first: usize) -> String {
    let (oldest, newest, schedule) = (first, first + 1, first + 2);
    format!(
        "a.draft = 0 AND a.published_at > ${oldest} AND a.published_at <= ${newest}
         AND NOT EXISTS (SELECT 1 FROM campaign_articles ca JOIN campaigns c ON c.id = ca.campaign_id
                         WHERE ca.article_id = a.id AND c.schedule = ${schedule} AND {CARRIES})"
    )
}

/// The articles the schedule's next campaign would carry if it were
/// created now with the window (`oldest`, `newest`], as a campaign holds them.
pub async fn unsent_articles(
    store: &Store,
    schedule: &str,
    oldest: i64,
    newest: i64,
) -> anyhow::Result<Vec<CampaignArticle>> {
    let sql = format!(
        "SELECT a.slug, a.title, a.teaser, a.author, a.published_at, COALESCE(c.category, '') AS category
         FROM articles a LEFT JOIN article_categories c ON c.article_id = a.id
         WHERE {} ORDER BY a.published_at DESC, a.id",
        unsent(1)
    );
    sqlx::query_as(&sql)
        .bind(oldest)
        .bind(newest)
        .bind(schedule)
        .fetch_all(store.pool())
        .await
        .context("while reading articles for a preview")
}

/// When the schedule's latest campaign that carries its articles to
/// readers was created; `None` if no digest of it has been sent yet.
pub async fn last_sent(store: &Store, schedule: &str) -> anyhow::Result<Option<i64>> {
    sqlx::query_scalar(&format!(
        "SELECT MAX(c.created_at) FROM campaigns c WHERE c.schedule = $1 AND {CARRIES}"
    ))
    .bind(schedule)
    .fetch_one(store.pool())
    .await
    .context("while reading a schedule's last digest")
}
