//! One SMTP relay: how it is spoken to (`Link`: our pool, or lettre's
//! for implicit TLS), its connections, its token bucket, its circuit
//! breaker and its figures; and the `Pass` that lets one message through it.

use std::{
    num::NonZeroU32,
    sync::{
        Arc, Mutex, MutexGuard,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::Context;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use lettre::{
    AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor,
    transport::smtp::{
        PoolConfig,
        authentication::Credentials,
        client::{Certificate, Tls, TlsParameters},
    },
};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{
    SendError,
    breaker::{Breaker, BreakerState},
    smtp_pool::{RelayError, SmtpPool, classify},
};
use crate::{
    clock::Clock,
    config::{BreakerConfig, RelayConfig, RelayRole, SmtpTls},
};

/// One relay's figures since start, for the console.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RelayStatus {
    pub name: String,
    pub role: &'static str,
    pub weight: u32,
    /// `closed`, `open` or `probing`, as in `/metrics`.
    pub state: &'static str,
    pub state_words: &'static str,
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// Messages per second over the last complete ten seconds.
    pub rate: f64,
}

pub(super) struct Relay {
    pub name: Arc<str>,
    pub role: RelayRole,
    pub weight: i64,
    /// 0 for unlimited.
    pub rate_per_second: u32,
    pub connections: usize,
    pub permits: Arc<Semaphore>,
    pub limiter: Option<DefaultDirectRateLimiter>,
    link: Link,
    breaker: Mutex<Breaker>,
    /// Messages sent, deferred and failed since start, by [`Tally`]; the
    /// same in `/metrics`, registered once.
    tallies: [AtomicU64; 3],
    counters: [metrics::Counter; 3],
    meter: Mutex<RateMeter>,
}

/// What one attempt through a relay counts as.
#[derive(Debug, Clone, Copy)]
enum Tally {
    Sent,
    Deferred,
    Failed,
}

const TALLIES: [&str; 3] = ["sent", "deferred", "failed"];

impl Relay {
    pub fn new(
        config: &RelayConfig,
        timeout: Duration,
        breaker: BreakerConfig,
    ) -> anyhow::Result<Self> {
        let connections = config.concurrency.max(1) as usize;
        let name: Arc<str> = Arc::from(config.name.as_str());
        crate::metrics::relay_state(&name, BreakerState::Closed.as_str());
        let counters = TALLIES.map(|tally| crate::metrics::relay_messages(&name, tally));
        Ok(Self {
            counters,
            name,
            role: config.role,
            weight: i64::from(config.weight.max(1)),
            rate_per_second: config.rate_per_second,
            connections,
            permits: Arc::new(Semaphore::new(connections)),
            limiter: NonZeroU32::new(config.rate_per_second)
                .map(|rate| RateLimiter::direct(Quota::per_second(rate))),
            link: Link::from_config(config, timeout)?,
            breaker: Mutex::new(Breaker::new(breaker)),
            tallies: Default::default(),
            meter: Mutex::new(RateMeter::new(Instant::now())),
        })
    }

    fn count(&self, tally: Tally) {
        self.tallies[tally as usize].fetch_add(1, Ordering::Relaxed);
        self.counters[tally as usize].increment(1);
        if let Tally::Sent = tally {
            self.meter.lock().expect("meter lock").add(Instant::now());
        }
    }

    pub fn breaker(&self) -> MutexGuard<'_, Breaker> {
        self.breaker.lock().expect("breaker lock")
    }

    pub fn eight_bit_mime(&self) -> bool {
        self.link.eight_bit_mime()
    }

    pub async fn send(&self, message: &Message) -> Result<(), RelayError> {
        self.link.send(message).await
    }

    pub fn status(&self) -> RelayStatus {
        let state = self.breaker().state();
        RelayStatus {
            name: self.name.to_string(),
            role: match self.role {
                RelayRole::Primary => "primary",
                RelayRole::Overflow => "overflow",
                RelayRole::Fallback => "fallback",
            },
            weight: u32::try_from(self.weight).unwrap_or(u32::MAX),
            state: state.as_str(),
            state_words: state.in_words(),
            sent: self.tallies[Tally::Sent as usize].load(Ordering::Relaxed),
            deferred: self.tallies[Tally::Deferred as usize].load(Ordering::Relaxed),
            failed: self.tallies[Tally::Failed as usize].load(Ordering::Relaxed),
            rate: self.meter.lock().expect("meter lock").rate(Instant::now()),
        }
    }
}

/// What one attempt through a relay came to.
pub(super) struct Verdict {
    pub result: Result<(), SendError>,
    /// The relay left the message with us: another may try it now.
    pub failover: bool,
    /// The receiving domain's policy deferred it (4.7.x).
    pub domain_deferred: bool,
}

impl Verdict {
    fn new(result: Result<(), SendError>) -> Self {
        Self {
            result,
            failover: false,
            domain_deferred: false,
        }
    }
}

/// Leave to send one message through one relay: a connection permit,
/// a token of its rate, and the breaker's consent. Dropped unused, a
/// probe's place is given back.
pub(super) struct Pass<'a> {
    clock: &'a Clock,
    pub relay: &'a Relay,
    probe: bool,
    used: bool,
    _permit: OwnedSemaphorePermit,
}

impl<'a> Pass<'a> {
    pub fn new(
        clock: &'a Clock,
        relay: &'a Relay,
        probe: bool,
        permit: OwnedSemaphorePermit,
    ) -> Self {
        Self {
            clock,
            relay,
            probe,
            used: false,
            _permit: permit,
        }
    }

    /// Counts the attempt, tells the breaker, and says whether another
    /// relay may try the message now.
    pub fn record(&mut self, sent: Result<(), RelayError>) -> Verdict {
        self.used = true;
        let relay = self.relay;
        // Refused, or deferred by the recipient's side: the relay answered.
        let relay_failed = matches!(sent, Err(RelayError::NotTaken(_) | RelayError::Unsure(_)));
        let (verdict, tally) = match sent {
            Ok(()) => (Verdict::new(Ok(())), Tally::Sent),
            Err(RelayError::Refused(error)) => (
                Verdict::new(Err(SendError::Permanent(error))),
                Tally::Failed,
            ),
            Err(RelayError::RecipientDeferred { text, policy }) => {
                let verdict = Verdict {
                    domain_deferred: policy,
                    ..Verdict::new(Err(SendError::Transient(text)))
                };
                (verdict, Tally::Deferred)
            }
            Err(RelayError::NotTaken(error)) => {
                let verdict = Verdict {
                    failover: true,
                    ..Verdict::new(Err(SendError::Transient(error)))
                };
                (verdict, Tally::Deferred)
            }
            Err(RelayError::Unsure(error)) => (
                Verdict::new(Err(SendError::Transient(error))),
                Tally::Deferred,
            ),
        };
        relay.count(tally);
        let (before, after) = {
            let mut breaker = relay.breaker();
            let before = breaker.state();
            if relay_failed {
                breaker.failed(self.clock.now_ms(), self.probe);
            } else {
                breaker.succeeded();
            }
            (before, breaker.state())
        };
        if before != after {
            crate::metrics::relay_state(&relay.name, after.as_str());
            match after {
                BreakerState::Open => {
                    tracing::warn!(relay = %relay.name, "SMTP relay taken out of rotation");
                }
                BreakerState::Closed => {
                    tracing::info!(relay = %relay.name, "SMTP relay back in rotation");
                }
                BreakerState::Probing => {}
            }
        }
        verdict
    }
}

impl Drop for Pass<'_> {
    fn drop(&mut self) {
        if self.probe && !self.used {
            self.relay.breaker().abandoned(self.clock.now_ms());
        }
    }
}

/// Messages per second over the last complete window.
struct RateMeter {
    window_start: Instant,
    count: u64,
    last_rate: f64,
}

const RATE_WINDOW: Duration = Duration::from_secs(10);

impl RateMeter {
    fn new(now: Instant) -> Self {
        Self {
            window_start: now,
            count: 0,
            last_rate: 0.0,
        }
    }

    fn roll(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.window_start);
        if elapsed >= RATE_WINDOW {
            // A window with nothing after it is followed by idle ones.
            self.last_rate = if elapsed >= RATE_WINDOW * 2 {
                0.0
            } else {
                self.count as f64 / RATE_WINDOW.as_secs_f64()
            };
            self.window_start = now;
            self.count = 0;
        }
    }

    fn add(&mut self, now: Instant) {
        self.roll(now);
        self.count += 1;
    }

    fn rate(&mut self, now: Instant) -> f64 {
        self.roll(now);
        self.last_rate
    }
}

/// How one relay is spoken to.
pub(super) enum Link {
    /// Plain or STARTTLS: our pool of no-delay connections (see `smtp_pool`).
    Pooled(Box<SmtpPool>),
    /// Implicit TLS: lettre's pooled transport.
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
}

impl Link {
    pub fn from_config(relay: &RelayConfig, timeout: Duration) -> anyhow::Result<Self> {
        let tls = match relay.tls {
            SmtpTls::None => None,
            SmtpTls::Starttls | SmtpTls::Tls => Some(tls_parameters(relay)?),
        };
        Ok(match (relay.tls, tls) {
            (SmtpTls::Tls, Some(tls)) => Self::Smtp(smtp_transport(relay, timeout, tls)),
            (_, tls) => Self::Pooled(Box::new(SmtpPool::new(relay, timeout, tls))),
        })
    }

    /// Whether the server took 8-bit bodies; lettre's own transport does not say.
    pub fn eight_bit_mime(&self) -> bool {
        match self {
            Self::Pooled(pool) => pool.eight_bit_mime(),
            Self::Smtp(_) => false,
        }
    }

    pub async fn send(&self, message: &Message) -> Result<(), RelayError> {
        match self {
            Self::Pooled(pool) => pool.send(message).await,
            Self::Smtp(smtp) => smtp
                .send(message.clone())
                .await
                .map(drop)
                .map_err(|error| classify(&error)),
        }
    }
}

/// Implicit TLS (SMTPS, usually port 465), through lettre's own pool.
fn smtp_transport(
    smtp: &RelayConfig,
    timeout: Duration,
    tls: TlsParameters,
) -> AsyncSmtpTransport<Tokio1Executor> {
    let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
        .tls(Tls::Wrapper(tls))
        .port(smtp.port)
        .timeout(Some(timeout))
        .pool_config(PoolConfig::new().max_size(smtp.concurrency));
    if !smtp.username.is_empty() {
        builder = builder.credentials(Credentials::new(
            smtp.username.clone(),
            smtp.password.expose().to_owned(),
        ));
    }
    builder.build()
}

/// The server's certificate must be valid for the relay's host and signed
/// by a public authority or by one in its `ca_file`.
fn tls_parameters(smtp: &RelayConfig) -> anyhow::Result<TlsParameters> {
    let mut builder = TlsParameters::builder(smtp.host.clone());
    if !smtp.ca_file.as_os_str().is_empty() {
        let path = smtp.ca_file.display();
        let pem = std::fs::read(&smtp.ca_file)
            .with_context(|| format!("cannot read smtp.ca_file {path}"))?;
        // The parser takes a file without a certificate as an empty list.
        let holds_one = pem.windows(27).any(|w| w == b"-----BEGIN CERTIFICATE-----");
        let certificate = Certificate::from_pem(&pem)
            .ok()
            .filter(|_| holds_one)
            .with_context(|| format!("smtp.ca_file {path} holds no PEM certificate"))?;
        builder = builder.add_root_certificate(certificate);
    }
    builder
        .build_rustls()
        .with_context(|| format!("cannot set up TLS for smtp.host {}", smtp.host))
}
