//! Articles: Markdown with TOML front matter (as Zola and Hugo write it),
//! rendered to HTML and sanitised with an allow-list before it is stored (E-28).

pub mod editing;
mod service;

use chrono::{DateTime, Utc};
use pulldown_cmark::{Event, Options, Parser, Tag, TagEnd};
use serde::Deserialize;

use crate::{
    clock::Clock,
    domain::{Slug, SlugError},
    store::{
        self, Store,
        articles::{ArticleRecord, Upserted},
    },
};

// The category rule lives in `domain`, where feeds' own lists are checked too.
pub use crate::domain::{MAX_CATEGORIES, valid_category};
pub use crate::store::articles::{EditOutcome, EditorArticle};
pub use service::Articles;

/// Why a Markdown file could not become an article.
#[derive(Debug, thiserror::Error)]
pub enum ArticleError {
    #[error("the file must begin with TOML front matter between two `+++` lines")]
    NoFrontMatter,
    #[error("front matter: {0}")]
    FrontMatter(String),
    #[error("`title` must be 1 to 200 characters without control characters")]
    Title,
    #[error("`published_at` must be an RFC 3339 time such as 2026-11-27T07:00:00Z")]
    PublishedAt,
    #[error("`categories` must be at most 10 names of 1 to 50 characters, without commas")]
    Category,
    #[error("`slug`: {0}")]
    Slug(#[from] SlugError),
}

/// Unknown keys are refused, as in the config: a misspelt `publishd_at`
/// would otherwise publish the article now, silently.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FrontMatter {
    title: String,
    slug: Option<String>,
    author: Option<String>,
    #[serde(default)]
    categories: Vec<String>,
    published_at: Option<toml::Value>,
    teaser: Option<String>,
}

/// A parsed, validated article, its body already sanitised HTML.
#[derive(Debug, Clone)]
pub struct NewArticle {
    pub slug: Slug,
    pub title: String,
    pub teaser: String,
    pub author: String,
    pub categories: Vec<String>,
    pub published_at: Option<DateTime<Utc>>,
    pub body_markdown: String,
    pub body_html: String,
}

impl NewArticle {
    /// The article as the store writes it; without `published_at`, published
    /// `now` (an article stored before keeps its own date).
    pub fn record(&self, now: DateTime<Utc>) -> ArticleRecord<'_> {
        ArticleRecord {
            slug: self.slug.as_str(),
            title: &self.title,
            teaser: &self.teaser,
            body_markdown: &self.body_markdown,
            body_html: &self.body_html,
            author: &self.author,
            categories: &self.categories,
            published_at: self.published_at.unwrap_or(now).timestamp_millis(),
            dated: self.published_at.is_some(),
        }
    }
}

const TEASER_CHARS: usize = 280;

/// Parses `+++ front matter +++ markdown`.
pub fn parse_markdown_file(text: &str) -> Result<NewArticle, ArticleError> {
    let text = text.trim_start_matches('\u{feff}').replace("\r\n", "\n");
    let rest = text
        .strip_prefix("+++\n")
        .ok_or(ArticleError::NoFrontMatter)?;
    let end = rest.find("\n+++").ok_or(ArticleError::NoFrontMatter)?;
    let (front, body) = (&rest[..end], &rest[end + 4..]);
    let front: FrontMatter =
        toml::from_str(front).map_err(|e| ArticleError::FrontMatter(e.message().to_owned()))?;
    ArticleInput {
        title: front.title,
        slug: front.slug,
        author: front.author,
        categories: front.categories,
        teaser: front.teaser,
        published_at: front.published_at.map(parse_time).transpose()?,
        body_markdown: body.trim_start_matches('\n').to_owned(),
    }
    .validate()
}

/// An article as an editor or a file gives it, before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct ArticleInput {
    pub title: String,
    /// Derived from the title when absent.
    pub slug: Option<String>,
    /// "Staff" when absent.
    pub author: Option<String>,
    pub categories: Vec<String>,
    /// The first paragraph, cut near 280 characters, when absent.
    pub teaser: Option<String>,
    /// Now when absent.
    pub published_at: Option<DateTime<Utc>>,
    pub body_markdown: String,
}

impl ArticleInput {
    /// Checks every field and renders the Markdown body to sanitised HTML.
    pub fn validate(self) -> Result<NewArticle, ArticleError> {
        let html = render_markdown(&self.body_markdown);
        self.validate_with_html(html)
    }

    /// For a body that comes as HTML (a feed's): sanitised with the same
    /// allow-list, every other field checked as for Markdown.
    pub fn validate_html(self, html: &str) -> Result<NewArticle, ArticleError> {
        self.validate_with_html(ammonia::clean(html))
    }

    fn validate_with_html(self, body_html: String) -> Result<NewArticle, ArticleError> {
        let title = self.title.trim().to_owned();
        if title.is_empty() || title.chars().count() > 200 || title.chars().any(char::is_control) {
            return Err(ArticleError::Title);
        }
        let slug = match self
            .slug
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
        {
            Some(slug) => Slug::parse(slug)?,
            None => Slug::from_title(&title)?,
        };
        let categories = self
            .categories
            .iter()
            .map(|c| c.trim().to_owned())
            .collect::<Vec<_>>();
        if categories.len() > MAX_CATEGORIES || !categories.iter().all(|c| valid_category(c)) {
            return Err(ArticleError::Category);
        }
        let teaser = match self
            .teaser
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty())
        {
            Some(teaser) => teaser.to_owned(),
            None => first_paragraph(&self.body_markdown),
        };
        let author = self
            .author
            .as_deref()
            .map(str::trim)
            .filter(|a| !a.is_empty());
        Ok(NewArticle {
            slug,
            title,
            teaser,
            author: author.unwrap_or("Staff").to_owned(),
            categories,
            published_at: self.published_at,
            body_html,
            body_markdown: self.body_markdown,
        })
    }
}

/// TOML's own datetime (`2026-11-27T07:00:00Z`) or a string in RFC 3339.
fn parse_time(value: toml::Value) -> Result<DateTime<Utc>, ArticleError> {
    let text = match value {
        toml::Value::String(text) => text,
        toml::Value::Datetime(datetime) => datetime.to_string(),
        _ => return Err(ArticleError::PublishedAt),
    };
    DateTime::parse_from_rfc3339(&text)
        .map(|time| time.with_timezone(&Utc))
        .map_err(|_| ArticleError::PublishedAt)
}

/// An editor's article's categories, stored (and typed in the console's
/// form) as one comma-separated text, as a list.
pub fn category_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|category| !category.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Markdown to HTML, then through ammonia's allow-list: no scripts, styles,
/// event handlers or `javascript:` links survive (E-28, E-29).
pub fn render_markdown(markdown: &str) -> String {
    let options =
        Options::ENABLE_TABLES | Options::ENABLE_STRIKETHROUGH | Options::ENABLE_FOOTNOTES;
    let mut html = String::new();
    pulldown_cmark::html::push_html(&mut html, Parser::new_ext(markdown, options));
    ammonia::clean(&html)
}

/// Whether an article's teaser is its body's opening (taken from it when
/// none was written): a reader shown the body is then not shown it twice.
pub fn teaser_opens_body(article: &crate::store::articles::Article) -> bool {
    article.teaser == first_paragraph(&article.body_markdown)
}

/// The first paragraph as plain text, cut at a word near 280 characters.
fn first_paragraph(markdown: &str) -> String {
    let mut text = String::new();
    let mut in_paragraph = false;
    for event in Parser::new(markdown) {
        match event {
            Event::Start(Tag::Paragraph) => in_paragraph = true,
            Event::End(TagEnd::Paragraph) if !text.is_empty() => break,
            Event::Text(t) | Event::Code(t) if in_paragraph => text.push_str(&t),
            Event::SoftBreak | Event::HardBreak if in_paragraph => text.push(' '),
            _ => {}
        }
    }
    teaser(text)
}

/// Plain text cut at a word near 280 characters, for lists and digests.
pub fn teaser(text: String) -> String {
    if text.chars().count() <= TEASER_CHARS {
        return text;
    }
    let cut: String = text.chars().take(TEASER_CHARS).collect();
    let cut = cut.rsplit_once(' ').map_or(cut.as_str(), |(head, _)| head);
    format!("{}…", cut.trim_end_matches([',', ';', ':', '.']))
}

/// Stores an article, replacing the one with the same slug (imports are
/// idempotent). Without `published_at`, a new article is published now and
/// one stored before keeps its date (so importing again sends nothing again).
pub async fn save(store: &Store, clock: &Clock, article: &NewArticle) -> anyhow::Result<Upserted> {
    let now = clock.now();
    let record = article.record(now);
    let mut tx = store.begin().await?;
    let outcome =
        store::articles::upsert(&mut tx, &store::new_id(), &record, now.timestamp_millis()).await?;
    tx.commit().await?;
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SAMPLE: &str = "+++\ntitle = \"Budget talks resume\"\nauthor = \"LP Staff\"\ncategories = [\"politics\", \"europe\"]\npublished_at = 2026-11-27T07:00:00Z\n+++\n\nTalks resumed *today*.\n\nSecond paragraph.\n";

    #[test]
    fn front_matter_and_body_are_parsed() {
        let article = parse_markdown_file(SAMPLE).unwrap();
        assert_eq!(article.slug.as_str(), "budget-talks-resume");
        assert_eq!(article.categories, ["politics", "europe"]);
        assert_eq!(article.teaser, "Talks resumed today.");
        assert_eq!(
            article.published_at.unwrap().to_rfc3339(),
            "2026-11-27T07:00:00+00:00"
        );
        assert!(article.body_html.contains("<em>today</em>"));
    }

    #[test]
    fn html_in_markdown_is_sanitised() {
        let html = render_markdown(
            "Hi <script>alert(1)</script><img src=x onerror=alert(1)> [x](javascript:alert(1))",
        );
        assert!(
            !html.contains("<script") && !html.contains("onerror") && !html.contains("javascript:"),
            "{html}"
        );
    }

    #[test]
    fn bad_files_say_what_is_wrong() {
        assert!(matches!(
            parse_markdown_file("no front matter"),
            Err(ArticleError::NoFrontMatter)
        ));
        assert!(matches!(
            parse_markdown_file("+++\ntitle = \"x\"\npublished_at = \"yesterday\"\n+++\nbody"),
            Err(ArticleError::PublishedAt)
        ));
        assert!(matches!(
            parse_markdown_file("+++\ntitle = 3\n+++\n"),
            Err(ArticleError::FrontMatter(_))
        ));
        assert!(matches!(
            parse_markdown_file("+++\ntitle = \"x\"\nslug = \"Bad Slug\"\n+++\n"),
            Err(ArticleError::Slug(_))
        ));
        match parse_markdown_file(
            "+++\ntitle = \"x\"\npublishd_at = \"2026-12-01T08:00:00Z\"\n+++\n",
        ) {
            Err(ArticleError::FrontMatter(message)) => {
                assert!(message.contains("publishd_at"), "{message}");
            }
            other => panic!("an unknown key is refused: {other:?}"),
        }
    }

    #[test]
    fn long_first_paragraphs_are_cut_at_a_word() {
        let teaser = first_paragraph(&"word ".repeat(100));
        assert!(
            teaser.ends_with('…') && teaser.chars().count() <= TEASER_CHARS + 1,
            "{teaser}"
        );
    }
}
