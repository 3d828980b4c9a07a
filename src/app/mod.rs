//! Start-up and shutdown: the app is a function of its inputs (config,
//! clock, listener, shutdown signal). What handlers share is
//! `web::AppState`, built here with the features' services.

mod build;
mod services;
mod startup;

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{
    clock::Clock,
    config::Config,
    delivery::Worker,
    digest::Previews,
    domain::LinkSigner,
    feedback::BounceMailbox,
    store::Store,
    web::{self, AppState},
    webhooks::WebhookSender,
};

pub use startup::StartupSummary;

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

/// A started application: migrated storage, loaded templates, ready to serve.
pub struct App {
    state: AppState,
    worker: Worker,
    webhooks: WebhookSender,
    /// For the scheduler and the metrics listener.
    config: Arc<Config>,
    store: Store,
    clock: Clock,
    /// Read by the scheduler, when one is configured.
    bounce_mailbox: Option<BounceMailbox>,
}

impl App {
    pub fn router(&self) -> axum::Router {
        web::router(self.state.clone())
    }

    /// A handle on the delivery worker, e.g. for tests that drain the queue.
    pub fn worker(&self) -> Worker {
        self.worker.clone()
    }

    /// A handle on the webhook sender, e.g. for tests that send what is due.
    pub fn webhook_sender(&self) -> WebhookSender {
        self.webhooks.clone()
    }

    /// Previews of the next digests, for the CLI and the render bench.
    pub fn previews(&self) -> Previews {
        self.state.previews.clone()
    }

    pub fn store(&self) -> Store {
        self.store.clone()
    }

    /// The signer of unsubscribe and preference links, e.g. for tests.
    pub fn links(&self) -> LinkSigner {
        self.state.links.clone()
    }

    /// The signup service, e.g. for tests that sign readers up beside the site.
    pub fn signup(&self) -> crate::signup::Signup {
        self.state.signup.clone()
    }

    /// Where bounces and complaints are applied, e.g. for tests.
    pub fn feedbacks(&self) -> crate::feedback::Feedbacks {
        self.state.feedbacks.clone()
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
                    self.store.clone(),
                    self.clock.clone(),
                    self.config.clone(),
                    self.bounce_mailbox.clone(),
                )
                .await?,
            ),
        };
        let stop_workers = CancellationToken::new();
        let worker = (role != Role::Web)
            .then(|| tokio::spawn(self.worker.clone().run(stop_workers.clone())));
        let webhooks = (role != Role::Web)
            .then(|| tokio::spawn(self.webhooks.clone().run(stop_workers.clone())));
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
            scheduler.shutdown().await?;
        }
        if let Some(worker) = worker {
            worker.await.context("delivery worker panicked")?;
        }
        if let Some(webhooks) = webhooks {
            webhooks.await.context("webhook sender panicked")?;
        }
        limiter_sweeper.abort();
        if let Some(server) = metrics_server {
            server.abort();
        }
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

impl App {
    /// Serves `/metrics` on `server.metrics_bind`, if set.
    async fn spawn_metrics_server(&self) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
        let Some(bind) = self.config.server.metrics_bind else {
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
