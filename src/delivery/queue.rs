//! Putting an email in the outbox, inside the caller's transaction.

use crate::store::{self, Conn, outbox::NewEmail};

/// An email to be rendered and sent later by a worker.
pub struct QueuedEmail<'a> {
    pub template: &'a str,
    pub subscriber_id: Option<&'a str>,
    pub recipient: &'a str,
    pub context: serde_json::Value,
}

/// Queues `email` and returns its outbox id. Its Message-ID is fixed now, so
/// every retry of it carries the same one.
pub async fn queue_email(
    conn: &mut Conn,
    email: &QueuedEmail<'_>,
    message_id_domain: &str,
    now: i64,
) -> anyhow::Result<String> {
    let id = store::new_id();
    let message_id = format!("<{id}@{message_id_domain}>");
    store::outbox::enqueue(
        conn,
        &NewEmail {
            id: &id,
            template: email.template,
            subscriber_id: email.subscriber_id,
            recipient: email.recipient,
            context: &email.context,
            message_id: &message_id,
        },
        now,
    )
    .await?;
    Ok(id)
}
