//! Readers as editors see them: search, detail, and the data-rights actions
//! an admin takes on a reader's behalf (export, erasure), each audited.

use std::sync::Arc;

use serde_json::{Value, json};

pub use crate::store::subscribers::ReaderLine;
use crate::{
    audit::{self, Actor},
    clock::Clock,
    domain::EmailAddress,
    import::{self, ImportReport},
    privacy,
    store::{self, Store},
};

/// Readers for the console and the API, over the store, the clock and the
/// suppression key.
#[derive(Clone)]
pub struct Readers {
    store: Store,
    clock: Clock,
    /// Keys the hashes of erased and suppressed addresses (G-13).
    suppression_key: Arc<[u8]>,
}

impl Readers {
    pub fn new(store: Store, clock: Clock, suppression_key: &[u8]) -> Self {
        Self {
            store,
            clock,
            suppression_key: suppression_key.into(),
        }
    }

    /// Readers in signup order after `after`, whose address contains
    /// `search`, of `status` if given.
    pub async fn list(
        &self,
        search: &str,
        status: Option<&str>,
        after: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<ReaderLine>> {
        list(&self.store, search, status, after, limit).await
    }

    /// What any editor may see of a reader (see [`detail`]).
    pub async fn detail(&self, id: &str) -> anyhow::Result<Option<Value>> {
        detail(&self.store, &self.clock, id).await
    }

    /// A reader's export, fetched by an admin: the fetch is audited.
    pub async fn export(&self, id: &str, actor: &Actor) -> anyhow::Result<Option<Value>> {
        export(&self.store, &self.clock, id, actor).await
    }

    /// Erases a reader on their request, through an admin.
    pub async fn erase(&self, id: &str, actor: &Actor) -> anyhow::Result<bool> {
        erase(&self.store, &self.clock, &self.suppression_key, id, actor).await
    }

    /// Imports readers from CSV sent by an API caller, with the newsletter
    /// wording `wording_id`, and writes the audit log's line.
    pub async fn import(
        &self,
        csv: &[u8],
        actor: &Actor,
        wording_id: &str,
    ) -> anyhow::Result<ImportReport> {
        let source = format!("api:{}", actor.label);
        let key = &self.suppression_key;
        let report = import::import(&self.store, csv, &source, wording_id, key, |_| {}).await?;
        let detail = json!({ "imported": report.imported, "existing": report.existing });
        let mut conn = self.store.pool().acquire().await?;
        let now = self.clock.now_ms();
        audit::record(&mut conn, now, actor, "subscribers.import", "", detail).await?;
        Ok(report)
    }
}

pub async fn list(
    store: &Store,
    search: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<ReaderLine>> {
    store::subscribers::list(store.pool(), search, status, after, limit).await
}

/// The id of the reader with this address, if there is one.
pub async fn id_by_email(store: &Store, address: &EmailAddress) -> anyhow::Result<Option<String>> {
    let mut conn = store.pool().acquire().await?;
    store::subscribers::find_id_by_email(&mut conn, address.canonical()).await
}

/// What any editor may see of a reader: the export without network
/// evidence (IP addresses, user agents) and sessions, which only an
/// admin's audited export shows, plus their digest deliveries.
pub async fn detail(store: &Store, clock: &Clock, id: &str) -> anyhow::Result<Option<Value>> {
    let Some(mut data) = privacy::export(store, clock, id).await? else {
        return Ok(None);
    };
    if let Some(object) = data.as_object_mut() {
        object.remove("sessions");
    }
    if let Some(events) = data["consent"]["events"].as_array_mut() {
        for event in events.iter_mut().filter_map(Value::as_object_mut) {
            event.remove("ip");
            event.remove("user_agent");
        }
    }
    let deliveries = store::deliveries::deliveries_of(store, id, 100).await?;
    // Times in RFC 3339, as in the rest of this document (the export's).
    data["deliveries"] = deliveries
        .into_iter()
        .map(|d| {
            json!({
                "campaign_id": d.campaign_id,
                "period_key": d.period_key,
                "status": d.status,
                "attempts": d.attempts,
                "sent_at": d.sent_at.and_then(crate::clock::rfc3339),
                "last_error": d.last_error,
            })
        })
        .collect();
    Ok(Some(data))
}

/// A reader's export, fetched by an admin: the fetch is audited.
pub async fn export(
    store: &Store,
    clock: &Clock,
    id: &str,
    actor: &Actor,
) -> anyhow::Result<Option<Value>> {
    let Some(data) = privacy::export(store, clock, id).await? else {
        return Ok(None);
    };
    let mut conn = store.pool().acquire().await?;
    audit::record(
        &mut conn,
        clock.now_ms(),
        actor,
        "reader.export",
        id,
        json!({}),
    )
    .await?;
    Ok(Some(data))
}

/// Erases a reader on their request, through an admin. The log keeps the
/// reader's former id, never their address.
pub async fn erase(
    store: &Store,
    clock: &Clock,
    key: &[u8],
    id: &str,
    actor: &Actor,
) -> anyhow::Result<bool> {
    privacy::erase(store, clock, key, id, Some(actor)).await
}
