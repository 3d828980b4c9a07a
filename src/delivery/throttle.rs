//! Which claimed digests may go now: receiving domains' limits per minute
//! (`[[delivery.domain_limits]]`), domains that deferred our mail, and the
//! warm-up's daily ceiling (`[delivery.warmup]`). The counts live in the
//! database (`store::send_budgets`), so they hold over every relay and
//! every instance on it. What may not go now is handed back, due when it
//! may, without counting as an attempt; the campaign's other readers go on.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicI64, Ordering},
    },
    time::Duration,
};

use tokio::sync::Semaphore;

use crate::{
    clock,
    config::{DeliveryConfig, DomainLimit, WarmupConfig},
    store::{Store, send_budgets},
};

const MINUTE_MS: i64 = 60_000;
const DAY_MS: i64 = 24 * 3_600_000;
const WARMUP: &str = "warmup";

/// The start of the minute, or of the UTC day, that `now` falls in.
fn minute_of(now: i64) -> i64 {
    now - now.rem_euclid(MINUTE_MS)
}
fn day_of(now: i64) -> i64 {
    now - now.rem_euclid(DAY_MS)
}

/// Why a claimed digest waits, and until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hold {
    pub until: i64,
    pub why: String,
}

pub(super) struct Throttles {
    limits: HashMap<String, DomainLimit>,
    /// The limited domains' names, shared by the figures that name them.
    names: HashMap<String, Arc<str>>,
    /// Digests in flight per limited domain, on this instance.
    in_flight: HashMap<String, Arc<Semaphore>>,
    warmup: WarmupConfig,
    hold_after_deferral: Duration,
    /// When budgets of past periods were last forgotten.
    last_purge: AtomicI64,
}

/// The warm-up's day as of `now`: digests let through so far over every
/// instance, and the day's ceiling; `None` without a warm-up in force.
pub async fn warmup_today(
    store: &Store,
    warmup: &WarmupConfig,
    now: i64,
) -> anyhow::Result<Option<(i64, u32)>> {
    let Some(ceiling) = warmup.ceiling_at(now) else {
        return Ok(None);
    };
    let used = send_budgets::used(store, WARMUP, day_of(now)).await?;
    Ok(Some((used, ceiling)))
}

/// The part of an address after its last `@`.
pub(super) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or("", |(_, domain)| domain)
}

impl Throttles {
    pub fn new(config: &DeliveryConfig) -> Self {
        let limits: HashMap<String, DomainLimit> = config
            .domain_limits
            .iter()
            .map(|limit| (limit.domain.clone(), limit.clone()))
            .collect();
        let in_flight = limits
            .values()
            .filter(|limit| limit.connections > 0)
            .map(|limit| {
                let permits = Semaphore::new(limit.connections as usize);
                (limit.domain.clone(), Arc::new(permits))
            })
            .collect();
        let names = limits
            .keys()
            .map(|d| (d.clone(), Arc::from(d.as_str())))
            .collect();
        Self {
            limits,
            names,
            in_flight,
            warmup: config.warmup.clone(),
            hold_after_deferral: config.domain_hold,
            last_purge: AtomicI64::new(0),
        }
    }

    /// A domain whose figures are kept by name (one that has limits).
    pub fn is_limited(&self, domain: &str) -> bool {
        self.limits.contains_key(domain)
    }

    /// The domain's shared name, if it has limits (its figures are kept).
    pub fn limited(&self, domain: &str) -> Option<Arc<str>> {
        self.names.get(domain).cloned()
    }

    /// The domain's in-flight permits, if it has a connection limit.
    pub fn in_flight(&self, domain: &str) -> Option<&Arc<Semaphore>> {
        self.in_flight.get(domain)
    }

    /// For each claimed digest (by its reader's domain; `None` for one that
    /// will not be sent anyway), `None` if it may go now, or why it waits.
    pub async fn admit(
        &self,
        store: &Store,
        domains: &[Option<&str>],
        now: i64,
    ) -> anyhow::Result<Vec<Option<Hold>>> {
        let mut holds: Vec<Option<Hold>> = vec![None; domains.len()];
        // Holds are only ever set for listed domains: with no limits and
        // no warm-up, the claim costs no statement more.
        if self.limits.is_empty() && self.warmup.start.is_none() {
            return Ok(holds);
        }
        self.forget_old_budgets(store, now).await?;
        for (domain, until, reason) in send_budgets::held_domains(store, now).await? {
            let why = format!("{domain} deferred our mail ({reason})");
            for (i, _) in domains
                .iter()
                .enumerate()
                .filter(|(_, d)| **d == Some(&domain))
            {
                holds[i] = Some(Hold {
                    until,
                    why: why.clone(),
                });
            }
        }
        let reserved = self.per_minute(store, domains, &mut holds, now).await?;
        self.daily(store, domains, &mut holds, &reserved, now)
            .await?;
        Ok(holds)
    }

    /// Each limited domain's share of this minute: the rest waits for the
    /// next. Returns what each domain reserved, by index.
    async fn per_minute(
        &self,
        store: &Store,
        domains: &[Option<&str>],
        holds: &mut [Option<Hold>],
        now: i64,
    ) -> anyhow::Result<HashMap<usize, String>> {
        let minute = minute_of(now);
        let mut by_domain: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, domain) in domains.iter().enumerate() {
            if let Some(domain) = domain
                && holds[i].is_none()
                && self.limits.get(*domain).is_some_and(|l| l.per_minute > 0)
            {
                by_domain.entry(domain).or_default().push(i);
            }
        }
        let mut reserved = HashMap::new();
        for (domain, indices) in by_domain {
            let limit = &self.limits[domain];
            let scope = format!("domain:{domain}");
            let wanted = i64::try_from(indices.len())?;
            let per_minute = i64::from(limit.per_minute);
            let granted = send_budgets::reserve(store, &scope, minute, wanted, per_minute).await?;
            let granted = usize::try_from(granted)?;
            for &i in &indices[..granted] {
                reserved.insert(i, scope.clone());
            }
            for &i in &indices[granted..] {
                holds[i] = Some(Hold {
                    until: minute + MINUTE_MS,
                    why: format!("{domain}: {} a minute", limit.per_minute),
                });
            }
        }
        Ok(reserved)
    }

    /// The warm-up's ceiling for today, over everything not held already;
    /// the rest waits for tomorrow (UTC), giving back its domain shares.
    async fn daily(
        &self,
        store: &Store,
        domains: &[Option<&str>],
        holds: &mut [Option<Hold>],
        reserved: &HashMap<usize, String>,
        now: i64,
    ) -> anyhow::Result<()> {
        let Some(ceiling) = self.warmup.ceiling_at(now) else {
            return Ok(());
        };
        let day = day_of(now);
        let waiting: Vec<usize> = (0..domains.len())
            .filter(|i| domains[*i].is_some() && holds[*i].is_none())
            .collect();
        let wanted = i64::try_from(waiting.len())?;
        let granted = send_budgets::reserve(store, WARMUP, day, wanted, i64::from(ceiling)).await?;
        let mut given_back: HashMap<&str, i64> = HashMap::new();
        for &i in &waiting[usize::try_from(granted)?..] {
            holds[i] = Some(Hold {
                until: day + DAY_MS,
                why: format!("warm-up: {ceiling} a day today"),
            });
            if let Some(scope) = reserved.get(&i) {
                *given_back.entry(scope).or_default() += 1;
            }
        }
        let minute = minute_of(now);
        for (scope, count) in given_back {
            send_budgets::give_back(store, scope, minute, count).await?;
        }
        Ok(())
    }

    /// Gives back what admitting a digest to `domain` took, when it was
    /// not sent after all (handed back, or nothing in its topics): a share
    /// of its domain's minute and of the warm-up's day, as of `now`.
    pub async fn give_back(&self, store: &Store, domain: &str, now: i64) -> anyhow::Result<()> {
        if self.limits.get(domain).is_some_and(|l| l.per_minute > 0) {
            let minute = minute_of(now);
            send_budgets::give_back(store, &format!("domain:{domain}"), minute, 1).await?;
        }
        if self.warmup.ceiling_at(now).is_some() {
            send_budgets::give_back(store, WARMUP, day_of(now), 1).await?;
        }
        Ok(())
    }

    /// Keeps `domain`'s digests back after it deferred one for its own
    /// reasons (a 4.7.x reply); the reply is kept as the reason.
    pub async fn deferred(
        &self,
        store: &Store,
        domain: &str,
        now: i64,
        reply: &str,
    ) -> anyhow::Result<()> {
        let until = now + clock::ms(self.hold_after_deferral);
        let reason: String = reply.chars().take(200).collect();
        send_budgets::hold_domain(store, domain, until, &reason).await?;
        tracing::warn!(%domain, until, reply = %reason, "a domain deferred our mail: its digests wait");
        Ok(())
    }

    /// Budgets of periods over two days old are of no use: forgotten,
    /// once an hour at most.
    async fn forget_old_budgets(&self, store: &Store, now: i64) -> anyhow::Result<()> {
        let last = self.last_purge.load(Ordering::Relaxed);
        if now - last < 3_600_000 {
            return Ok(());
        }
        self.last_purge.store(now, Ordering::Relaxed);
        send_budgets::purge(store, now - 2 * DAY_MS).await?;
        Ok(())
    }
}
