//! Throttling of link and token guessing (E-04): emailed links and API
//! tokens are unguessable, but a client that keeps sending ones that match
//! nothing is logged and, past a budget per IP, refused for a while. Only
//! misses count, so readers clicking their own links are never slowed, and
//! nothing locks for good: the budget refills as time passes. The
//! middleware that counts the misses is in `guards`.

use std::{
    collections::HashMap,
    net::IpAddr,
    num::NonZeroU32,
    sync::Mutex,
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};

pub struct GuessThrottle {
    /// Misses per IP; `None` when the limit is off.
    misses: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// IPs past their budget, and until when they are refused. The limiter
    /// cannot be asked without spending, so the refusal is kept here.
    refused_until: Mutex<HashMap<IpAddr, Instant>>,
}

impl GuessThrottle {
    /// `per_ip_per_hour` misses (a burst of that many, then one more every
    /// hour / `per_ip_per_hour`); 0 turns the throttle off.
    pub fn new(per_ip_per_hour: u32) -> Self {
        Self {
            misses: NonZeroU32::new(per_ip_per_hour)
                .map(|n| RateLimiter::keyed(Quota::per_hour(n))),
            refused_until: Mutex::default(),
        }
    }

    /// `Err(wait)` while `ip` is refused.
    pub fn admit(&self, ip: IpAddr) -> Result<(), Duration> {
        let refused = self.refused().get(&ip).copied();
        match refused.map(|until| until.saturating_duration_since(Instant::now())) {
            Some(wait) if !wait.is_zero() => Err(wait),
            _ => Ok(()),
        }
    }

    /// Counts a link or token from `ip` that matched nothing; past the
    /// budget, `ip` is refused until its next miss would be allowed.
    pub fn missed(&self, ip: IpAddr, route: &str) {
        let Some(misses) = &self.misses else {
            return;
        };
        match misses.check_key(&ip) {
            Ok(()) => tracing::warn!(%ip, route, "a link or token that matches nothing"),
            Err(not_until) => {
                let wait = not_until.wait_time_from(DefaultClock::default().now());
                tracing::warn!(
                    %ip,
                    route,
                    wait_s = wait.as_secs(),
                    "too many links or tokens that match nothing: this address is refused for a while"
                );
                self.refused().insert(ip, Instant::now() + wait);
            }
        }
    }

    /// Forgets idle keys and ended refusals, so the tables cannot grow
    /// without bound.
    pub fn forget_idle(&self) {
        if let Some(misses) = &self.misses {
            misses.retain_recent();
        }
        let now = Instant::now();
        self.refused().retain(|_, until| *until > now);
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, HashMap<IpAddr, Instant>> {
        // A panic while holding the lock leaves a map that is still whole.
        self.refused_until
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn misses_past_the_budget_refuse_only_that_address_for_a_while() {
        let throttle = GuessThrottle::new(3);
        let guesser = IpAddr::from([203, 0, 113, 7]);
        let reader = IpAddr::from([198, 51, 100, 1]);
        for _ in 0..3 {
            assert!(throttle.admit(guesser).is_ok());
            throttle.missed(guesser, "/confirm/{token}");
        }
        assert!(throttle.admit(guesser).is_ok(), "three misses are allowed");
        throttle.missed(guesser, "/confirm/{token}");
        let wait = throttle
            .admit(guesser)
            .expect_err("the fourth is one too many");
        // One miss comes back every 20 minutes (3 per hour).
        assert!(wait > Duration::from_secs(19 * 60) && wait <= Duration::from_secs(20 * 60));
        assert!(throttle.admit(reader).is_ok(), "others are not affected");
        throttle.forget_idle();
        assert!(
            throttle.admit(guesser).is_err(),
            "a refusal outlives the sweep"
        );
    }

    #[test]
    fn zero_turns_it_off() {
        let throttle = GuessThrottle::new(0);
        let ip = IpAddr::from([203, 0, 113, 7]);
        for _ in 0..100 {
            throttle.missed(ip, "/confirm/{token}");
        }
        assert!(throttle.admit(ip).is_ok());
    }
}
