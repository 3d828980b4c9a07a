//! The emails Broadsheet sends to readers, queued in the caller's transaction:
//! plain ones, and ones carrying a single-use link whose token is stored
//! only as a hash (D-02…D-05).

use std::time::Duration;

use serde_json::{Value, json};

use crate::{
    clock,
    domain::{Token, TokenPurpose},
    store::{
        self, Conn,
        outbox::{Cap, NewEmail},
        tokens::NewToken,
    },
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

/// Who an email goes to: the reader, and the address written on it.
#[derive(Debug, Clone, Copy)]
pub struct Addressee<'a> {
    pub subscriber_id: &'a str,
    pub recipient: &'a str,
}

/// What queueing a link email checks, by what the reader may have had before.
#[derive(Debug, Clone, Copy)]
pub enum Earlier {
    /// The reader was created in the caller's transaction: no email to
    /// count, no older link to void, so neither is looked for.
    Nothing,
    /// Older links of the purpose are voided (D-05); with a cap, nothing is
    /// queued once the reader had their share (D-08, D-09).
    Possible(Option<Cap>),
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
        context: Value,
        now: i64,
    ) -> anyhow::Result<String> {
        let row = self.outbox_row(context);
        let to = Addressee {
            subscriber_id,
            recipient,
        };
        store::outbox::enqueue(conn, &row.email(template, to), now).await?;
        Ok(row.id)
    }

    /// As [`Emails::queue`], unless the reader had `cap.max` emails of
    /// `template` since `cap.since`; returns whether it queued.
    pub async fn queue_capped(
        &self,
        conn: &mut Conn,
        template: &str,
        to: Addressee<'_>,
        context: Value,
        now: i64,
        cap: Cap,
    ) -> anyhow::Result<bool> {
        let row = self.outbox_row(context);
        store::outbox::enqueue_capped(conn, &row.email(template, to), now, cap).await
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
        let to = Addressee {
            subscriber_id,
            recipient,
        };
        self.send_link_checked(conn, email, to, now, Earlier::Possible(None))
            .await
            .map(drop)
    }

    /// As [`Emails::send_link`], checking only what `earlier` says can
    /// exist; returns whether it queued (false: past the cap, nothing written).
    pub async fn send_link_checked(
        &self,
        conn: &mut Conn,
        email: LinkEmail<'_>,
        to: Addressee<'_>,
        now: i64,
        earlier: Earlier,
    ) -> anyhow::Result<bool> {
        let token = Token::generate();
        let mut context = email.context;
        if let Some(object) = context.as_object_mut() {
            let link = format!("{}{}/{}", self.base_url, email.path, token.expose());
            object.insert("link_url".into(), json!(link));
        }
        let row = self.outbox_row(context);
        let outbox_email = row.email(email.template, to);
        let queued = match earlier {
            Earlier::Possible(Some(cap)) => {
                store::outbox::enqueue_capped(conn, &outbox_email, now, cap).await?
            }
            Earlier::Possible(None) | Earlier::Nothing => {
                store::outbox::enqueue(conn, &outbox_email, now).await?;
                true
            }
        };
        if !queued {
            return Ok(false);
        }
        let new_token = NewToken {
            hash: &token.hash(),
            subscriber_id: to.subscriber_id,
            purpose: email.purpose,
            outbox_id: &row.id,
            expires_at: now + clock::ms(email.ttl),
            consent_text_id: email.consent_text_id,
        };
        match earlier {
            Earlier::Nothing => store::tokens::insert(conn, &new_token, now).await?,
            Earlier::Possible(_) => store::tokens::issue(conn, &new_token, now).await?,
        }
        Ok(true)
    }

    /// A new outbox row's id and Message-ID, and its context with `base_url`.
    fn outbox_row(&self, mut context: Value) -> OutboxRow {
        if let Some(object) = context.as_object_mut() {
            object.insert("base_url".into(), json!(self.base_url));
        }
        let id = store::new_id();
        let message_id = format!("<{id}@{}>", self.message_id_domain);
        OutboxRow {
            id,
            message_id,
            context,
        }
    }
}

/// An outbox row made ready before it is written.
struct OutboxRow {
    id: String,
    message_id: String,
    context: Value,
}

impl OutboxRow {
    fn email<'a>(&'a self, template: &'a str, to: Addressee<'a>) -> NewEmail<'a> {
        NewEmail {
            id: &self.id,
            template,
            subscriber_id: Some(to.subscriber_id),
            recipient: to.recipient,
            context: &self.context,
            message_id: &self.message_id,
        }
    }
}
