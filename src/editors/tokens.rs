//! API tokens: `bs_` and 64 hex digits, shown once, stored as SHA-256,
//! revocable (DESIGN "Interfaces").

use serde_json::json;

use super::Role;
use crate::{
    audit::{self, Actor},
    clock::Clock,
    domain::Token,
    store::{self, Store, editors::TokenRow},
};

const PREFIX: &str = "bs_";

/// A token's secret as its holder sends it; `Debug` never shows it.
pub struct ApiToken(Token);

impl ApiToken {
    /// The text to put after `Authorization: Bearer`.
    pub fn expose(&self) -> String {
        format!("{PREFIX}{}", self.0.expose())
    }

    /// Accepts only the shape we issue, so junk never reaches the database.
    pub fn parse(text: &str) -> Option<Self> {
        text.strip_prefix(PREFIX).and_then(Token::parse).map(Self)
    }
}

impl std::fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ApiToken(…)")
    }
}

/// A name is what lists and the audit log show: 1 to 64 letters, digits, `-`, `_` or `.`.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// API tokens for handlers, over the store and the clock.
#[derive(Clone)]
pub struct Tokens {
    store: Store,
    clock: Clock,
}

impl Tokens {
    pub fn new(store: Store, clock: Clock) -> Self {
        Self { store, clock }
    }

    /// The caller behind a bearer token, if it is live.
    pub async fn authenticate(&self, bearer: &str) -> anyhow::Result<Option<Actor>> {
        authenticate(&self.store, &self.clock, bearer).await
    }

    /// The live token behind a bearer credential.
    pub async fn find(&self, bearer: &str) -> anyhow::Result<Option<TokenRow>> {
        find(&self.store, &self.clock, bearer).await
    }

    /// Every token, live or revoked.
    pub async fn list(&self) -> anyhow::Result<Vec<TokenRow>> {
        list(&self.store).await
    }

    /// Creates a token; its secret is shown once.
    pub async fn create(
        &self,
        name: &str,
        role: Role,
        actor: &Actor,
    ) -> anyhow::Result<Result<ApiToken, CreateError>> {
        create(&self.store, &self.clock, name, role, actor).await
    }

    /// Revokes the live token called `name`; `false` if there is none.
    pub async fn revoke(&self, name: &str, actor: &Actor) -> anyhow::Result<bool> {
        revoke(&self.store, &self.clock, name, actor).await
    }
}

/// Why a token could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    #[error("a token name is 1 to 64 letters, digits, '-', '_' or '.'")]
    InvalidName,
    #[error("a live token is already called {0:?}; revoke it first")]
    NameTaken(String),
}

pub async fn create(
    store: &Store,
    clock: &Clock,
    name: &str,
    role: Role,
    actor: &Actor,
) -> anyhow::Result<Result<ApiToken, CreateError>> {
    if !valid_name(name) {
        return Ok(Err(CreateError::InvalidName));
    }
    let token = Token::generate();
    let now = clock.now_ms();
    let id = store::new_id();
    let mut tx = store.begin().await?;
    if !store::editors::create_token(&mut tx, &id, name, role.as_str(), &token.hash(), now).await? {
        return Ok(Err(CreateError::NameTaken(name.to_owned())));
    }
    let detail = json!({ "name": name, "role": role.as_str() });
    audit::record(&mut tx, now, actor, "token.create", &id, detail).await?;
    tx.commit().await?;
    Ok(Ok(ApiToken(token)))
}

/// The live token behind a bearer credential.
pub async fn find(store: &Store, clock: &Clock, bearer: &str) -> anyhow::Result<Option<TokenRow>> {
    let Some(token) = ApiToken::parse(bearer) else {
        return Ok(None);
    };
    store::editors::find_token(store.pool(), &token.0.hash(), clock.now_ms()).await
}

/// The caller behind a bearer token, if it is live.
pub async fn authenticate(
    store: &Store,
    clock: &Clock,
    bearer: &str,
) -> anyhow::Result<Option<Actor>> {
    let found = find(store, clock, bearer).await?;
    Ok(found.map(|row| Actor::token(&row.name, Role::from_stored(&row.role))))
}

/// Revokes the live token called `name`; `false` if there is none.
pub async fn revoke(
    store: &Store,
    clock: &Clock,
    name: &str,
    actor: &Actor,
) -> anyhow::Result<bool> {
    let now = clock.now_ms();
    let mut tx = store.begin().await?;
    if !store::editors::revoke_token(&mut tx, name, now).await? {
        return Ok(false);
    }
    audit::record(&mut tx, now, actor, "token.revoke", name, json!({})).await?;
    tx.commit().await?;
    Ok(true)
}

pub async fn list(store: &Store) -> anyhow::Result<Vec<TokenRow>> {
    store::editors::list_tokens(store.pool()).await
}
