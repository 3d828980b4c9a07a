//! When to try a message again after a transient failure (E-22), and when
//! to give up: one policy for account mail and digests.

use std::time::Duration;

use rand::Rng;

use crate::{clock::ms, config::DeliveryConfig};

/// `delivery.retry_base_s`, `retry_max_s` and `give_up_after_h`.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    base: Duration,
    max: Duration,
    give_up_after: Duration,
}

/// What becomes of a message that failed for now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Try again at this time.
    At(i64),
    /// It has been waiting too long: record it as failed.
    GiveUp,
}

impl RetryPolicy {
    pub fn new(config: &DeliveryConfig) -> Self {
        Self {
            base: config.retry_base,
            max: config.retry_max,
            give_up_after: config.give_up_after,
        }
    }

    /// After `attempts` tries of a message queued at `queued_at` (for a
    /// digest, when its campaign started).
    pub fn after(&self, attempts: i64, queued_at: i64, now: i64) -> Retry {
        if now - queued_at >= ms(self.give_up_after) {
            return Retry::GiveUp;
        }
        Retry::At(now + retry_delay_ms(attempts, self.base, self.max))
    }
}

/// Exponential back-off with jitter: attempt 1 waits about `base`, each
/// further attempt doubles it up to `max`; the wait is drawn from the upper
/// half of that figure so that a fleet of retries spreads out.
fn retry_delay_ms(attempts: i64, base: Duration, max: Duration) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let ceiling = base
        .saturating_mul(1u32 << exponent)
        .min(max)
        .max(Duration::from_secs(1));
    let ceiling_ms = ms(ceiling);
    rand::rng().random_range(ceiling_ms / 2..=ceiling_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap() {
        for _ in 0..100 {
            let (base, max) = (Duration::from_secs(30), Duration::from_secs(3600));
            let first = retry_delay_ms(1, base, max);
            assert!((15_000..=30_000).contains(&first), "{first}");
            let third = retry_delay_ms(3, base, max);
            assert!((60_000..=120_000).contains(&third), "{third}");
            let late = retry_delay_ms(40, base, max);
            assert!((1_800_000..=3_600_000).contains(&late), "{late}");
        }
    }

    #[test]
    fn a_message_waiting_past_the_limit_is_given_up() {
        let policy = RetryPolicy {
            base: Duration::from_secs(30),
            max: Duration::from_secs(3600),
            give_up_after: Duration::from_secs(72 * 3600),
        };
        let queued = 1_000_000;
        let limit = ms(Duration::from_secs(72 * 3600));
        let Retry::At(due) = policy.after(1, queued, queued + 1_000) else {
            panic!("a first failure is retried");
        };
        assert!((queued + 16_000..=queued + 31_000).contains(&due), "{due}");
        assert_eq!(policy.after(5, queued, queued + limit), Retry::GiveUp);
        assert!(matches!(
            policy.after(5, queued, queued + limit - 1),
            Retry::At(_)
        ));
    }
}
