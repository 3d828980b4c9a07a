//! A feed's entries as articles: sanitised HTML (E-28), checked as every
//! article is.

use anyhow::Context;
use chrono::{DateTime, Utc};
use feed_rs::model::{Category, Content, Entry, Text};

use crate::{
    articles::{ArticleInput, NewArticle},
    domain::{MAX_CATEGORIES, valid_category},
};

/// A feed's entries as articles, each with the GUID it is known by, and
/// how many entries the feed held (some may not make an article). Pure, so
/// the feed fuzz target runs it.
pub fn articles_in(
    body: &[u8],
    categories: &[String],
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, Vec<(String, NewArticle)>)> {
    let parsed = feed_rs::parser::parse(body).context("not an RSS or Atom feed")?;
    let source = parsed.title.map(|t| t.content).unwrap_or_default();
    let entries = parsed.entries.len();
    let articles = parsed
        .entries
        .into_iter()
        .filter_map(|entry| from_entry(entry, &source, categories, now))
        .collect();
    Ok((entries, articles))
}

/// An entry as an article, with the GUID it is known by; `None` for an
/// entry that makes no valid article, by the rules every article follows.
fn from_entry(
    entry: Entry,
    source: &str,
    defaults: &[String],
    now: DateTime<Utc>,
) -> Option<(String, NewArticle)> {
    let link = entry.links.first().map(|l| l.href.clone());
    // feed-rs makes up an id from the content when a feed gives none; the
    // link is steadier then.
    let guid = if entry.id.is_empty() {
        link.clone()?
    } else {
        entry.id
    };
    let (body, teaser) = body_and_teaser(entry.content, entry.summary, link.as_deref());
    let input = ArticleInput {
        title: entry
            .title
            .map(|t| plain_text(&t.content))
            .unwrap_or_default(),
        slug: None,
        author: Some(
            entry
                .authors
                .first()
                .map_or_else(|| source.to_owned(), |a| a.name.clone()),
        ),
        categories: categories(defaults, entry.categories),
        teaser: Some(teaser),
        // A date in the future would hold the entry back from digests.
        published_at: Some(entry.published.or(entry.updated).unwrap_or(now).min(now)),
        body_markdown: String::new(),
    };
    match input.validate_html(&body) {
        Ok(article) => Some((guid, article)),
        Err(error) => {
            tracing::debug!(%guid, %error, "a feed entry is skipped");
            None
        }
    }
}

/// The entry's HTML (its content, or else its summary) with a link to the
/// original, and its teaser as plain text.
fn body_and_teaser(
    content: Option<Content>,
    summary: Option<Text>,
    link: Option<&str>,
) -> (String, String) {
    let summary = summary.map(|s| s.content);
    let mut body = content
        .and_then(|c| c.body)
        .or_else(|| summary.clone())
        .unwrap_or_default();
    let teaser = crate::articles::teaser(plain_text(summary.as_deref().unwrap_or(&body)));
    if let Some(link) = link {
        body.push_str(&format!(
            "<p><a href=\"{}\">Read the original</a></p>",
            link.replace('"', "%22")
        ));
    }
    (body, teaser)
}

/// The feed's own categories, then the entry's. An entry's own terms are
/// hints: those no article may carry are left out rather than the entry.
fn categories(defaults: &[String], entry: Vec<Category>) -> Vec<String> {
    let mut categories: Vec<String> = defaults.to_vec();
    for category in entry {
        let term = category.term.trim().to_lowercase();
        if categories.len() < MAX_CATEGORIES && valid_category(&term) && !categories.contains(&term)
        {
            categories.push(term);
        }
    }
    categories
}

/// HTML to plain text: tags dropped, the common entities decoded (templates
/// escape again when they show it).
fn plain_text(html: &str) -> String {
    let text = ammonia::Builder::empty().clean(html).to_string();
    let decoded = text
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    decoded.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_loses_tags_and_keeps_its_characters() {
        assert_eq!(
            plain_text("<p>Fish &amp; chips <script>x</script><b>now</b></p>"),
            "Fish & chips now"
        );
    }
}
