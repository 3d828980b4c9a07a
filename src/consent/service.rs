//! `Consent`: the ledger as the site uses it, over the store and the clock:
//! evidence of how a consent was given, cookie choices, unsubscribing, a
//! reader's history and its receipts, and the privacy notice's versions.

use std::{net::IpAddr, sync::Arc};

use serde_json::Value;

use super::{
    Evidence, PRIVACY_NOTICE, Source,
    receipt::{Controller, receipt},
};
use crate::{
    clock::Clock,
    config::IpMode,
    store::{self, Store, consent::EventWithText},
};

/// What the consent service is configured with.
#[derive(Debug, Clone)]
pub struct ConsentSettings {
    /// How much of the client IP consent events keep (G-07).
    pub ip_mode: IpMode,
    /// The data controller named in consent receipts (G-08).
    pub controller: Controller,
}

/// One version of the privacy notice, as `/privacy` shows it (G-05).
#[derive(Debug, Clone)]
pub struct Notice {
    pub markdown: String,
    /// When this version was first shown.
    pub since: i64,
    /// Every version, newest first: its id and when it was first shown.
    pub versions: Vec<(String, i64)>,
}

/// Consents and notices for handlers.
#[derive(Clone)]
pub struct Consent {
    store: Store,
    clock: Clock,
    settings: Arc<ConsentSettings>,
}

impl Consent {
    pub fn new(store: Store, clock: Clock, settings: ConsentSettings) -> Self {
        Self {
            store,
            clock,
            settings: Arc::new(settings),
        }
    }

    /// How a consent was given from `ip` with `user_agent`, under the
    /// privacy notice `notice_id`, kept as `privacy.ip_mode` allows (G-04).
    pub fn evidence(&self, ip: IpAddr, user_agent: Option<&str>, notice_id: &str) -> Evidence {
        Evidence::new(ip, user_agent, self.settings.ip_mode, notice_id)
    }

    /// Records a browser's cookie choice (C-08); see [`super::record_cookie_choice`].
    pub async fn record_cookie_choice(
        &self,
        consent_id: &str,
        banner_version: &str,
        decisions: &[(&str, bool)],
    ) -> anyhow::Result<()> {
        let (store, clock) = (&self.store, &self.clock);
        super::record_cookie_choice(store, clock, consent_id, banner_version, decisions).await
    }

    /// Unsubscribes a reader; harmless to repeat (see [`super::unsubscribe`]).
    pub async fn unsubscribe(&self, subscriber_id: &str, source: Source) -> anyhow::Result<bool> {
        super::unsubscribe(&self.store, &self.clock, subscriber_id, source).await
    }

    /// A reader's consent events, oldest first, each with the wording shown.
    pub async fn events_of(&self, subscriber_id: &str) -> anyhow::Result<Vec<EventWithText>> {
        let mut conn = self.store.pool().acquire().await?;
        store::consent::events_of(&mut conn, subscriber_id).await
    }

    /// The reader's event `event_id` as a consent receipt (G-08); `None`
    /// unless it is one of theirs.
    pub async fn receipt(
        &self,
        subscriber_id: &str,
        username: &str,
        event_id: &str,
    ) -> anyhow::Result<Option<Value>> {
        let events = self.events_of(subscriber_id).await?;
        Ok(events
            .into_iter()
            .find(|e| e.id == event_id)
            .map(|event| receipt(&event, username, &self.settings.controller)))
    }

    /// The privacy notice's version `version`, with the list of all of
    /// them; `None` for a version that never was.
    pub async fn notice(&self, version: &str) -> anyhow::Result<Option<Notice>> {
        let mut conn = self.store.pool().acquire().await?;
        let Some((markdown, since)) =
            store::consent::text(&mut conn, version, PRIVACY_NOTICE).await?
        else {
            return Ok(None);
        };
        let versions = store::consent::text_versions(&mut conn, PRIVACY_NOTICE).await?;
        Ok(Some(Notice {
            markdown,
            since,
            versions,
        }))
    }
}
