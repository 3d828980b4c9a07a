//! Consent receipts: one consent event with the fields of Kantara Consent
//! Receipt v1.1 (G-08).

use serde_json::{Value, json};

use crate::store::consent::EventWithText;

/// Who receipts name as the data controller, and where the policy is.
#[derive(Debug, Clone, Default)]
pub struct Controller {
    pub name: String,
    pub email: String,
    pub address: String,
    /// The jurisdiction named in receipts.
    pub jurisdiction: String,
    /// The privacy notice's address: the site's `/privacy`.
    pub policy_url: String,
}

/// `event` as a receipt for the reader called `username`.
pub fn receipt(event: &EventWithText, username: &str, controller: &Controller) -> Value {
    json!({
        "version": "KI-CR-v1.1.0",
        "jurisdiction": controller.jurisdiction,
        "consentTimestamp": event.created_at / 1000,
        "collectionMethod": event.source,
        "consentReceiptID": event.id,
        "language": event.text_language,
        "piiPrincipalId": username,
        "piiControllers": [{
            "piiController": controller.name,
            "onBehalf": false,
            "contact": controller.email,
            "address": controller.address,
            "email": controller.email,
            "phone": "",
        }],
        "policyUrl": controller.policy_url,
        "services": [{
            "service": "Email digest of new articles",
            "purposes": [{
                "purpose": event.text_body,
                "purposeCategory": ["Marketing"],
                "consentType": "EXPLICIT",
                "piiCategory": ["Email address"],
                "primaryPurpose": true,
                "termination": "Until withdrawn: one click in any digest, or the account page",
                "thirdPartyDisclosure": false,
            }],
        }],
        "sensitive": false,
        "spiCat": [],
        // Beyond v1.1: what this event recorded, and which wording it refers to.
        "action": event.action,
        "wordingVersion": event.text_id,
    })
}
