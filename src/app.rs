//! Application state, start-up and shutdown: the app is a function of its
//! inputs (config, clock, listener, shutdown signal).

use std::{
    future::Future,
    net::{IpAddr, SocketAddr},
    num::NonZeroU32,
    sync::Arc,
};

use anyhow::Context;
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    accounts::{AccountSettings, Accounts, LoginThrottle, PasswordHasher},
    clock::Clock,
    config::Config,
    consent::{self, Wording},
    delivery::{Worker, WorkerSettings},
    digest::{Composer, DigestSettings, Previews},
    domain::LinkSigner,
    editors::Editors,
    emails::Emails,
    mail::{EmailTemplates, Transport, message_id_domain},
    signup::{Signup, SignupSettings},
    store::{self, Store},
    web::{self, Csrf, GuessThrottle, Pages},
};

/// Which parts of the service this process runs (`serve --role`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Role {
    /// HTTP only.
    Web,
    /// Delivery workers only.
    Worker,
    /// Both (the default).
    All,
}

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub clock: Clock,
    pub pages: Arc<Pages>,
    pub csrf: Csrf,
    pub signup: Signup,
    pub accounts: Accounts,
    pub editors: Editors,
    /// Renders previews and sends test digests for the console and the API.
    pub previews: Previews,
    pub newsletter_wording: Arc<Wording>,
    /// The current cookie banner; its id is the version every choice records (C-08).
    pub cookie_banner: Arc<Wording>,
    /// Signup, reset and sign-in-link requests per IP (D-10).
    pub email_request_limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Links and API tokens that match nothing, per IP (E-04).
    pub guesses: Arc<GuessThrottle>,
    /// Requests in flight per client network; `None`: no limit.
    pub in_flight: Option<Arc<web::InFlight>>,
    /// Signs and checks unsubscribe and preference links (E-04).
    pub links: LinkSigner,
    /// Keys the hashes of erased and suppressed addresses (G-13).
    pub suppression_key: Arc<[u8]>,
    /// The current privacy notice, rendered, and its version.
    pub privacy_notice: Arc<Wording>,
    /// API requests per token (`editors.api_requests_per_minute`).
    pub api_limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// Exports are heavy: at most this many at once (S-03).
    pub export_permits: Arc<tokio::sync::Semaphore>,
}

/// A started application: migrated storage, loaded templates, ready to serve.
pub struct App {
    state: AppState,
    worker: Worker,
}

impl App {
    /// Connects, migrates and loads everything; fails early on bad templates
    /// or an unreachable database.
    pub async fn build(config: Config, clock: Clock) -> anyhow::Result<Self> {
        // Before anything counts: events recorded earlier would be lost.
        crate::metrics::handle();
        let store = Store::connect(&config.database).await?;
        store.migrate().await?;
        // Parsed with the config; the digest sender falls back to it (E-13).
        let from = config.mail.from.clone();
        let templates = Arc::new(EmailTemplates::load(config.mail.templates_dir.as_deref())?);
        let transport = Transport::from_config(&config.mail, &config.smtp)?;
        let csrf_key = store::settings::secret(&store, "csrf_key").await?;
        let link_key = store::settings::secret(&store, "link_key").await?;
        let suppression_key = crate::privacy::suppression_key(&store, &config).await?;
        let privacy_notice = consent::register_wording(
            &store,
            &clock,
            consent::PRIVACY_NOTICE,
            &load_privacy_notice(config.privacy.notice_file.as_deref())?,
        )
        .await?;
        let newsletter_wording = consent::register_wording(
            &store,
            &clock,
            consent::NEWSLETTER,
            &config.signup.newsletter_consent_text,
        )
        .await?;
        let hasher = PasswordHasher::new(
            config.accounts.hashing_concurrency as usize,
            std::time::Duration::from_millis(config.accounts.hashing_max_wait_ms),
        )?;
        let editors = Editors::new(
            store.clone(),
            clock.clone(),
            hasher.clone(),
            config.editors.clone(),
        );
        let emails = Emails::new(&config.server.base_url, &message_id_domain(&from));
        let accounts = Accounts::new(
            store.clone(),
            clock.clone(),
            emails.clone(),
            hasher,
            AccountSettings {
                reset_ttl_min: config.accounts.reset_token_ttl_min,
                sign_in_link_ttl_min: config.accounts.sign_in_link_ttl_min,
                session_idle_h: config.accounts.session_idle_h,
                session_absolute_h: config.accounts.session_absolute_h,
                max_link_emails_per_hour: config.accounts.max_link_emails_per_hour,
            },
        );
        let login_throttle = Arc::new(LoginThrottle::new(
            config.accounts.login_per_ip_per_minute,
            config.accounts.login_per_account_per_hour,
        ));
        let cookie_banner = consent::register_wording(
            &store,
            &clock,
            consent::COOKIE_BANNER,
            &config.cookies.banner_text,
        )
        .await?;
        let signup = Signup::new(
            store.clone(),
            clock.clone(),
            emails,
            SignupSettings {
                suppression_key: suppression_key.as_bytes().to_vec(),
                confirm_ttl_h: config.signup.confirm_token_ttl_h,
                credentials_ttl_h: config.signup.credentials_token_ttl_h,
                max_confirmations_per_day: config.signup.max_confirmations_per_day,
            },
        );
        let dkim = crate::mail::dkim::load(&config.dkim)?.map(Arc::new);
        let composer = Arc::new(Composer::new(
            templates.clone(),
            DigestSettings {
                from: config.digest.from.clone().unwrap_or_else(|| from.clone()),
                list_id: config.digest.list_id.clone(),
                base_url: config.server.base_url.clone(),
                site_name: config.site.name.clone(),
                unsubscribe_mailto: config.digest.unsubscribe_mailto.clone(),
                links: LinkSigner::new(link_key.as_bytes()),
            },
            dkim.clone(),
            transport.eight_bit_mime(),
        ));
        let previews = Previews::new(
            store.clone(),
            clock.clone(),
            composer.clone(),
            transport.clone(),
        );
        let worker = Worker::new(
            store.for_delivery(&config.database).await?,
            clock.clone(),
            WorkerSettings {
                templates,
                transport,
                composer,
                from,
                dkim,
                config: config.delivery.clone(),
                concurrency: config.smtp.concurrency,
                rate_per_second: config.smtp.rate_per_second,
                send_timeout_s: config.smtp.timeout_s,
                signup_emails_per_hour: config.signup.emails_per_hour,
            },
        )
        .with_intake({
            let accounts = accounts.clone();
            Arc::new(move || {
                let accounts = accounts.clone();
                Box::pin(async move { accounts.email_requested_links().await })
            })
        });
        let email_request_limiter = NonZeroU32::new(config.signup.per_ip_per_hour)
            .map(|n| Arc::new(RateLimiter::keyed(Quota::per_hour(n))));
        let api_limiter = NonZeroU32::new(config.editors.api_requests_per_minute)
            .map(|n| Arc::new(RateLimiter::keyed(Quota::per_minute(n))));
        let guesses = Arc::new(GuessThrottle::new(
            config.server.token_misses_per_ip_per_hour,
        ));
        let in_flight = web::InFlight::new(config.server.max_in_flight_per_client);
        let state = AppState {
            pages: Arc::new(Pages::load(&config.site.name, &config.cookies.banner_text)?),
            csrf: Csrf::new(csrf_key.as_bytes(), config.server.is_https()),
            config: Arc::new(config),
            store,
            clock,
            signup,
            accounts,
            editors,
            previews,
            newsletter_wording: Arc::new(newsletter_wording),
            cookie_banner: Arc::new(cookie_banner),
            email_request_limiter,
            login_throttle,
            guesses,
            in_flight,
            links: LinkSigner::new(link_key.as_bytes()),
            suppression_key: suppression_key.as_bytes().into(),
            privacy_notice: Arc::new(privacy_notice),
            api_limiter,
            export_permits: Arc::new(tokio::sync::Semaphore::new(2)),
        };
        Ok(Self { state, worker })
    }

    pub fn router(&self) -> axum::Router {
        web::router(self.state.clone())
    }

    /// A handle on the delivery worker, e.g. for tests that drain the queue.
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// Previews of the next digests, for the CLI and the render bench.
    pub fn previews(&self) -> Previews {
        self.state.previews.clone()
    }

    pub fn store(&self) -> Store {
        self.state.store.clone()
    }

    /// The signer of unsubscribe and preference links, e.g. for tests.
    pub fn links(&self) -> LinkSigner {
        self.state.links.clone()
    }

    /// Serves until `shutdown` resolves, then stops accepting, finishes
    /// requests and in-flight sends, hands back unsent leases and returns.
    pub async fn run(
        self,
        listener: Option<TcpListener>,
        role: Role,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let mut scheduler = match role {
            Role::Web => None,
            _ => Some(
                crate::scheduler::start(
                    self.state.store.clone(),
                    self.state.clock.clone(),
                    self.state.config.clone(),
                )
                .await?,
            ),
        };
        let stop_workers = CancellationToken::new();
        let worker = (role != Role::Web)
            .then(|| tokio::spawn(self.worker.clone().run(stop_workers.clone())));
        let limiter_sweeper = self.spawn_limiter_sweeper();
        let metrics_server = self.spawn_metrics_server().await?;
        match (role, listener) {
            (Role::Worker, _) | (_, None) => shutdown.await,
            (_, Some(listener)) => {
                tracing::info!(address = %listener.local_addr()?, "serving");
                axum::serve(
                    listener,
                    self.router()
                        .into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(shutdown)
                .await
                .context("while serving HTTP")?;
            }
        }
        stop_workers.cancel();
        if let Some(scheduler) = scheduler.as_mut() {
            scheduler
                .shutdown()
                .await
                .context("while stopping the scheduler")?;
        }
        if let Some(worker) = worker {
            worker.await.context("delivery worker panicked")?;
        }
        limiter_sweeper.abort();
        if let Some(server) = metrics_server {
            server.abort();
        }
        self.state.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

impl App {
    /// Serves `/metrics` on `server.metrics_bind`, if set.
    async fn spawn_metrics_server(&self) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(bind) = self.state.config.server.metrics_bind else {
            return Ok(None);
        };
        // Several processes on one machine may share a config (`--role web`
        // and `--role worker`): the first serves the metrics, the others warn.
        let listener = match TcpListener::bind(bind).await {
            Ok(listener) => listener,
            Err(error) => {
                tracing::warn!(%error, %bind, "server.metrics_bind is taken; this process serves no metrics");
                return Ok(None);
            }
        };
        let router = web::metrics_router(self.state.clone());
        Ok(Some(tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, router).await {
                tracing::error!(%error, "the metrics server stopped");
            }
        })))
    }

    /// Rate-limit tables forget idle keys every minute, so they cannot grow
    /// without bound; metrics fold their samples every 5 s.
    fn spawn_limiter_sweeper(&self) -> tokio::task::JoinHandle<()> {
        let email_requests = self.state.email_request_limiter.clone();
        let api_requests = self.state.api_limiter.clone();
        let logins = self.state.login_throttle.clone();
        let guesses = self.state.guesses.clone();
        tokio::spawn(async move {
            for tick in 1u64.. {
                tokio::time::sleep(std::time::Duration::from_secs(5)).await;
                crate::metrics::upkeep();
                if tick % 12 != 0 {
                    continue;
                }
                if let Some(limiter) = &email_requests {
                    limiter.retain_recent();
                }
                if let Some(limiter) = &api_requests {
                    limiter.retain_recent();
                }
                logins.forget_idle();
                guesses.forget_idle();
            }
        })
    }
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

/// Resolves on Ctrl-C or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(error) = tokio::signal::ctrl_c().await {
            tracing::error!(%error, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
    tracing::info!("shutting down");
}
