//! When to try a message again after a transient failure (E-22).

use rand::Rng;

/// Exponential back-off with jitter: attempt 1 waits about `base`, each
/// further attempt doubles it up to `max`; the wait is drawn from the upper
/// half of that figure so that a fleet of retries spreads out.
pub fn retry_delay_ms(attempts: i64, base_s: u64, max_s: u64) -> i64 {
    let exponent = u32::try_from(attempts.saturating_sub(1).clamp(0, 30)).unwrap_or(30);
    let ceiling_s = base_s.saturating_mul(1u64 << exponent).min(max_s).max(1);
    let ceiling_ms = i64::try_from(ceiling_s.saturating_mul(1000)).unwrap_or(i64::MAX);
    rand::rng().random_range(ceiling_ms / 2..=ceiling_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_exponentially_within_the_cap() {
        for _ in 0..100 {
            let first = retry_delay_ms(1, 30, 3600);
            assert!((15_000..=30_000).contains(&first), "{first}");
            let third = retry_delay_ms(3, 30, 3600);
            assert!((60_000..=120_000).contains(&third), "{third}");
            let late = retry_delay_ms(40, 30, 3600);
            assert!((1_800_000..=3_600_000).contains(&late), "{late}");
        }
    }
}
