//! Readers' accounts: setting a password, signing in (password or emailed
//! link), sessions, sign-out and reset (DESIGN, STANDARDS A-01…A-10).

mod hashing;
mod throttle;

use std::time::Duration;

use serde_json::json;

pub use hashing::{HasherBusy, PasswordHasher};
pub use throttle::LoginThrottle;

use crate::{
    clock::{self, Clock},
    consent::{self, DigestConsent},
    domain::{EmailAddress, NewPassword, Token, TokenHash, TokenPurpose, mask_email},
    emails::{Emails, LinkEmail},
    store::{self, Store, sessions::SessionRow},
};

pub const PASSWORD_SET_EMAIL: &str = "password_set";
pub const PASSWORD_RESET_EMAIL: &str = "password_reset";
pub const SIGN_IN_LINK_EMAIL: &str = "sign_in_link";

const MINUTE_MS: i64 = 60_000;
const HOUR_MS: i64 = 60 * MINUTE_MS;

/// Settings the account flows take from configuration.
#[derive(Debug, Clone)]
pub struct AccountSettings {
    pub reset_ttl: Duration,
    pub sign_in_link_ttl: Duration,
    pub session_idle: Duration,
    pub session_absolute: Duration,
    /// Reset and sign-in-link emails per address per hour.
    pub max_link_emails_per_hour: u32,
}

/// A signed-in reader, as handlers see them.
#[derive(Debug, Clone)]
pub struct Reader {
    pub subscriber_id: String,
    pub username: String,
    pub session: TokenHash,
}

/// What the account page shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AccountPage {
    pub username: String,
    pub created_at: i64,
    pub digest: DigestConsent,
}

#[derive(Clone)]
pub struct Accounts {
    store: Store,
    clock: Clock,
    emails: Emails,
    hasher: PasswordHasher,
    settings: AccountSettings,
}

impl Accounts {
    pub fn new(
        store: Store,
        clock: Clock,
        emails: Emails,
        hasher: PasswordHasher,
        settings: AccountSettings,
    ) -> Self {
        Self {
            store,
            clock,
            emails,
            hasher,
            settings,
        }
    }

    /// How long a session lasts at most, used or not: its cookie's lifetime.
    pub fn session_absolute(&self) -> Duration {
        self.settings.session_absolute
    }

    /// True if a token of `purpose` could be used now; changes nothing (D-06).
    pub async fn link_is_usable(
        &self,
        token: &Token,
        purpose: TokenPurpose,
    ) -> anyhow::Result<bool> {
        let mut conn = self.store.pool().acquire().await?;
        let usable =
            store::tokens::usable(&mut conn, &token.hash(), purpose, self.clock.now_ms()).await?;
        Ok(usable.is_some())
    }

    /// Sets the password behind a welcome or reset link: voids the link and
    /// every other, revokes every session but `keep`, and tells the reader
    /// by email. `Ok(false)` for an unusable link.
    pub async fn set_password(
        &self,
        token: &Token,
        password: &NewPassword,
        keep: Option<&TokenHash>,
    ) -> anyhow::Result<bool> {
        // An unusable link costs no hash (a flood of made-up links must not
        // occupy the hashing threads); the consuming write checks it again.
        if !self.password_link_is_usable(token).await? {
            tracing::info!(
                event = "token_rejected",
                purpose = "set_password",
                "password link invalid or expired"
            );
            return Ok(false);
        }
        // Hash before the transaction: it is slow, and none should wait on it.
        let hash = self.hasher.hash(password).await?;
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let token_hash = token.hash();
        let welcome =
            store::tokens::consume(&mut tx, &token_hash, TokenPurpose::SetPassword, now).await?;
        let used = match welcome {
            Some(used) => Some(used),
            None => {
                store::tokens::consume(&mut tx, &token_hash, TokenPurpose::ResetPassword, now)
                    .await?
            }
        };
        let Some(used) = used else {
            tracing::info!(
                event = "token_rejected",
                purpose = "set_password",
                "password link invalid or expired"
            );
            return Ok(false);
        };
        let id = &used.subscriber_id;
        let username = store::subscribers::set_password_hash(&mut tx, id, &hash).await?;
        store::tokens::void_all(&mut tx, id, TokenPurpose::SetPassword).await?;
        store::tokens::void_all(&mut tx, id, TokenPurpose::ResetPassword).await?;
        store::tokens::void_all(&mut tx, id, TokenPurpose::SignIn).await?;
        let revoked = store::sessions::delete_all_but(&mut tx, id, keep).await?;
        let context = json!({ "login_url": format!("{}/login", self.emails.base_url()) });
        self.emails
            .queue(&mut tx, PASSWORD_SET_EMAIL, id, &username, context, now)
            .await?;
        tx.commit().await?;
        tracing::info!(event = "password_set", subscriber_id = %id, revoked_sessions = revoked, "password set");
        Ok(true)
    }

    /// Checks an address and password; on success starts a new session and
    /// returns its secret. Unknown addresses cost as much time as wrong
    /// passwords, and both answer `None`.
    pub async fn sign_in(&self, email: &str, password: &str) -> anyhow::Result<Option<Token>> {
        let account = match EmailAddress::parse(email) {
            Ok(address) => {
                let mut conn = self.store.pool().acquire().await?;
                store::subscribers::find_account(&mut conn, address.canonical()).await?
            }
            Err(_) => None,
        };
        let hash = account.as_ref().and_then(|a| a.password_hash.as_deref());
        let valid = self.hasher.verify(password, hash).await?;
        match account {
            Some(account) if valid => {
                tracing::info!(event = "sign_in", subscriber_id = %account.subscriber_id, "signed in");
                self.start_session(&account.subscriber_id).await.map(Some)
            }
            _ => {
                tracing::info!(event = "sign_in_failed", email = %mask_email(email), "sign-in failed");
                Ok(None)
            }
        }
    }

    /// Asks for a 1-hour set-password link, emailed if the address has an
    /// account (see [`Self::email_requested_links`]); the caller answers the
    /// same either way, after the same work.
    pub async fn request_reset(&self, email: &EmailAddress) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        store::link_requests::add(&self.store, email.canonical(), PASSWORD_RESET_EMAIL, now).await
    }

    /// Asks for a single-use sign-in link, valid for minutes, emailed
    /// if the address has an account.
    pub async fn request_sign_in_link(&self, email: &EmailAddress) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        store::link_requests::add(&self.store, email.canonical(), SIGN_IN_LINK_EMAIL, now).await
    }

    /// Turns up to 100 of the link requests kept so far into emails for
    /// the addresses that have an account, each in a transaction of its
    /// own; returns how many requests were taken. The delivery worker runs
    /// it before each batch of account mail.
    pub async fn email_requested_links(&self) -> anyhow::Result<usize> {
        let mut taken = 0;
        while taken < 100 && store::link_requests::any(&self.store).await? {
            let mut tx = self.store.begin().await?;
            let Some(request) =
                store::link_requests::take_oldest(&mut tx, self.store.backend()).await?
            else {
                return Ok(taken);
            };
            taken += 1;
            match self.link_email(&request.template) {
                Some(link) => {
                    self.email_link_if_known(&mut tx, &request.email_canonical, link)
                        .await?;
                }
                None => {
                    tracing::warn!(template = %request.template, "a link request of no known kind is dropped")
                }
            }
            tx.commit().await?;
        }
        Ok(taken)
    }

    /// The email a link request of `template` asks for.
    fn link_email(&self, template: &str) -> Option<LinkEmail<'static>> {
        let (template, purpose, path, ttl) = match template {
            PASSWORD_RESET_EMAIL => (
                PASSWORD_RESET_EMAIL,
                TokenPurpose::ResetPassword,
                "/account/password",
                self.settings.reset_ttl,
            ),
            SIGN_IN_LINK_EMAIL => (
                SIGN_IN_LINK_EMAIL,
                TokenPurpose::SignIn,
                "/login/link",
                self.settings.sign_in_link_ttl,
            ),
            _ => return None,
        };
        Some(LinkEmail {
            template,
            purpose,
            path,
            ttl,
            context: json!({ "expires_minutes": ttl.as_secs() / 60 }),
            consent_text_id: None,
        })
    }

    async fn email_link_if_known(
        &self,
        tx: &mut store::Conn,
        email_canonical: &str,
        link: LinkEmail<'_>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now_ms();
        let Some(account) = store::subscribers::find_account(&mut *tx, email_canonical).await?
        else {
            tracing::info!(event = "link_requested_unknown", email = %mask_email(email_canonical), template = link.template, "no account");
            return Ok(());
        };
        let id = &account.subscriber_id;
        let sent = store::outbox::count_recent(&mut *tx, id, link.template, now - HOUR_MS).await?;
        if sent >= i64::from(self.settings.max_link_emails_per_hour) {
            tracing::info!(event = "link_throttled", subscriber_id = %id, template = link.template, "too many link emails");
            return Ok(());
        }
        let template = link.template;
        self.emails
            .send_link(&mut *tx, link, id, &account.username, now)
            .await?;
        tracing::info!(event = "link_requested", subscriber_id = %id, template, "link emailed");
        Ok(())
    }

    /// Uses a sign-in link once and starts a session.
    pub async fn sign_in_with_link(&self, token: &Token) -> anyhow::Result<Option<Token>> {
        let now = self.clock.now_ms();
        let mut tx = self.store.begin().await?;
        let used =
            store::tokens::consume(&mut tx, &token.hash(), TokenPurpose::SignIn, now).await?;
        tx.commit().await?;
        match used {
            Some(used) => {
                tracing::info!(event = "sign_in", subscriber_id = %used.subscriber_id, method = "link", "signed in");
                self.start_session(&used.subscriber_id).await.map(Some)
            }
            None => {
                tracing::info!(
                    event = "token_rejected",
                    purpose = "sign_in",
                    "sign-in link invalid or expired"
                );
                Ok(None)
            }
        }
    }

    /// A new session with a new secret, so a planted id never survives sign-in.
    async fn start_session(&self, subscriber_id: &str) -> anyhow::Result<Token> {
        let token = Token::generate();
        let now = self.clock.now_ms();
        let mut conn = self.store.pool().acquire().await?;
        let expires_at = now + clock::ms(self.settings.session_absolute);
        store::sessions::create(&mut conn, &token.hash(), subscriber_id, now, expires_at).await?;
        Ok(token)
    }

    /// The reader behind a session secret, if the session is live. Refreshes
    /// its idle timer at most once a minute.
    pub async fn reader(&self, session: &Token) -> anyhow::Result<Option<Reader>> {
        let now = self.clock.now_ms();
        let hash = session.hash();
        let idle_since = now - clock::ms(self.settings.session_idle);
        let Some(SessionRow {
            subscriber_id,
            username,
            last_seen_at,
        }) = store::sessions::find_live(self.store.pool(), &hash, now, idle_since).await?
        else {
            return Ok(None);
        };
        if now - last_seen_at > MINUTE_MS {
            store::sessions::touch(self.store.pool(), &hash, now).await?;
        }
        Ok(Some(Reader {
            subscriber_id,
            username,
            session: hash,
        }))
    }

    /// True if a welcome or reset link could set a password now; changes nothing.
    pub async fn password_link_is_usable(&self, token: &Token) -> anyhow::Result<bool> {
        Ok(self
            .link_is_usable(token, TokenPurpose::SetPassword)
            .await?
            || self
                .link_is_usable(token, TokenPurpose::ResetPassword)
                .await?)
    }

    /// Re-checks a signed-in reader's password before a grave step (erasure).
    pub async fn verify_password(&self, reader: &Reader, password: &str) -> anyhow::Result<bool> {
        let mut conn = self.store.pool().acquire().await?;
        let hash = store::subscribers::password_hash_of(&mut conn, &reader.subscriber_id).await?;
        drop(conn);
        self.hasher.verify(password, hash.as_deref()).await
    }

    /// Revokes a session server-side.
    pub async fn sign_out(&self, reader: &Reader) -> anyhow::Result<()> {
        let mut conn = self.store.pool().acquire().await?;
        store::sessions::delete(&mut conn, &reader.session).await?;
        tracing::info!(event = "sign_out", subscriber_id = %reader.subscriber_id, "signed out");
        Ok(())
    }

    pub async fn account_page(&self, reader: &Reader) -> anyhow::Result<Option<AccountPage>> {
        let mut conn = self.store.pool().acquire().await?;
        let Some(overview) =
            store::subscribers::account_overview(&mut conn, &reader.subscriber_id).await?
        else {
            return Ok(None);
        };
        let digest = consent::digest_consent(&mut conn, &reader.subscriber_id).await?;
        Ok(Some(AccountPage {
            username: overview.username,
            created_at: overview.created_at,
            digest,
        }))
    }
}
