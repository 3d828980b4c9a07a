//! What every handler shares: the web settings, the features' services, the
//! page templates and the per-client limits. Built by `App::build`.

use std::{net::IpAddr, sync::Arc};

use governor::DefaultKeyedRateLimiter;

use super::{
    csrf::Csrf, guesses::GuessThrottle, in_flight::InFlight, pages::Pages, settings::WebSettings,
};
use crate::{
    accounts::{Accounts, LoginThrottle},
    articles::Articles,
    consent::{Consent, Wording},
    digest::{Digests, Previews},
    domain::LinkSigner,
    editors::{Editors, Tokens},
    feedback::{Feedbacks, Suppressions, Webhooks},
    feeds::Feeds,
    health::Health,
    idempotency::Idempotency,
    preferences::Preferences,
    privacy::Privacy,
    readers::Readers,
    signup::Signup,
    stats::Stats,
    webhook_endpoints::WebhookEndpoints,
};

/// What handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<WebSettings>,
    pub pages: Arc<Pages>,
    pub csrf: Csrf,
    pub signup: Signup,
    pub accounts: Accounts,
    pub editors: Editors,
    /// API tokens: the API's callers.
    pub tokens: Tokens,
    pub articles: Articles,
    pub consent: Consent,
    pub digests: Digests,
    /// Renders previews and sends test digests for the console and the API.
    pub previews: Previews,
    pub feeds: Feeds,
    pub preferences: Preferences,
    /// A reader's own export and erasure.
    pub privacy: Privacy,
    /// Readers as editors see them.
    pub readers: Readers,
    pub stats: Stats,
    /// Answers kept for the API's `Idempotency-Key`.
    pub idempotency: Idempotency,
    /// The readiness probe and the metrics scrape.
    pub health: Health,
    /// Bounces and complaints, and providers' webhooks that bring them.
    pub feedbacks: Feedbacks,
    pub webhooks: Webhooks,
    /// The suppression list as admins manage it, each change audited.
    pub suppressions: Suppressions,
    /// Where outgoing webhooks go, as admins manage them.
    pub webhook_endpoints: WebhookEndpoints,
    pub newsletter_wording: Arc<Wording>,
    /// The current cookie banner; its id is the version every choice records (C-08).
    pub cookie_banner: Arc<Wording>,
    /// Signup, reset and sign-in-link requests per IP (D-10).
    pub email_request_limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    pub login_throttle: Arc<LoginThrottle>,
    /// Links and API tokens that match nothing, per IP (E-04).
    pub guesses: Arc<GuessThrottle>,
    /// Requests in flight per client network; `None`: no limit.
    pub in_flight: Option<Arc<InFlight>>,
    /// Signs and checks unsubscribe and preference links (E-04).
    pub links: LinkSigner,
    /// The current privacy notice, rendered, and its version.
    pub privacy_notice: Arc<Wording>,
    /// API requests per token (`editors.api_requests_per_minute`).
    pub api_limiter: Option<Arc<DefaultKeyedRateLimiter<String>>>,
    /// Exports are heavy: at most this many at once (S-03).
    pub export_permits: Arc<tokio::sync::Semaphore>,
}
