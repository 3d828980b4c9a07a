//! Sign-in throttling per client IP and per account: a token bucket
//! each, so a burst of attempts is allowed, then one more every so often.
//! Nothing locks for good; waiting always helps.

use std::{net::IpAddr, num::NonZeroU32, time::Duration};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock as _, DefaultClock},
};

pub struct LoginThrottle {
    per_ip: Option<DefaultKeyedRateLimiter<IpAddr>>,
    per_account: Option<DefaultKeyedRateLimiter<String>>,
}

impl LoginThrottle {
    /// Limits per minute for an IP and per hour for an account; 0 turns one off.
    pub fn new(per_ip_per_minute: u32, per_account_per_hour: u32) -> Self {
        Self {
            per_ip: NonZeroU32::new(per_ip_per_minute)
                .map(|n| RateLimiter::keyed(Quota::per_minute(n))),
            per_account: NonZeroU32::new(per_account_per_hour)
                .map(|n| RateLimiter::keyed(Quota::per_hour(n))),
        }
    }

    /// `Err(wait)` if this attempt must wait. `account` is whatever address
    /// was typed, known or not, so the answer reveals nothing.
    pub fn check(&self, ip: IpAddr, account: &str) -> Result<(), Duration> {
        let now = DefaultClock::default().now();
        if let Some(limiter) = &self.per_ip {
            limiter
                .check_key(&ip)
                .map_err(|wait| wait.wait_time_from(now))?;
        }
        if let Some(limiter) = &self.per_account {
            limiter
                .check_key(&account.to_lowercase())
                .map_err(|wait| wait.wait_time_from(now))?;
        }
        Ok(())
    }

    /// Forgets idle keys so the tables cannot grow without bound.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_ip {
            limiter.retain_recent();
        }
        if let Some(limiter) = &self.per_account {
            limiter.retain_recent();
        }
    }
}
