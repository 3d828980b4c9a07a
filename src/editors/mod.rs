//! Editors: accounts with a role, set-password links, sign-in and sessions
//! for the console (S-10). API tokens are in [`tokens`]; what editors do is
//! written to the [`crate::audit`] log.

pub mod tokens;

pub use tokens::Tokens;

use std::time::Duration;

use serde_json::json;

// `Role` is defined in `audit`, beside the actors it describes, so that
// `audit` needs nothing from here; `editors::Role` remains its usual name.
pub use crate::audit::Role;

use crate::{
    accounts::PasswordHasher,
    audit::{self, Actor},
    clock::{self, Clock},
    config::EditorsConfig,
    domain::{EmailAddress, NewPassword, Token, TokenHash, mask_email},
    store::{self, Store, audit::AuditEntry, editors::EditorRow},
};

/// A signed-in editor, as console handlers see them.
#[derive(Debug, Clone)]
pub struct SignedIn {
    pub id: String,
    pub email: String,
    pub role: Role,
    pub session: TokenHash,
}

impl SignedIn {
    pub fn actor(&self) -> Actor {
        Actor::editor(&self.email, self.role)
    }
}

const MINUTE_MS: i64 = 60_000;

#[derive(Clone)]
pub struct Editors {
    store: Store,
    clock: Clock,
    hasher: PasswordHasher,
    settings: EditorsConfig,
}

impl Editors {
    pub fn new(
        store: Store,
        clock: Clock,
        hasher: PasswordHasher,
        settings: EditorsConfig,
    ) -> Self {
        Self {
            store,
            clock,
            hasher,
            settings,
        }
    }

    /// How long a console session lasts at most: its cookie's lifetime.
    pub fn session_absolute(&self) -> Duration {
        self.settings.session_absolute
    }

    /// The audit log, newest first, older than `before` (an entry id) if given.
    pub async fn audit_log(
        &self,
        before: Option<&str>,
        limit: i64,
    ) -> anyhow::Result<Vec<AuditEntry>> {
        audit::list(&self.store, before, limit).await
    }

    /// Creates an editor (or gives an existing one a new role and link) and
    /// returns a single-use set-password link's token, and whether the
    /// editor was there already.
    pub async fn add(
        &self,
        email: &EmailAddress,
        role: Role,
        actor: &Actor,
    ) -> anyhow::Result<(Token, bool)> {
        let token = Token::generate();
        let now = self.clock.now_ms();
        let expires = now + clock::ms(self.settings.password_link_ttl);
        let mut tx = self.store.begin().await?;
        let new_id = store::new_id();
        let id = store::editors::upsert(
            &mut tx,
            &new_id,
            email.canonical(),
            role.as_str(),
            &token.hash(),
            expires,
            now,
        )
        .await?;
        let existed = id != new_id;
        let detail =
            json!({ "email": email.canonical(), "role": role.as_str(), "existed": existed });
        audit::record(&mut tx, now, actor, "editor.add", &id, detail).await?;
        tx.commit().await?;
        tracing::info!(event = "editor_added", editor_id = %id, role = role.as_str(), existed, "editor added");
        Ok((token, existed))
    }

    /// True if the set-password link could be used now; changes nothing.
    pub async fn password_link_is_live(&self, token: &Token) -> anyhow::Result<bool> {
        store::editors::password_link_is_live(self.store.pool(), &token.hash(), self.clock.now_ms())
            .await
    }

    /// Uses a set-password link once; `Ok(false)` if it is unknown, used or expired.
    pub async fn set_password(
        &self,
        token: &Token,
        password: &NewPassword,
    ) -> anyhow::Result<bool> {
        // A dead link costs no hash; the write below checks it again.
        if !self.password_link_is_live(token).await? {
            return Ok(false);
        }
        let hash = self.hasher.hash(password).await?;
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(editor) =
            store::editors::use_password_link(&mut tx, &token.hash(), &hash, now).await?
        else {
            return Ok(false);
        };
        // A new password ends every session started with the old one.
        store::editors::delete_sessions_of(&mut tx, &editor.id).await?;
        let actor = Actor::editor(&editor.email, Role::from_stored(&editor.role));
        let action = "editor.password_set";
        audit::record(&mut tx, now, &actor, action, &editor.id, json!({})).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Checks an address and password and starts a session. Unknown
    /// addresses cost as much time as wrong passwords.
    pub async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<Option<Token>> {
        let login = match EmailAddress::parse(email) {
            Ok(address) => {
                store::editors::find_login(self.store.pool(), address.canonical()).await?
            }
            Err(_) => None,
        };
        let hash = login.as_ref().and_then(|l| l.password_hash.as_deref());
        let valid = self.hasher.verify(password, hash).await?;
        let Some(login) = login.filter(|_| valid) else {
            tracing::info!(event = "editor_sign_in_failed", email = %mask_email(email), "sign-in failed");
            return Ok(None);
        };
        let token = Token::generate();
        let now = self.clock.now_ms();
        let expires = now + clock::ms(self.settings.session_absolute);
        let mut conn = self.store.pool().acquire().await?;
        store::editors::create_session(&mut conn, &token.hash(), &login.id, now, expires).await?;
        tracing::info!(event = "editor_sign_in", editor_id = %login.id, "editor signed in");
        Ok(Some(token))
    }

    /// The editor behind a session secret, if the session is live; refreshes
    /// its idle timer at most once a minute.
    pub async fn signed_in(&self, session: &Token) -> anyhow::Result<Option<SignedIn>> {
        let now = self.clock.now_ms();
        let hash = session.hash();
        let idle_since = now - clock::ms(self.settings.session_idle);
        let pool = self.store.pool();
        let Some(row) = store::editors::find_session(pool, &hash, now, idle_since).await? else {
            return Ok(None);
        };
        if now - row.last_seen_at > MINUTE_MS {
            store::editors::touch_session(pool, &hash, now).await?;
        }
        Ok(Some(SignedIn {
            id: row.id,
            email: row.email,
            role: Role::from_stored(&row.role),
            session: hash,
        }))
    }

    pub async fn sign_out(&self, editor: &SignedIn) -> anyhow::Result<()> {
        store::editors::delete_session(self.store.pool(), &editor.session).await
    }

    pub async fn list(&self) -> anyhow::Result<Vec<EditorRow>> {
        store::editors::list(self.store.pool()).await
    }

    /// Removes an editor; `false` if there was none with this id.
    pub async fn remove(&self, id: &str, actor: &Actor) -> anyhow::Result<bool> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let Some(email) = store::editors::delete(&mut tx, id).await? else {
            return Ok(false);
        };
        audit::record(
            &mut tx,
            now,
            actor,
            "editor.remove",
            id,
            json!({ "email": email }),
        )
        .await?;
        tx.commit().await?;
        Ok(true)
    }
}
