//! The suppression list as editors manage it, from the console, the API
//! and the CLI: list and search it, add an address by hand, take one off.
//! Every change is audited in its own transaction.

use std::sync::Arc;

use serde_json::json;

use crate::{
    audit::{self, Actor},
    clock::Clock,
    domain::EmailAddress,
    privacy::suppression_hash,
    store::{
        self, Store,
        suppressions::{NewSuppression, Reason, SuppressionRow},
    },
};

/// Why a change to the list was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refused {
    #[error("not an email address")]
    NotAnAddress,
    #[error("that address is not on the suppression list")]
    NotListed,
    #[error("an erased reader's address stays suppressed until they sign up again")]
    Erased,
    #[error("a note has at most 500 characters")]
    NoteTooLong,
}

#[derive(Clone)]
pub struct Suppressions {
    store: Store,
    clock: Clock,
    key: Arc<[u8]>,
}

/// Entries per page.
pub const PAGE: i64 = 50;

/// The longest note kept: it goes into the audit log too, and a reason
/// needs a sentence, not a document.
pub const NOTE_CHARS: usize = 500;

impl Suppressions {
    pub fn new(store: Store, clock: Clock, suppression_key: &[u8]) -> Self {
        Self {
            store,
            clock,
            key: suppression_key.into(),
        }
    }

    /// A page of the list, newest first, before `before` (a `created_at`);
    /// `address` finds that one address, whose hash is all the list holds.
    pub async fn list(
        &self,
        address: Option<&str>,
        before: Option<i64>,
    ) -> anyhow::Result<Result<Vec<SuppressionRow>, Refused>> {
        let hash = match address.map(str::trim).filter(|a| !a.is_empty()) {
            Some(address) => match self.hash(address) {
                Ok(hash) => Some(hash),
                Err(refused) => return Ok(Err(refused)),
            },
            None => None,
        };
        let mut conn = self.store.pool().acquire().await?;
        let before = before.unwrap_or(i64::MAX);
        let rows = store::suppressions::list(&mut conn, hash.as_deref(), before, PAGE).await?;
        Ok(Ok(rows))
    }

    /// Adds `address` by hand; false if it was on the list already.
    pub async fn add(
        &self,
        address: &str,
        note: &str,
        actor: &Actor,
    ) -> anyhow::Result<Result<bool, Refused>> {
        let hash = match self.hash(address) {
            Ok(hash) => hash,
            Err(refused) => return Ok(Err(refused)),
        };
        let note = note.trim();
        if note.chars().count() > NOTE_CHARS {
            return Ok(Err(Refused::NoteTooLong));
        }
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let canonical = EmailAddress::parse(address).map(|a| a.canonical().to_owned());
        let subscriber = match &canonical {
            Ok(canonical) => store::subscribers::find_id_by_email(&mut tx, canonical).await?,
            Err(_) => None,
        };
        let entry = NewSuppression {
            email_hash: &hash,
            reason: Reason::Manual,
            subscriber_id: subscriber.as_deref(),
            event_id: None,
            note: (!note.is_empty()).then_some(note),
        };
        let added = store::suppressions::add(&mut tx, &entry, now).await?;
        if added {
            let detail = json!({ "note": note });
            audit::record(&mut tx, now, actor, "suppression.add", &hash, detail).await?;
        }
        tx.commit().await?;
        Ok(Ok(added))
    }

    /// Takes `address` off the list (an erasure's entry stays).
    pub async fn remove(
        &self,
        address: &str,
        actor: &Actor,
    ) -> anyhow::Result<Result<(), Refused>> {
        let hash = match self.hash(address) {
            Ok(hash) => hash,
            Err(refused) => return Ok(Err(refused)),
        };
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(reason) = store::suppressions::remove(&mut tx, &hash).await? else {
            let listed = store::suppressions::list(&mut tx, Some(&hash), i64::MAX, 1).await?;
            return Ok(Err(if listed.is_empty() {
                Refused::NotListed
            } else {
                Refused::Erased
            }));
        };
        let detail = json!({ "reason": reason });
        audit::record(&mut tx, now, actor, "suppression.remove", &hash, detail).await?;
        tx.commit().await?;
        Ok(Ok(()))
    }

    fn hash(&self, address: &str) -> Result<String, Refused> {
        let address = EmailAddress::parse(address).map_err(|_| Refused::NotAnAddress)?;
        Ok(suppression_hash(&self.key, address.canonical()))
    }
}
