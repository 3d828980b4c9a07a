//! The endpoints admins register for outgoing webhooks (`WebhookEndpoints`),
//! from the console, the API and the CLI: added with the event types they
//! want, turned off and on, removed, each change audited. An address is
//! checked as feeds are (S-04: http(s), and an address written as an IP
//! must be public unless `outgoing_webhooks.allow_addresses` lists it); a
//! name is checked again at each request, after DNS.

use serde_json::json;

use crate::{
    audit::{self, Actor},
    clock::Clock,
    config::OutgoingWebhooksConfig,
    domain::{EventType, Reach, check_url},
    store::{
        self, Store,
        webhook_endpoints::{EndpointRow, NewEndpoint},
        webhooks::MessageRow,
    },
    webhooks::new_secret,
};

/// The longest address and description taken.
pub const URL_CHARS: usize = 2000;
pub const DESCRIPTION_CHARS: usize = 200;
/// How many of an endpoint's latest events its page shows.
const RECENT_EVENTS: i64 = 50;

/// Why a change to the endpoints was not made, in words for admins.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EndpointRefused {
    #[error("the address is not one webhooks may be sent to: {0}")]
    Url(String),
    #[error("{0}")]
    Events(String),
    #[error("the description is longer than {DESCRIPTION_CHARS} characters")]
    DescriptionTooLong,
    #[error("there is no such endpoint")]
    NotFound,
}

/// An endpoint just added, with its secret: shown this once.
#[derive(Debug, Clone)]
pub struct Added {
    pub endpoint: EndpointRow,
    pub secret: String,
}

#[derive(Clone)]
pub struct WebhookEndpoints {
    store: Store,
    clock: Clock,
    reach: Reach,
}

impl WebhookEndpoints {
    pub fn new(store: &Store, clock: &Clock, config: &OutgoingWebhooksConfig) -> Self {
        Self {
            store: store.clone(),
            clock: clock.clone(),
            reach: config.reach(),
        }
    }

    pub async fn list(&self) -> anyhow::Result<Vec<EndpointRow>> {
        store::webhook_endpoints::list(&self.store).await
    }

    /// Endpoints turned off after a day of failures, for the dashboard:
    /// what an admin must hear about.
    pub async fn turned_off_by_failures(&self) -> anyhow::Result<Vec<EndpointRow>> {
        store::webhook_endpoints::turned_off_by_failures(&self.store).await
    }

    /// An endpoint and its latest events, newest first.
    pub async fn get(&self, id: &str) -> anyhow::Result<Option<(EndpointRow, Vec<MessageRow>)>> {
        let Some(endpoint) = store::webhook_endpoints::find(&self.store, id).await? else {
            return Ok(None);
        };
        let events = store::webhooks::recent_messages(&self.store, id, RECENT_EVENTS).await?;
        Ok(Some((endpoint, events)))
    }

    /// Registers `url` for the event types in `events` (with commas; empty
    /// or "*" is all).
    pub async fn add(
        &self,
        url: &str,
        events: &str,
        description: &str,
        actor: &Actor,
    ) -> anyhow::Result<Result<Added, EndpointRefused>> {
        let url = match self.check(url) {
            Ok(url) => url,
            Err(refused) => return Ok(Err(refused)),
        };
        let events = match EventType::parse_list(events) {
            Ok(events) => events,
            Err(refused) => return Ok(Err(EndpointRefused::Events(refused))),
        };
        let description = description.trim();
        if description.chars().count() > DESCRIPTION_CHARS {
            return Ok(Err(EndpointRefused::DescriptionTooLong));
        }
        let (id, secret, now) = (store::new_id(), new_secret(), self.clock.now_ms());
        let mut tx = self.store.begin().await?;
        let endpoint = NewEndpoint {
            id: &id,
            url: url.as_str(),
            secret: &secret,
            events: &events,
            description,
        };
        store::webhook_endpoints::create(&mut tx, &endpoint, now).await?;
        let types: Vec<&str> = events.iter().map(|t| t.as_str()).collect();
        let detail = json!({ "url": url.as_str(), "events": types });
        audit::record(&mut tx, now, actor, "webhook.add", &id, detail).await?;
        tx.commit().await?;
        let endpoint = store::webhook_endpoints::find(&self.store, &id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("an endpoint just added is not there"))?;
        Ok(Ok(Added { endpoint, secret }))
    }

    /// Turns an endpoint on (its waiting events are due at once) or off;
    /// harmless to repeat.
    pub async fn set_enabled(
        &self,
        id: &str,
        enabled: bool,
        actor: &Actor,
    ) -> anyhow::Result<Result<EndpointRow, EndpointRefused>> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let reason = format!("turned off by {}", actor.label);
        let by = ("admin", reason.as_str());
        if store::webhook_endpoints::set_enabled(&mut tx, id, enabled, by, now).await? {
            let action = if enabled {
                "webhook.enable"
            } else {
                "webhook.disable"
            };
            audit::record(&mut tx, now, actor, action, id, json!({})).await?;
        }
        tx.commit().await?;
        Ok(store::webhook_endpoints::find(&self.store, id)
            .await?
            .ok_or(EndpointRefused::NotFound))
    }

    /// Removes an endpoint and the events waiting for it.
    pub async fn remove(
        &self,
        id: &str,
        actor: &Actor,
    ) -> anyhow::Result<Result<(), EndpointRefused>> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        if !store::webhook_endpoints::delete(&mut tx, id).await? {
            return Ok(Err(EndpointRefused::NotFound));
        }
        audit::record(&mut tx, now, actor, "webhook.remove", id, json!({})).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    fn check(&self, url: &str) -> Result<url::Url, EndpointRefused> {
        let url = url.trim();
        if url.chars().count() > URL_CHARS {
            return Err(EndpointRefused::Url(format!(
                "longer than {URL_CHARS} characters"
            )));
        }
        let parsed = url::Url::parse(url).map_err(|e| EndpointRefused::Url(e.to_string()))?;
        check_url(&parsed, &self.reach).map_err(EndpointRefused::Url)?;
        Ok(parsed)
    }
}
