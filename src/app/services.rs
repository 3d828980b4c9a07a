//! The features' services, built once from the config for the web state
//! and the delivery worker.

use std::sync::Arc;

use lettre::message::Mailbox;

use crate::{
    accounts::{AccountSettings, Accounts, LoginThrottle, PasswordHasher},
    articles::Articles,
    clock::Clock,
    config::Config,
    consent::{Consent, ConsentSettings, Controller},
    digest::Digests,
    domain::ReturnPathSigner,
    editors::{Editors, Tokens},
    emails::Emails,
    feedback::{Feedbacks, SoftRule, Suppressions, Webhooks},
    feeds::Feeds,
    health::Health,
    idempotency::Idempotency,
    mail::message_id_domain,
    preferences::Preferences,
    privacy::Privacy,
    readers::Readers,
    signup::{Signup, SignupSettings},
    stats::Stats,
    store::Store,
    webhook_endpoints::WebhookEndpoints,
};

/// The features that handlers and the delivery worker call.
pub(super) struct Services {
    pub(super) editors: Editors,
    pub(super) accounts: Accounts,
    pub(super) login_throttle: Arc<LoginThrottle>,
    pub(super) signup: Signup,
    pub(super) tokens: Tokens,
    pub(super) articles: Articles,
    pub(super) consent: Consent,
    pub(super) digests: Digests,
    pub(super) feeds: Feeds,
    pub(super) preferences: Preferences,
    pub(super) privacy: Privacy,
    pub(super) readers: Readers,
    pub(super) stats: Stats,
    pub(super) idempotency: Idempotency,
    pub(super) health: Health,
    pub(super) feedbacks: Feedbacks,
    pub(super) webhooks: Webhooks,
    pub(super) suppressions: Suppressions,
    pub(super) webhook_endpoints: WebhookEndpoints,
}

/// Readers' accounts and signup, and the limit on sign-in attempts.
struct People {
    accounts: Accounts,
    login_throttle: Arc<LoginThrottle>,
    signup: Signup,
}

impl Services {
    /// Every feature on one store and clock (the signup writer on
    /// `Store::writer`); editors and readers share one password
    /// hasher. `suppression_key` keys the hashes of erased and suppressed
    /// addresses; `tags` signs and reads return-path tags.
    pub(super) async fn build(
        config: &Config,
        store: &Store,
        clock: &Clock,
        from: &Mailbox,
        suppression_key: &str,
        tags: ReturnPathSigner,
    ) -> anyhow::Result<Self> {
        let hasher = PasswordHasher::new(
            config.accounts.hashing_concurrency as usize,
            config.accounts.hashing_max_wait,
        )?;
        let editors = Editors::new(
            store.clone(),
            clock.clone(),
            hasher.clone(),
            config.editors.clone(),
        );
        let people = people(config, store, clock, from, suppression_key, hasher).await?;
        let (s, c) = (store, clock);
        let suppression_key = suppression_key.as_bytes();
        let schedules = config.digest.schedules.clone();
        let soft = SoftRule {
            limit: config.bounces.soft_limit,
            window: config.bounces.soft_window,
        };
        let feedbacks = Feedbacks::new(s.clone(), c.clone(), tags, suppression_key, soft);
        let webhooks = Webhooks::new(&config.webhooks, s.clone(), c.clone(), feedbacks.clone())?;
        Ok(Self {
            editors,
            accounts: people.accounts,
            login_throttle: people.login_throttle,
            signup: people.signup,
            tokens: Tokens::new(s.clone(), c.clone()),
            articles: Articles::new(s.clone(), c.clone()),
            consent: Consent::new(s.clone(), c.clone(), consent_settings(config)),
            digests: Digests::new(
                s.clone(),
                c.clone(),
                schedules,
                config.editors.test_sends_per_hour,
            ),
            feeds: Feeds::new(s.clone(), c.clone(), config.feeds.clone()),
            preferences: Preferences::new(s.clone(), c.clone(), &served_frequencies(config)),
            privacy: Privacy::new(s.clone(), c.clone(), suppression_key),
            readers: Readers::new(s.clone(), c.clone(), suppression_key),
            stats: Stats::new(s.clone(), c.clone()),
            idempotency: Idempotency::new(s.clone(), c.clone(), config.server.request_timeout),
            health: Health::new(s.clone()),
            feedbacks,
            webhooks,
            suppressions: Suppressions::new(s.clone(), c.clone(), suppression_key),
            webhook_endpoints: WebhookEndpoints::new(s, c, &config.outgoing_webhooks),
        })
    }
}

/// The frequencies the configured schedules send at.
fn served_frequencies(config: &Config) -> Vec<crate::domain::Frequency> {
    config
        .digest
        .schedules
        .iter()
        .map(|s| s.frequency)
        .collect()
}

/// Readers' accounts, the sign-in throttle and signup, whose writer has a
/// store of its own (`Store::writer`).
async fn people(
    config: &Config,
    store: &Store,
    clock: &Clock,
    from: &Mailbox,
    suppression_key: &str,
    hasher: PasswordHasher,
) -> anyhow::Result<People> {
    let emails = Emails::new(&config.server.base_url, &message_id_domain(from));
    let accounts = Accounts::new(
        store.clone(),
        clock.clone(),
        emails.clone(),
        hasher,
        AccountSettings {
            reset_ttl: config.accounts.reset_token_ttl,
            sign_in_link_ttl: config.accounts.sign_in_link_ttl,
            session_idle: config.accounts.session_idle,
            session_absolute: config.accounts.session_absolute,
            max_link_emails_per_hour: config.accounts.max_link_emails_per_hour,
        },
    );
    let login_throttle = Arc::new(LoginThrottle::new(
        config.accounts.login_per_ip_per_minute,
        config.accounts.login_per_account_per_hour,
    ));
    let signup = Signup::new(
        store.clone(),
        store.writer(&config.database).await?,
        clock.clone(),
        emails,
        SignupSettings {
            suppression_key: suppression_key.as_bytes().to_vec(),
            confirm_ttl: config.signup.confirm_token_ttl,
            credentials_ttl: config.signup.credentials_token_ttl,
            max_confirmations_per_day: config.signup.max_confirmations_per_day,
        },
    );
    Ok(People {
        accounts,
        login_throttle,
        signup,
    })
}

/// How consent events keep the client's IP, and whom receipts name.
fn consent_settings(config: &Config) -> ConsentSettings {
    let privacy = &config.privacy;
    ConsentSettings {
        ip_mode: privacy.ip_mode,
        controller: Controller {
            name: privacy.controller_name.clone(),
            email: privacy.controller_email.clone(),
            address: privacy.controller_address.clone(),
            jurisdiction: privacy.jurisdiction.clone(),
            policy_url: format!("{}/privacy", config.server.base_url),
        },
    }
}
