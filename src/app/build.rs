//! `App::build`: everything the app needs, made from the config, one area
//! at a time (storage, mail, keys, wordings, features, the delivery worker,
//! the web state), failing early on anything that cannot work.

use std::{num::NonZeroU32, sync::Arc};

use anyhow::Context;
use governor::{Quota, RateLimiter};
use lettre::message::{Mailbox, dkim::DkimConfig};

use super::{App, services::Services};
use crate::{
    clock::Clock,
    config::Config,
    consent::{self, Wording},
    delivery::{Worker, WorkerSettings},
    digest::{Composer, DigestSettings, Previews},
    domain::{LinkSigner, ReturnPathSigner},
    feedback::BounceMailbox,
    mail::{EmailTemplates, ProviderTags, ReturnPaths, Transport},
    store::{self, Store},
    web::{AppState, Csrf, GuessThrottle, InFlight, Pages, WebSettings},
    webhooks::WebhookSender,
};

/// How mail goes out: the sender, the templates, the transport, the
/// DKIM key, and how digests are composed with them.
struct MailParts {
    from: Mailbox,
    templates: Arc<EmailTemplates>,
    transport: Transport,
    dkim: Option<Arc<DkimConfig>>,
    composer: Arc<Composer>,
    return_paths: ReturnPaths,
}

/// The secrets kept in the database, or beside it for the suppression key.
struct Keys {
    csrf: String,
    link: String,
    suppression: String,
}

/// The wording versions every consent records.
struct Wordings {
    privacy_notice: Wording,
    newsletter: Wording,
    cookie_banner: Wording,
}

impl App {
    /// Connects, migrates and loads everything; fails early on bad templates
    /// or an unreachable database.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // Before anything counts: events recorded earlier would be lost.
        crate::metrics::handle();
        let store = Store::connect(&config.database).await?;
        store.migrate().await?;
        let keys = load_keys(&store, &config).await?;
        let mail = load_mail(&config, &keys, &clock)?;
        let tags = ReturnPathSigner::new(keys.link.as_bytes());
        let mut services =
            Services::build(&config, &store, &clock, &mail.from, &keys.suppression, tags).await?;
        services.digests = services
            .digests
            .with_sending(mail.transport.relays(), config.delivery.warmup.clone());
        let wordings = register_wordings(&store, &clock, &config).await?;
        let previews = Previews::new(
            store.clone(),
            clock.clone(),
            mail.composer.clone(),
            mail.transport.clone(),
        );
        let worker = build_worker(&config, &store, &clock, mail, &services).await?;
        let webhooks =
            WebhookSender::new(&store, &clock, &config.outgoing_webhooks, &config.delivery)?;
        let bounce_mailbox = BounceMailbox::new(
            &config.bounces.imap,
            store.clone(),
            clock.clone(),
            services.feedbacks.clone(),
        )?;
        let state = web_state(&config, services, wordings, &keys, previews)?;
        Ok(Self {
            state,
            worker,
            webhooks,
            config: Arc::new(config),
            store,
            clock,
            bounce_mailbox,
        })
    }
}

/// The wording versions every consent records, registered once each.
async fn register_wordings(
    store: &Store,
    clock: &Clock,
    config: &Config,
) -> anyhow::Result<Wordings> {
    let notice = load_privacy_notice(config.privacy.notice_file.as_deref())?;
    let register = |name, text| consent::register_wording(store, clock, name, text);
    Ok(Wordings {
        privacy_notice: register(consent::PRIVACY_NOTICE, &notice).await?,
        newsletter: register(consent::NEWSLETTER, &config.signup.newsletter_consent_text).await?,
        cookie_banner: register(consent::COOKIE_BANNER, &config.cookies.banner_text).await?,
    })
}

/// The sender, the email templates, the transport and the DKIM key: fails
/// on a template that does not compile, an unusable transport or key.
fn load_mail(config: &Config, keys: &Keys, clock: &Clock) -> anyhow::Result<MailParts> {
    // Parsed with the config; the digest sender falls back to it (E-13).
    let from = config.mail.from.clone();
    let templates = Arc::new(EmailTemplates::load(config.mail.templates_dir.as_deref())?);
    let transport = Transport::from_config(&config.mail, &config.smtp, clock.clone())?;
    let dkim = crate::mail::dkim::load(&config.dkim)?.map(Arc::new);
    let return_paths = ReturnPaths {
        return_path: config.bounces.return_path.clone(),
        tags: ReturnPathSigner::new(keys.link.as_bytes()),
        providers: ProviderTags {
            postmark: !config.webhooks.postmark_password.is_empty(),
            sendgrid: !config.webhooks.sendgrid_public_key.trim().is_empty(),
        },
    };
    let digests = DigestSettings {
        from: config.digest.from.clone().unwrap_or_else(|| from.clone()),
        list_id: config.digest.list_id.clone(),
        base_url: config.server.base_url.clone(),
        site_name: config.site.name.clone(),
        unsubscribe_mailto: config.digest.unsubscribe_mailto.clone(),
        links: LinkSigner::new(keys.link.as_bytes()),
        return_paths: return_paths.clone(),
    };
    let composer = Composer::new(templates.clone(), digests, dkim.clone(), transport.clone());
    Ok(MailParts {
        from,
        templates,
        transport,
        dkim,
        composer: Arc::new(composer),
        return_paths,
    })
}

/// The CSRF and link keys (made on first start) and the suppression key.
async fn load_keys(store: &Store, config: &Config) -> anyhow::Result<Keys> {
    let csrf = store::settings::secret(store, "csrf_key").await?;
    let link = store::settings::secret(store, "link_key").await?;
    let suppression = crate::privacy::suppression_key(store, config).await?;
    let moved = crate::privacy::move_legacy_suppressions(store, suppression.as_bytes()).await?;
    if moved > 0 {
        tracing::info!(moved, "suppressed readers moved onto the suppression list");
    }
    Ok(Keys {
        csrf,
        link,
        suppression,
    })
}

/// The delivery worker, on connections of its own, with the intake that
/// turns readers' reset and sign-in-link requests into emails.
async fn build_worker(
    config: &Config,
    store: &Store,
    clock: &Clock,
    mail: MailParts,
    services: &Services,
) -> anyhow::Result<Worker> {
    let MailParts {
        from,
        templates,
        transport,
        dkim,
        composer,
        return_paths,
    } = mail;
    let worker = Worker::new(
        store.writer(&config.database).await?,
        clock.clone(),
        WorkerSettings {
            templates,
            transport,
            composer,
            from,
            dkim,
            config: config.delivery.clone(),
            send_timeout: config.smtp.timeout,
            signup_emails_per_hour: config.signup.emails_per_hour,
            return_paths,
        },
    )
    .with_refusals({
        let feedbacks = services.feedbacks.clone();
        Arc::new(move |report| {
            let feedbacks = feedbacks.clone();
            Box::pin(async move { feedbacks.apply(&report).await.map(drop) })
        })
    })
    .with_intake({
        let accounts = services.accounts.clone();
        Arc::new(move || {
            let accounts = accounts.clone();
            Box::pin(async move { accounts.email_requested_links().await })
        })
    });
    Ok(worker)
}

/// What handlers share: the services, the pages, the per-client limits.
fn web_state(
    config: &Config,
    services: Services,
    wordings: Wordings,
    keys: &Keys,
    previews: Previews,
) -> anyhow::Result<AppState> {
    let settings = WebSettings::from_config(config);
    let email_request_limiter = NonZeroU32::new(config.signup.per_ip_per_hour)
        .map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n))));
    let api_limiter = NonZeroU32::new(config.editors.api_requests_per_minute)
        .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))));
    let guesses = Arc::new(GuessThrottle::new(
        config.server.token_misses_per_ip_per_hour,
    ));
    let in_flight = InFlight::new(config.server.max_in_flight_per_client);
    Ok(AppState {
        pages: Arc::new(Pages::load(&config.site.name, &config.cookies.banner_text)?),
        csrf: Csrf::new(keys.csrf.as_bytes(), settings.is_https),
        settings: Arc::new(settings),
        signup: services.signup,
        accounts: services.accounts,
        editors: services.editors,
        tokens: services.tokens,
        articles: services.articles,
        consent: services.consent,
        digests: services.digests,
        previews,
        feeds: services.feeds,
        preferences: services.preferences,
        privacy: services.privacy,
        readers: services.readers,
        stats: services.stats,
        idempotency: services.idempotency,
        health: services.health,
        feedbacks: services.feedbacks,
        webhooks: services.webhooks,
        suppressions: services.suppressions,
        webhook_endpoints: services.webhook_endpoints,
        newsletter_wording: Arc::new(wordings.newsletter),
        cookie_banner: Arc::new(wordings.cookie_banner),
        email_request_limiter,
        login_throttle: services.login_throttle,
        guesses,
        in_flight,
        links: LinkSigner::new(keys.link.as_bytes()),
        privacy_notice: Arc::new(wordings.privacy_notice),
        api_limiter,
        export_permits: Arc::new(tokio::sync::Semaphore::new(2)),
    })
}

/// The privacy notice's Markdown: the configured file, or the built-in one.
fn load_privacy_notice(file: Option<&std::path::Path>) -> anyhow::Result<String> {
    match file {
        Some(path) => std::fs::read_to_string(path)
            .with_context(|| format!("cannot read privacy.notice_file {}", path.display())),
        None => Ok(crate::assets::WEB_TEMPLATES
            .iter()
            .find(|(name, _)| *name == "privacy_notice.md")
            .map(|(_, text)| (*text).to_owned())
            .unwrap_or_default()),
    }
}
