//! The emails Broadsheet sends to readers, queued in the caller's transaction:
//! plain ones, and ones carrying a single-use link whose token is stored
//! only as a hash (D-02…D-05).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    clock,
    domain::{Token, TokenPurpose},
    store::{self, Conn, outbox::NewEmail, tokens::NewToken},
};

/// An email whose template gets `link_url`: `{base_url}{path}/{token}`.
pub struct LinkEmail<'a> {
    pub template: &'a str,
    pub purpose: TokenPurpose,
    /// The URL path before the token, e.g. `/confirm`.
    pub path: &'a str,
    /// How long the link works.
    pub ttl: Duration,
    /// Further template variables (an object).
    pub context: Value,
    /// The digest wording a confirmation link also confirms.
    pub consent_text_id: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct Emails {
    /// Links are built from this, never from a request's Host (D-15).
    base_url: String,
    message_id_domain: String,
}

impl Emails {
    pub fn new(base_url: &str, message_id_domain: &str) -> Self {
        Self {
            base_url: base_url.to_owned(),
            message_id_domain: message_id_domain.to_owned(),
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Queues `template` for a reader in the caller's transaction and returns
    /// its outbox id; `base_url` is added to the context. The Message-ID is
    /// fixed now, so every retry carries the same one.
    pub async fn queue(
        &self,
        conn: &mut Conn,
        template: &str,
        subscriber_id: &str,
        recipient: &str,
        mut context: Value,
        now: i64,
    ) -> anyhow::Result<String> {
        if let Some(object) = context.as_object_mut() {
            object.insert("base_url".into(), json!(self.base_url));
        }
        let id = store::new_id();
        let message_id = format!("<{id}@{}>", self.message_id_domain);
        let email = NewEmail {
            id: &id,
            template,
            subscriber_id: Some(subscriber_id),
            recipient,
            context: &context,
            message_id: &message_id,
        };
        store::outbox::enqueue(conn, &email, now).await?;
        Ok(id)
    }

    /// Issues a fresh token (voiding the reader's older ones of that purpose)
    /// and queues the email that carries it.
    pub async fn send_link(
        &self,
        conn: &mut Conn,
        email: LinkEmail<'_>,
        subscriber_id: &str,
        recipient: &str,
        now: i64,
    ) -> anyhow::Result<()> {
        let token = Token::generate();
        let mut context = email.context;
        if let Some(object) = context.as_object_mut() {
            let link = format!("{}{}/{}", self.base_url, email.path, token.expose());
            object.insert("link_url".into(), json!(link));
        }
        let outbox_id = self
            .queue(conn, email.template, subscriber_id, recipient, context, now)
            .await?;
        let new_token = NewToken {
            hash: &token.hash(),
            subscriber_id,
            purpose: email.purpose,
            outbox_id: &outbox_id,
            expires_at: now + clock::ms(email.ttl),
            consent_text_id: email.consent_text_id,
        };
        store::tokens::issue(conn, &new_token, now).await
    }
}
