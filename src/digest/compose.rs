//! Composing a reader's digest: the campaign's articles in their topics,
//! grouped by category, rendered with the `digest` template. Pure: no
//! database, no network. Readers of the same topics share one rendering
//! (a [`Shape`]) into which each reader's own values are written.

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex, PoisonError},
    time::SystemTime,
};

use anyhow::Context;
use lettre::message::{Mailbox, dkim::DkimConfig};
use serde_json::{Value, json};

use super::shape::{self, Personal, Shape};
use crate::{
    domain::{LinkPurpose, LinkSigner},
    mail::{
        EmailTemplates, Envelope, ListHeaders, RenderedEmail, ReturnPaths, Transport, build_message,
    },
    store::{campaign_articles::CampaignArticle, campaigns::CampaignRow, deliveries::Recipient},
};

/// What digests need beyond account mail.
#[derive(Clone)]
pub struct DigestSettings {
    /// Digests may come from another sender than account mail (E-13).
    pub from: Mailbox,
    pub list_id: String,
    pub base_url: String,
    pub site_name: String,
    pub unsubscribe_mailto: String,
    pub links: LinkSigner,
    pub return_paths: ReturnPaths,
}

/// A campaign's shared parts, loaded once per run of the worker.
pub struct Campaign {
    pub row: CampaignRow,
    articles: Vec<CampaignArticle>,
    /// The digest's date as readers see it, formatted once per campaign.
    date: String,
    /// How readers of each set of topics (with a name or without) get
    /// their digest, worked out once per campaign.
    renderings: Mutex<HashMap<RenderingKey, Arc<Rendering>>>,
}

/// A reader's topics, sorted, and whether they gave a name.
type RenderingKey = (Vec<String>, bool);

/// Sets of topics a campaign keeps the rendering of; readers of any other
/// set are rendered in full, so memory stays bounded.
const MAX_RENDERINGS: usize = 256;

/// How the readers of one set of topics get their digest.
enum Rendering {
    /// Nothing of this campaign is in their topics.
    Nothing,
    /// Rendered once; each copy writes in the reader's own values.
    Shaped(Shape),
    /// The template does more with a personal value than show it (an
    /// operator's own template may): each copy is rendered in full.
    InFull,
}

impl Campaign {
    pub fn new(row: CampaignRow, articles: Vec<CampaignArticle>) -> Self {
        let date = chrono::DateTime::from_timestamp_millis(row.covers_until)
            .map(|t| t.format("%-d %B %Y").to_string())
            .unwrap_or_default();
        Self {
            row,
            articles,
            date,
            renderings: Mutex::default(),
        }
    }
}

/// A reader's digest, rendered, with the unsubscribe link it carries.
pub struct Composed {
    pub rendered: RenderedEmail,
    pub unsubscribe_url: String,
}

/// Renders digests and builds them into messages.
pub struct Composer {
    templates: Arc<EmailTemplates>,
    settings: DigestSettings,
    dkim: Option<Arc<DkimConfig>>,
    /// Asked per message whether it carries 8-bit bodies: an SMTP pool
    /// learns that from its first connection.
    transport: Transport,
}

impl Composer {
    pub fn new(
        templates: Arc<EmailTemplates>,
        settings: DigestSettings,
        dkim: Option<Arc<DkimConfig>>,
        transport: Transport,
    ) -> Self {
        Self {
            templates,
            settings,
            dkim,
            transport,
        }
    }

    /// The reader's digest, rendered and built into a message dated `date`;
    /// `None` if nothing of the campaign is in their topics.
    pub fn digest(
        &self,
        campaign: &Campaign,
        recipient: &Recipient,
        topics: &[String],
        date: SystemTime,
    ) -> anyhow::Result<Option<(RenderedEmail, lettre::Message)>> {
        let Some(composed) = self.compose(campaign, recipient, topics)? else {
            return Ok(None);
        };
        let message = self.message(campaign, recipient, &composed, date)?;
        Ok(Some((composed.rendered, message)))
    }

    /// The message of a composed digest, with the list's headers (E-01).
    pub fn message(
        &self,
        campaign: &Campaign,
        recipient: &Recipient,
        composed: &Composed,
        date: SystemTime,
    ) -> anyhow::Result<lettre::Message> {
        let settings = &self.settings;
        let list = ListHeaders {
            name: &settings.site_name,
            id: &settings.list_id,
            unsubscribe_url: &composed.unsubscribe_url,
            unsubscribe_mailto: &settings.unsubscribe_mailto,
        };
        let domain = settings.from.email.domain();
        let message_id = format!("<{}.{}@{domain}>", campaign.row.id, recipient.id);
        let tag = (settings.return_paths).digest_tag(&campaign.row.id, &recipient.id);
        let envelope = Envelope {
            from: &settings.from,
            to: &recipient.email_canonical,
            message_id: &message_id,
            date,
            extra: &list.headers(),
            dkim: self.dkim.as_deref(),
            eight_bit_mime: self.transport.eight_bit_mime(),
            bounce: settings.return_paths.bounce_tag(&tag),
        };
        build_message(&envelope, &composed.rendered)
    }

    /// The reader's digest and their unsubscribe link; `None` if nothing
    /// of the campaign is in their topics.
    pub fn compose(
        &self,
        campaign: &Campaign,
        recipient: &Recipient,
        topics: &[String],
    ) -> anyhow::Result<Option<Composed>> {
        let link = |purpose, prefix: &str| {
            self.settings
                .links
                .token(purpose, &recipient.id)
                .map(|t| format!("{}/{prefix}/{t}", self.settings.base_url))
                .context("a reader's links need a UUID")
        };
        let unsubscribe_url = link(LinkPurpose::Unsubscribe, "unsubscribe")?;
        let preferences_url = link(LinkPurpose::Preferences, "preferences")?;
        let personal = Personal {
            name: recipient.name.as_deref(),
            unsubscribe_url: &unsubscribe_url,
            preferences_url: &preferences_url,
        };
        let rendered = match &*self.rendering_for(campaign, topics, &personal)? {
            Rendering::Nothing => return Ok(None),
            Rendering::Shaped(shape) => shape.fill(&personal),
            Rendering::InFull => {
                let Some(context) = self.context(campaign, &personal, topics) else {
                    return Ok(None);
                };
                self.templates.render("digest", &context)?
            }
        };
        Ok(Some(Composed {
            rendered,
            unsubscribe_url,
        }))
    }

    /// How readers of these topics get their digest: kept by the campaign
    /// once worked out, up to [`MAX_RENDERINGS`] sets of topics.
    fn rendering_for(
        &self,
        campaign: &Campaign,
        topics: &[String],
        personal: &Personal<'_>,
    ) -> anyhow::Result<Arc<Rendering>> {
        let mut sorted = topics.to_vec();
        sorted.sort_unstable();
        let key = (sorted, personal.name.is_some());
        let (known, full) = {
            let renderings = campaign
                .renderings
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            (
                renderings.get(&key).cloned(),
                renderings.len() >= MAX_RENDERINGS,
            )
        };
        Ok(match known {
            Some(rendering) => rendering,
            // Working out a shape costs three renders: not for one reader.
            None if full => Arc::new(Rendering::InFull),
            None => {
                let rendering = Arc::new(self.rendering(campaign, topics, personal)?);
                campaign
                    .renderings
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .insert(key, rendering.clone());
                rendering
            }
        })
    }

    /// Renders the digest of these topics once with markers for the
    /// personal values, and trusts the result only if filling it in gives
    /// exactly the full render for `personal`.
    fn rendering(
        &self,
        campaign: &Campaign,
        topics: &[String],
        personal: &Personal<'_>,
    ) -> anyhow::Result<Rendering> {
        let markers = shape::markers(personal.name.is_some());
        let (Some(marked), Some(context)) = (
            self.context(campaign, &markers, topics),
            self.context(campaign, personal, topics),
        ) else {
            return Ok(Rendering::Nothing);
        };
        let Some(shape) = Shape::cut(self.templates.render("digest", &marked)?) else {
            return Ok(Rendering::InFull);
        };
        let full = self.templates.render("digest", &context)?;
        Ok(if shape.fill(personal) == full {
            Rendering::Shaped(shape)
        } else {
            Rendering::InFull
        })
    }

    /// The template's values for a reader: the campaign's articles in their
    /// topics (all if they chose none), grouped by category. `None` if
    /// nothing is left.
    fn context(
        &self,
        campaign: &Campaign,
        personal: &Personal<'_>,
        topics: &[String],
    ) -> Option<Value> {
        let settings = &self.settings;
        let mut groups: BTreeMap<&str, Vec<Value>> = BTreeMap::new();
        let mut seen = Vec::new();
        for article in &campaign.articles {
            let wanted = topics.is_empty() || topics.contains(&article.category);
            if !wanted || seen.contains(&article.slug.as_str()) {
                continue;
            }
            seen.push(article.slug.as_str());
            groups
                .entry(article.category.as_str())
                .or_default()
                .push(json!({
                    "title": article.title,
                    "teaser": article.teaser,
                    "author": article.author,
                    "url": format!("{}/articles/{}", settings.base_url, article.slug),
                }));
        }
        if seen.is_empty() {
            return None;
        }
        Some(json!({
            "site_name": settings.site_name,
            "base_url": settings.base_url,
            "date": campaign.date,
            "count": seen.len(),
            "subject": campaign.row.subject,
            "name": personal.name,
            "groups": groups.into_iter().map(|(category, articles)| json!({
                "category": if category.is_empty() { "More" } else { category },
                "articles": articles,
            })).collect::<Vec<_>>(),
            "unsubscribe_url": personal.unsubscribe_url,
            "preferences_url": personal.preferences_url,
        }))
    }
}
