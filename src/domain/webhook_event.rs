//! What outgoing webhooks tell other systems: the event types an endpoint
//! may ask for, and one event as it is queued (its data, and the reader or
//! campaign whose events must arrive in order).

use serde_json::{Map, Value};

/// An event type an endpoint can ask for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    SubscriberConfirmed,
    SubscriberUnsubscribed,
    SubscriberErased,
    ConsentChanged,
    DeliveryBounced,
    DeliveryComplained,
    CampaignStarted,
    CampaignFinished,
}

impl EventType {
    pub const ALL: [EventType; 8] = [
        Self::SubscriberConfirmed,
        Self::SubscriberUnsubscribed,
        Self::SubscriberErased,
        Self::ConsentChanged,
        Self::DeliveryBounced,
        Self::DeliveryComplained,
        Self::CampaignStarted,
        Self::CampaignFinished,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::SubscriberConfirmed => "subscriber.confirmed",
            Self::SubscriberUnsubscribed => "subscriber.unsubscribed",
            Self::SubscriberErased => "subscriber.erased",
            Self::ConsentChanged => "consent.changed",
            Self::DeliveryBounced => "delivery.bounced",
            Self::DeliveryComplained => "delivery.complained",
            Self::CampaignStarted => "campaign.started",
            Self::CampaignFinished => "campaign.finished",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == text.trim())
    }

    /// A list of types written with commas ("subscriber.confirmed,
    /// consent.changed"); empty or "*" is every type. The error names
    /// what is not a type.
    pub fn parse_list(text: &str) -> Result<Vec<Self>, String> {
        let text = text.trim();
        if text.is_empty() || text == "*" {
            return Ok(Self::ALL.to_vec());
        }
        let mut types = Vec::new();
        for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let found = Self::parse(part).ok_or_else(|| {
                format!(
                    "{part:?} is not an event type (one of {})",
                    Self::ALL.map(Self::as_str).join(", ")
                )
            })?;
            if !types.contains(&found) {
                types.push(found);
            }
        }
        Ok(types)
    }
}

/// What an event is about: its events reach each endpoint in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum About {
    /// A reader, by id; the reader's address is added to the data as the
    /// event is sent, while they exist (never stored with it).
    Reader(String),
    Campaign(String),
}

/// One event, before it is queued for the endpoints that want its type.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookEvent {
    pub kind: EventType,
    pub about: About,
    /// The event's own fields; the reader's or campaign's id is added.
    pub data: Map<String, Value>,
}

impl WebhookEvent {
    pub fn reader(kind: EventType, subscriber_id: &str, data: Value) -> Self {
        Self::new(kind, About::Reader(subscriber_id.to_owned()), data)
    }

    pub fn campaign(kind: EventType, campaign_id: &str, data: Value) -> Self {
        Self::new(kind, About::Campaign(campaign_id.to_owned()), data)
    }

    fn new(kind: EventType, about: About, data: Value) -> Self {
        let mut data = match data {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let (field, id) = match &about {
            About::Reader(id) => ("subscriber_id", id),
            About::Campaign(id) => ("campaign_id", id),
        };
        data.insert(field.to_owned(), Value::String(id.clone()));
        Self { kind, about, data }
    }

    /// The key of the chain this event is sent in order within.
    pub fn ordering_key(&self) -> String {
        match &self.about {
            About::Reader(id) => format!("reader:{id}"),
            About::Campaign(id) => format!("campaign:{id}"),
        }
    }

    pub fn subscriber_id(&self) -> Option<&str> {
        match &self.about {
            About::Reader(id) => Some(id),
            About::Campaign(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_of_types_are_read_and_strangers_named() {
        assert_eq!(EventType::parse_list("").unwrap(), EventType::ALL.to_vec());
        assert_eq!(EventType::parse_list("*").unwrap(), EventType::ALL.to_vec());
        assert_eq!(
            EventType::parse_list(" consent.changed, delivery.bounced,consent.changed").unwrap(),
            vec![EventType::ConsentChanged, EventType::DeliveryBounced]
        );
        let refused =
            EventType::parse_list("subscriber.confirmed, subscriber.created").unwrap_err();
        assert!(
            refused.contains("\"subscriber.created\" is not an event type"),
            "{refused}"
        );
    }

    #[test]
    fn an_event_carries_its_subject_and_orders_by_it() {
        let event = WebhookEvent::reader(
            EventType::ConsentChanged,
            "r1",
            serde_json::json!({ "action": "withdrawn" }),
        );
        assert_eq!(event.data["subscriber_id"], "r1");
        assert_eq!(event.ordering_key(), "reader:r1");
        assert_eq!(event.subscriber_id(), Some("r1"));
        let campaign = WebhookEvent::campaign(EventType::CampaignStarted, "c1", Value::Null);
        assert_eq!(campaign.ordering_key(), "campaign:c1");
        assert_eq!(campaign.subscriber_id(), None);
    }
}
