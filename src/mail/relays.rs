//! Choosing the relay each message leaves through.
//!
//! Primaries share the mail by weight (smooth weighted round robin, as
//! nginx spreads requests: the same order every time, no runs). Overflow
//! relays take what no primary has a connection or a token for, and stand
//! in while no primary is in rotation; fallbacks only while neither is.
//! Each relay has its own connections (`concurrency`), its own rate (a
//! token bucket) and its own circuit breaker (`breaker`).
//!
//! A relay that did not take a message (its connection refused or cut,
//! a 4xx reply) leaves it with us, so it is offered at once to the next
//! relay in rotation: never lost, and never sent twice. One that may have
//! taken it (no answer in time) is not: the message is retried later.
//! Account mail may be pinned to a relay of its own (`smtp.account_relay`),
//! which digests never use; while that relay is out of rotation, account
//! mail goes as digests do, since a sign-in link late is better than none.

use std::{
    num::NonZeroU32,
    sync::{Arc, Mutex},
};

use lettre::Message;
use tokio::sync::OwnedSemaphorePermit;

use super::{
    SendError,
    relay::{Pass, Relay, RelayStatus},
};
use crate::{
    clock::Clock,
    config::{RelayRole, SmtpConfig},
};

/// Which mail a message is, for `smtp.account_relay`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mail {
    /// Confirmations, credentials, sign-in and reset links.
    Account,
    Digest,
}

/// What became of a send.
#[derive(Debug)]
pub enum Sending {
    /// Not started: no time left within the lease.
    TooLate,
    Done(Attempts),
}

/// The outcome of a send and the relays it went through.
#[derive(Debug)]
pub struct Attempts {
    /// The relay of the last attempt (`None` for `.eml` files, or when no
    /// relay was in rotation).
    pub relay: Option<Arc<str>>,
    pub result: Result<(), SendError>,
    /// Relays that deferred it before the last attempt.
    pub deferred_by: Vec<Arc<str>>,
    /// The receiving domain deferred it for its own reasons (4.7.x).
    pub domain_deferred: bool,
}

pub struct Relays {
    relays: Vec<Relay>,
    /// The breakers' time.
    clock: Clock,
    /// The index of `smtp.account_relay`.
    account: Option<usize>,
    /// Smooth weighted round robin: each relay's running score.
    scores: Mutex<Vec<i64>>,
}

/// A connection of `relay`'s and a token of its rate, waited for.
async fn wait_for(relay: &Relay) -> Option<OwnedSemaphorePermit> {
    let permit = relay.permits.clone().acquire_owned().await.ok()?;
    if let Some(limiter) = &relay.limiter {
        limiter.until_ready().await;
    }
    Some(permit)
}

/// Which relays a message may take now: `base` first, spilling over to
/// `spill` when none of `base` is free; waiting on `base` when none is.
struct Choice {
    base: Vec<usize>,
    spill: Vec<usize>,
}

impl Relays {
    pub fn from_config(smtp: &SmtpConfig, clock: Clock) -> anyhow::Result<Self> {
        let configs = smtp.relays();
        let relays = configs
            .iter()
            .map(|config| Relay::new(config, smtp.timeout, smtp.breaker.clone()))
            .collect::<anyhow::Result<Vec<_>>>()?;
        let account = configs
            .iter()
            .position(|relay| relay.name == smtp.account_relay);
        Ok(Self {
            clock,
            scores: Mutex::new(vec![0; relays.len()]),
            relays,
            account,
        })
    }

    /// Whether every relay took 8-bit bodies when last asked.
    pub fn eight_bit_mime(&self) -> bool {
        self.relays.iter().all(Relay::eight_bit_mime)
    }

    /// Whether the relay at `index` may carry this kind of mail at all:
    /// digests never go through the account relay; account mail may go
    /// through any (the others while its own is out of rotation).
    fn may_carry(&self, mail: Mail, index: usize) -> bool {
        mail == Mail::Account || Some(index) != self.account
    }

    /// The relays this kind of mail normally goes through: account mail
    /// its own relay, if it has one.
    fn serving(&self, mail: Mail) -> impl Iterator<Item = &Relay> {
        let pinned = self.account.filter(|_| mail == Mail::Account);
        self.relays
            .iter()
            .enumerate()
            .filter(move |(i, _)| pinned.map_or(self.may_carry(Mail::Digest, *i), |a| *i == a))
            .map(|(_, relay)| relay)
    }

    /// Messages of this kind sent at once: the connections of its relays.
    pub fn concurrency(&self, mail: Mail) -> usize {
        self.serving(mail)
            .map(|relay| relay.connections)
            .sum::<usize>()
            .max(1)
    }

    /// Messages of this kind per second at most, over its relays; 0 if
    /// any of them has no limit.
    pub fn rate_per_second(&self, mail: Mail) -> u32 {
        self.serving(mail)
            .map(|relay| NonZeroU32::new(relay.rate_per_second))
            .try_fold(0, |sum: u32, rate| Some(sum.saturating_add(rate?.get())))
            .unwrap_or(0)
    }

    pub fn status(&self) -> Vec<RelayStatus> {
        self.relays.iter().map(Relay::status).collect()
    }

    pub async fn send(
        &self,
        message: &Message,
        mail: Mail,
        may_start: impl Fn() -> bool,
    ) -> Sending {
        let mut tried = Vec::new();
        let mut deferred_by = Vec::new();
        let mut last_error = None;
        loop {
            let Some(mut pass) = self.pass(mail, &tried).await else {
                let error = last_error
                    .unwrap_or_else(|| "no SMTP relay is in rotation; retried later".to_owned());
                let relay = deferred_by.pop();
                return Sending::Done(Attempts {
                    relay,
                    result: Err(SendError::Transient(error)),
                    deferred_by,
                    domain_deferred: false,
                });
            };
            if !may_start() {
                return Sending::TooLate;
            }
            let relay = pass.relay;
            let sent = relay.send(message).await;
            let verdict = pass.record(sent);
            match verdict.result {
                Err(SendError::Transient(error)) if verdict.failover => {
                    tried.push(self.index_of(relay));
                    deferred_by.push(relay.name.clone());
                    last_error = Some(error);
                }
                result => {
                    return Sending::Done(Attempts {
                        relay: Some(relay.name.clone()),
                        result,
                        deferred_by,
                        domain_deferred: verdict.domain_deferred,
                    });
                }
            }
        }
    }

    fn index_of(&self, relay: &Relay) -> usize {
        self.relays
            .iter()
            .position(|r| std::ptr::eq(r, relay))
            .expect("a relay of this set")
    }

    /// Leave to send through the best relay in rotation not yet `tried`,
    /// waiting for a connection or a token if every one is busy; `None`
    /// if none is in rotation.
    async fn pass(&self, mail: Mail, tried: &[usize]) -> Option<Pass<'_>> {
        loop {
            let now = self.clock.now_ms();
            let choice = self.choice(mail, tried, now);
            for tier in [&choice.base, &choice.spill] {
                if let Some(pass) = self.free_pass(tier, now) {
                    return Some(pass);
                }
            }
            let index = match self.next_by_weight(&choice.base) {
                Some(index) => index,
                None if tried.is_empty() => return self.forced_pass(mail).await,
                None => return None,
            };
            let relay = &self.relays[index];
            let permit = wait_for(relay).await?;
            let began = relay.breaker().begin(self.clock.now_ms());
            if let Some(probe) = began {
                return Some(Pass::new(&self.clock, relay, probe, permit));
            }
            // It left rotation while we waited: choose again.
        }
    }

    /// When none of this mail's relays is in rotation, a message that has
    /// tried none goes to the one due back first anyway: with nowhere else
    /// to go, holding it back would only delay it. (A sole relay so works
    /// as without a breaker, the queue's back-off pacing the retries.)
    async fn forced_pass(&self, mail: Mail) -> Option<Pass<'_>> {
        let index = (0..self.relays.len())
            .filter(|i| self.may_carry(mail, *i))
            .min_by_key(|i| self.relays[*i].breaker().back_at())?;
        let relay = &self.relays[index];
        let permit = wait_for(relay).await?;
        Some(Pass::new(&self.clock, relay, false, permit))
    }

    fn choice(&self, mail: Mail, tried: &[usize], now: i64) -> Choice {
        let in_rotation =
            |i: usize| !tried.contains(&i) && self.relays[i].breaker().in_rotation(now);
        if mail == Mail::Account
            && let Some(account) = self.account.filter(|a| in_rotation(*a))
        {
            return Choice {
                base: vec![account],
                spill: Vec::new(),
            };
        }
        let of_role = |role| {
            (0..self.relays.len())
                .filter(|i| self.may_carry(Mail::Digest, *i) && self.relays[*i].role == role)
                .filter(|i| in_rotation(*i))
                .collect::<Vec<_>>()
        };
        let (primary, overflow) = (of_role(RelayRole::Primary), of_role(RelayRole::Overflow));
        match (primary.is_empty(), overflow.is_empty()) {
            (false, _) => Choice {
                base: primary,
                spill: overflow,
            },
            (true, false) => Choice {
                base: overflow,
                spill: Vec::new(),
            },
            (true, true) => Choice {
                base: of_role(RelayRole::Fallback),
                spill: Vec::new(),
            },
        }
    }

    /// A pass from a relay of `tier` with a connection and a token free now.
    fn free_pass(&self, tier: &[usize], now: i64) -> Option<Pass<'_>> {
        let mut left = tier.to_vec();
        while let Some(index) = self.next_by_weight(&left) {
            left.retain(|i| *i != index);
            let relay = &self.relays[index];
            let Ok(permit) = relay.permits.clone().try_acquire_owned() else {
                continue;
            };
            if relay.limiter.as_ref().is_some_and(|l| l.check().is_err()) {
                continue;
            }
            let began = relay.breaker().begin(now);
            if let Some(probe) = began {
                return Some(Pass::new(&self.clock, relay, probe, permit));
            }
        }
        None
    }

    /// The next of `candidates` by smooth weighted round robin.
    fn next_by_weight(&self, candidates: &[usize]) -> Option<usize> {
        let mut scores = self.scores.lock().expect("scores lock");
        let mut best: Option<usize> = None;
        let mut total = 0;
        for &i in candidates {
            scores[i] += self.relays[i].weight;
            total += self.relays[i].weight;
            if best.is_none_or(|b| scores[i] > scores[b]) {
                best = Some(i);
            }
        }
        let best = best?;
        scores[best] -= total;
        Some(best)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::RelayConfig;

    fn relays(list: &[(&str, RelayRole, u32)]) -> Relays {
        let relays = list
            .iter()
            .map(|(name, role, weight)| RelayConfig {
                name: (*name).into(),
                weight: *weight,
                role: *role,
                ..SmtpConfig::default().relays().remove(0)
            })
            .collect();
        let smtp = SmtpConfig {
            relays,
            ..SmtpConfig::default()
        };
        Relays::from_config(&smtp, Clock::default()).unwrap()
    }

    #[test]
    fn weights_interleave_smoothly() {
        let set = relays(&[
            ("a", RelayRole::Primary, 5),
            ("b", RelayRole::Primary, 1),
            ("c", RelayRole::Primary, 1),
        ]);
        let order: String = (0..7)
            .map(|_| ["a", "b", "c"][set.next_by_weight(&[0, 1, 2]).unwrap()])
            .collect();
        assert_eq!(order, "aabacaa");
    }

    #[test]
    fn overflow_spills_and_fallback_waits_for_both_to_be_out() {
        let set = relays(&[
            ("p", RelayRole::Primary, 1),
            ("o", RelayRole::Overflow, 1),
            ("f", RelayRole::Fallback, 1),
        ]);
        let choice = set.choice(Mail::Digest, &[], 0);
        assert_eq!((choice.base, choice.spill), (vec![0], vec![1]));
        let choice = set.choice(Mail::Digest, &[0], 0);
        assert_eq!((choice.base, choice.spill), (vec![1], vec![]));
        let choice = set.choice(Mail::Digest, &[0, 1], 0);
        assert_eq!((choice.base, choice.spill), (vec![2], vec![]));
        assert!(set.choice(Mail::Digest, &[0, 1, 2], 0).base.is_empty());
    }
}
