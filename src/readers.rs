//! Readers as editors see them: search, detail, and the data-rights actions
//! an admin takes on a reader's behalf (export, erasure), each audited.

use serde_json::{Value, json};

use crate::{
    audit::{self, Actor},
    clock::Clock,
    privacy,
    store::{self, Store, subscribers::ReaderLine},
};

pub async fn list(
    store: &Store,
    search: &str,
    status: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<ReaderLine>> {
    store::subscribers::list(store.pool(), search, status, after, limit).await
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
    data["deliveries"] = json!(deliveries);
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
