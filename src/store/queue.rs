//! The lease lifecycle shared by the queues of work, `outbox` (account
//! mail, one row per email), `deliveries` (one row per reader of a
//! campaign) and `webhook_messages` (one row per event and endpoint): renew, hand back, reschedule and finish rows a worker holds.
//! Each statement names the rows it means, changes only those still
//! pending and leased to the caller (a message sent is recorded sent
//! whoever holds it: [`finish`]), and says which it changed.
//!
//! Claiming is written per table (`outbox::claim`, `deliveries::claim`,
//! `webhooks::claim`): what is due differs (a signup ceiling, a running
//! campaign, the head of each reader's events).

use anyhow::Context;
use sqlx::Row;

use super::{Backend, Store};

/// A table that holds leased work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Queue {
    /// Account mail, rows named by `id`.
    Outbox,
    /// Digests, rows named by `subscriber_id` within one `campaign_id`.
    Deliveries,
    /// Outgoing webhook events, rows named by `event_id` within one `endpoint_id`.
    Webhooks,
}

impl Queue {
    fn table(self) -> &'static str {
        match self {
            Queue::Outbox => "outbox",
            Queue::Deliveries => "deliveries",
            Queue::Webhooks => "webhook_messages",
        }
    }

    fn id_column(self) -> &'static str {
        match self {
            Queue::Outbox => "id",
            Queue::Deliveries => "subscriber_id",
            Queue::Webhooks => "event_id",
        }
    }

    /// The column that, with [`Queue::id_column`], names a row: the
    /// campaign of a digest, the endpoint of a webhook event.
    fn scope_column(self) -> Option<&'static str> {
        match self {
            Queue::Outbox => None,
            Queue::Deliveries => Some("campaign_id"),
            Queue::Webhooks => Some("endpoint_id"),
        }
    }
}

/// Some rows of one queue, named as that queue names them.
#[derive(Debug, Clone, Copy)]
pub enum Rows<'a> {
    /// Account emails, by id.
    Outbox(&'a [String]),
    /// Readers' digests of one campaign, by reader.
    Deliveries {
        campaign: &'a str,
        subscribers: &'a [String],
    },
    /// Events of one webhook endpoint, by event id.
    Webhooks {
        endpoint: &'a str,
        events: &'a [String],
    },
}

impl Rows<'_> {
    pub fn queue(&self) -> Queue {
        match self {
            Rows::Outbox(_) => Queue::Outbox,
            Rows::Deliveries { .. } => Queue::Deliveries,
            Rows::Webhooks { .. } => Queue::Webhooks,
        }
    }

    pub fn ids(&self) -> &[String] {
        match self {
            Rows::Outbox(ids) => ids,
            Rows::Deliveries { subscribers, .. } => subscribers,
            Rows::Webhooks { events, .. } => events,
        }
    }

    /// The condition naming these rows, with its parameters from `$first` on.
    fn named(&self, store: &Store, first: usize) -> String {
        let ids = store.in_json_list(self.queue().id_column(), first);
        match self.queue().scope_column() {
            Some(scope) => format!("{ids} AND {scope} = ${}", first + 1),
            None => ids,
        }
    }

    /// These rows, still pending and leased to the owner bound as `$owner`.
    fn held_by(&self, store: &Store, owner: usize, first: usize) -> String {
        format!(
            "status = 'pending' AND lease_owner = ${owner} AND {}",
            self.named(store, first)
        )
    }

    /// Binds what [`Rows::named`] named, in its order.
    fn bind<'q>(
        &self,
        query: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>,
    ) -> anyhow::Result<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>> {
        let query = query.bind(serde_json::to_string(self.ids())?);
        Ok(match self {
            Rows::Deliveries {
                campaign: scope, ..
            }
            | Rows::Webhooks {
                endpoint: scope, ..
            } => query.bind((*scope).to_owned()),
            Rows::Outbox(_) => query,
        })
    }
}

/// How many rows a statement changed.
fn changed(result: &sqlx::any::AnyQueryResult) -> i64 {
    i64::try_from(result.rows_affected()).unwrap_or(i64::MAX)
}

/// Extends `owner`'s leases on `rows` to `until`; returns the ids whose
/// lease it extended (a row whose lease ran out and was taken by another
/// worker is not among them).
///
/// On PostgreSQL a row locked by another statement (the recorder finishing
/// it, a withdrawal cancelling it) is skipped, not waited for: two
/// statements over many rows that wait for each other's rows deadlock
/// (`bench/digest.sh 100000 postgres` did). A skipped row keeps its old
/// deadline until the next heartbeat.
pub async fn renew(
    store: &Store,
    owner: &str,
    rows: Rows<'_>,
    until: i64,
) -> anyhow::Result<Vec<String>> {
    if rows.ids().is_empty() {
        return Ok(Vec::new());
    }
    let queue = rows.queue();
    let held = rows.held_by(store, 2, 3);
    // As in the claim (`deliveries::claim_statement`): on PostgreSQL the
    // locked rows are found again by their physical address.
    let picked = match store.backend() {
        Backend::Postgres => format!(
            "ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE {held} FOR UPDATE SKIP LOCKED))",
            table = queue.table()
        ),
        Backend::Sqlite => {
            let key = match queue.scope_column() {
                None => queue.id_column().to_owned(),
                Some(scope) => format!("{scope}, {}", queue.id_column()),
            };
            format!(
                "({key}) IN (SELECT {key} FROM {table} WHERE {held})",
                table = queue.table()
            )
        }
    };
    let sql = format!(
        "UPDATE {table} SET lease_until = $1 WHERE {picked} RETURNING {id}",
        table = queue.table(),
        id = queue.id_column()
    );
    let renewed = rows
        .bind(sqlx::query(&sql).bind(until).bind(owner))?
        .fetch_all(store.pool())
        .await
        .with_context(|| format!("while renewing leases in {}", rows.queue().table()))?;
    Ok(renewed
        .iter()
        .map(|row| row.try_get(0))
        .collect::<Result<_, _>>()?)
}

/// Hands back rows that were claimed but not attempted (a shutdown, a lease
/// too short to finish in): due again at once, the claim not counted as an
/// attempt.
pub async fn release(store: &Store, owner: &str, rows: Rows<'_>) -> anyhow::Result<i64> {
    if rows.ids().is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE {} SET lease_owner = NULL, lease_until = NULL, attempts = attempts - 1 WHERE {}",
        rows.queue().table(),
        rows.held_by(store, 1, 2)
    );
    let query = rows.bind(sqlx::query(&sql).bind(owner))?;
    let result = query
        .execute(store.pool())
        .await
        .with_context(|| format!("while releasing rows of {}", rows.queue().table()))?;
    Ok(changed(&result))
}

/// Hands back rows that were claimed but held back (a domain's limit, the
/// warm-up ceiling): due again at `due`, with `why` kept, the claim not
/// counted as an attempt.
pub async fn hold(
    store: &Store,
    owner: &str,
    rows: Rows<'_>,
    due: i64,
    why: &str,
) -> anyhow::Result<i64> {
    due_again(store, owner, rows, (due, why), ", attempts = attempts - 1").await
}

/// A transient failure: the rows are due again at `due`, with `error` kept.
pub async fn reschedule(
    store: &Store,
    owner: &str,
    rows: Rows<'_>,
    due: i64,
    error: &str,
) -> anyhow::Result<i64> {
    due_again(store, owner, rows, (due, error), "").await
}

/// Lets go of `rows`, due again at `due` with `note` kept, and `also` set.
async fn due_again(
    store: &Store,
    owner: &str,
    rows: Rows<'_>,
    (due, note): (i64, &str),
    also: &str,
) -> anyhow::Result<i64> {
    if rows.ids().is_empty() {
        return Ok(0);
    }
    let sql = format!(
        "UPDATE {} SET next_attempt_at = $2, last_error = $3, lease_owner = NULL, lease_until = NULL{also}
         WHERE {}",
        rows.queue().table(),
        rows.held_by(store, 1, 4)
    );
    let query = rows.bind(sqlx::query(&sql).bind(owner).bind(due).bind(note))?;
    let result = query
        .execute(store.pool())
        .await
        .with_context(|| format!("while rescheduling rows of {}", rows.queue().table()))?;
    Ok(changed(&result))
}

/// How rows end: sent, failed (refused, or given up) or cancelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finish<'a> {
    /// Sent; an email keeps the version of the template it was rendered with.
    Sent {
        template_version: Option<&'a str>,
    },
    Failed(&'a str),
    Cancelled,
}

impl Finish<'_> {
    fn status(self) -> &'static str {
        match self {
            Finish::Sent { .. } => "sent",
            Finish::Failed(_) => "failed",
            Finish::Cancelled => "cancelled",
        }
    }

    fn error(self) -> Option<String> {
        match self {
            Finish::Failed(error) => Some(error.to_owned()),
            Finish::Sent { .. } | Finish::Cancelled => None,
        }
    }
}

/// Gives `rows` their final state, in one statement; returns how many
/// changed. Only pending rows change, and only the caller's, except that
/// a message sent is recorded sent whoever holds its lease now: left
/// pending, it would go out again.
pub async fn finish(
    store: &Store,
    owner: &str,
    rows: Rows<'_>,
    how: Finish<'_>,
    now: i64,
) -> anyhow::Result<i64> {
    if rows.ids().is_empty() {
        return Ok(0);
    }
    // A finished email's context is emptied: it may hold a single-use link.
    let (email_only, first) = match rows.queue() {
        Queue::Outbox => (
            ", context = '{}', template_version = COALESCE($5, template_version)",
            6,
        ),
        Queue::Deliveries | Queue::Webhooks => ("", 5),
    };
    let sql = format!(
        "UPDATE {} SET status = $2, last_error = $3,
                sent_at = CASE WHEN $2 = 'sent' THEN $4 ELSE NULL END,
                lease_owner = NULL, lease_until = NULL{email_only}
         WHERE status = 'pending' AND (lease_owner = $1 OR $2 = 'sent') AND {}",
        rows.queue().table(),
        rows.named(store, first)
    );
    let mut query = sqlx::query(&sql)
        .bind(owner)
        .bind(how.status())
        .bind(how.error())
        .bind(now);
    if rows.queue() == Queue::Outbox {
        let version = match how {
            Finish::Sent { template_version } => template_version.map(str::to_owned),
            Finish::Failed(_) | Finish::Cancelled => None,
        };
        query = query.bind(version);
    }
    let result = rows
        .bind(query)?
        .execute(store.pool())
        .await
        .with_context(|| format!("while recording rows of {}", rows.queue().table()))?;
    Ok(changed(&result))
}
