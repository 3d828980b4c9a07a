//! Previews of a schedule's next digest, for the console, the API and the
//! CLI: composed exactly as a delivery would be, for a reader or for a
//! reader of every topic, and shown or sent as a test message. Nothing is
//! claimed or recorded.

use std::sync::Arc;

use super::compose::{Campaign, Composer};
use crate::{
    clock::Clock,
    domain::{EmailAddress, Schedule},
    mail::{Mail, Sending, Transport},
    store::{
        self, Store,
        campaign_articles::CampaignArticle,
        campaigns::CampaignRow,
        deliveries::{self, Recipient},
    },
};

/// What the next digest of a schedule would be.
pub enum NextDigest {
    Ready(Box<Preview>),
    /// The schedule has no article to send ([`super::nothing_to_send`] says why).
    NothingNew,
    /// Articles are waiting, but none in the topics of the reader the
    /// preview was asked for.
    NothingInTopics,
    /// No reader has the address the preview was asked for.
    UnknownReader,
}

/// Whose digest a preview shows: links still lead to nobody.
#[derive(Debug, Clone, Default)]
pub struct PreviewReader {
    pub name: Option<String>,
    pub topics: Vec<String>,
}

/// A preview of the next digest: its parts, and the message itself.
pub struct Preview {
    pub text: String,
    pub html: String,
    pub subject: String,
    pub message: lettre::Message,
}

#[derive(Clone)]
pub struct Previews {
    store: Store,
    clock: Clock,
    composer: Arc<Composer>,
    transport: Transport,
}

impl Previews {
    pub fn new(store: Store, clock: Clock, composer: Arc<Composer>, transport: Transport) -> Self {
        Self {
            store,
            clock,
            composer,
            transport,
        }
    }

    /// The schedule's next digest as it stands now, addressed to `to`,
    /// as `reader` (an address) would get it (their name and topics) or,
    /// without one, as a reader of every topic.
    pub async fn next_digest(
        &self,
        schedule: &Schedule,
        to: &str,
        reader: Option<&EmailAddress>,
    ) -> anyhow::Result<NextDigest> {
        let as_reader = match reader {
            None => None,
            Some(address) => match self.reader(address).await? {
                Some(found) => Some(found),
                None => return Ok(NextDigest::UnknownReader),
            },
        };
        let (articles, until) =
            super::upcoming_articles(&self.store, &self.clock, schedule).await?;
        if articles.is_empty() {
            return Ok(NextDigest::NothingNew);
        }
        let subject = schedule.subject.clone().unwrap_or_default();
        Ok(
            match self.preview(articles, until, &subject, to, as_reader.as_ref())? {
                Some(preview) => NextDigest::Ready(Box::new(preview)),
                None => NextDigest::NothingInTopics,
            },
        )
    }

    /// Sends a preview (a test message), recording nothing.
    pub async fn send(&self, preview: Preview) -> anyhow::Result<()> {
        let sent = self.transport.send(&preview.message, Mail::Digest, || true);
        match sent.await {
            Sending::Done(attempts) => attempts
                .result
                .map_err(|e| anyhow::anyhow!("the test message was not sent: {e}")),
            Sending::TooLate => unreachable!("a test send has no lease to outlast"),
        }
    }

    /// Renders and builds a campaign's digest of `articles` for each of
    /// `readers` (with their topics) on the calling thread, exactly as a
    /// delivery does but without claiming or sending, and hands `sink` the
    /// bytes each message would put on the wire. `benches/render.rs` times it.
    #[doc(hidden)]
    pub fn render_each(
        &self,
        articles: Vec<CampaignArticle>,
        readers: &[(Recipient, Vec<String>)],
        mut sink: impl FnMut(&[u8]),
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let row = CampaignRow {
            id: store::new_id(),
            schedule: String::new(),
            subject: String::new(),
            covers_until: now,
            retries_from: now,
        };
        let campaign = Campaign::new(row, articles);
        for (recipient, topics) in readers {
            let date = self.clock.now().into();
            if let Some((_, message)) = self.composer.digest(&campaign, recipient, topics, date)? {
                sink(&message.formatted());
            }
        }
        Ok(())
    }

    /// Renders the digest `articles` would make, without a campaign, for
    /// `as_reader` (their name and topics) or a reader of every topic, sent
    /// to `to`; `None` if there is nothing to show.
    fn preview(
        &self,
        articles: Vec<CampaignArticle>,
        covers_until: i64,
        subject: &str,
        to: &str,
        as_reader: Option<&PreviewReader>,
    ) -> anyhow::Result<Option<Preview>> {
        let row = CampaignRow {
            id: "preview".into(),
            schedule: String::new(),
            subject: subject.to_owned(),
            covers_until,
            retries_from: covers_until,
        };
        let campaign = Campaign::new(row, articles);
        // The nil id: links in a preview lead to no reader at all.
        let recipient = Recipient {
            id: uuid::Uuid::nil().to_string(),
            email_canonical: to.to_owned(),
            name: as_reader.and_then(|r| r.name.clone()),
            eligible: 1,
        };
        let topics = as_reader.map_or(&[][..], |r| &r.topics);
        let date = self.clock.now().into();
        Ok(self
            .composer
            .digest(&campaign, &recipient, topics, date)?
            .map(|(rendered, message)| Preview {
                text: rendered.text,
                html: rendered.html,
                subject: rendered.subject,
                message,
            }))
    }

    /// A reader's name and topics, for a preview of their digest.
    async fn reader(&self, address: &EmailAddress) -> anyhow::Result<Option<PreviewReader>> {
        let mut conn = self.store.pool().acquire().await?;
        let id = store::subscribers::find_id_by_email(&mut conn, address.canonical()).await?;
        drop(conn);
        let Some(id) = id else {
            return Ok(None);
        };
        let ids = [id];
        let Some(found) = deliveries::recipients(&self.store, &ids).await?.pop() else {
            return Ok(None);
        };
        let topics = deliveries::topics(&self.store, &ids).await?;
        Ok(Some(PreviewReader {
            name: found.name,
            topics: topics.into_iter().map(|(_, topic)| topic).collect(),
        }))
    }
}
