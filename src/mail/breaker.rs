//! A relay's circuit breaker: a run of failures takes it out of rotation
//! for a while; then one message is let through as a probe, and its
//! success puts the relay back, its failure keeps it out twice as long.
//! Times are the service's clock's milliseconds, passed in, so tests can
//! move them.

use std::time::Duration;

use crate::{clock, config::BreakerConfig};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: i64,
        backoff: Duration,
    },
    /// One message is being sent as a probe.
    Probing {
        backoff: Duration,
    },
}

/// How a breaker looks from outside: `/metrics` and the console.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    Closed,
    Open,
    Probing,
}

impl BreakerState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::Probing => "probing",
        }
    }

    /// For editors.
    pub fn in_words(self) -> &'static str {
        match self {
            Self::Closed => "in rotation",
            Self::Open => "out of rotation",
            Self::Probing => "being tried again",
        }
    }
}

pub(super) struct Breaker {
    settings: BreakerConfig,
    state: State,
}

impl Breaker {
    pub fn new(settings: BreakerConfig) -> Self {
        Self {
            settings,
            state: State::Closed { failures: 0 },
        }
    }

    pub fn state(&self) -> BreakerState {
        match self.state {
            State::Closed { .. } => BreakerState::Closed,
            State::Open { .. } => BreakerState::Open,
            State::Probing { .. } => BreakerState::Probing,
        }
    }

    /// Whether a message could be let through now, without taking the
    /// probe's place.
    pub fn in_rotation(&self, now: i64) -> bool {
        match self.state {
            State::Closed { .. } => true,
            State::Open { until, .. } => until <= now,
            State::Probing { .. } => false,
        }
    }

    /// When it is back in rotation: at once when closed, at the end of
    /// its time out when open, and last while a probe is out.
    pub fn back_at(&self) -> i64 {
        match self.state {
            State::Closed { .. } => i64::MIN,
            State::Open { until, .. } => until,
            State::Probing { .. } => i64::MAX,
        }
    }

    /// Lets a message through: `Some(false)` as usual, `Some(true)` as the
    /// probe of a relay whose time out is over, `None` if it stays out.
    pub fn begin(&mut self, now: i64) -> Option<bool> {
        match self.state {
            State::Closed { .. } => Some(false),
            State::Open { until, backoff } if until <= now => {
                self.state = State::Probing { backoff };
                Some(true)
            }
            State::Open { .. } | State::Probing { .. } => None,
        }
    }

    /// The relay answered (it took the message, or refused it for good).
    pub fn succeeded(&mut self) {
        self.state = State::Closed { failures: 0 };
    }

    /// The relay could not be reached, did not answer in time, or deferred.
    pub fn failed(&mut self, now: i64, probe: bool) {
        self.state = match self.state {
            State::Closed { failures } if failures + 1 >= self.settings.failures => State::Open {
                until: now + clock::ms(self.settings.open),
                backoff: self.settings.open,
            },
            State::Closed { failures } => State::Closed {
                failures: failures + 1,
            },
            State::Probing { backoff } if probe => {
                let backoff = backoff.saturating_mul(2).min(self.settings.max_open);
                State::Open {
                    until: now + clock::ms(backoff),
                    backoff,
                }
            }
            // Sends that started before it opened say nothing new.
            open @ (State::Open { .. } | State::Probing { .. }) => open,
        };
    }

    /// The probe was let through but never sent (its lease ran short):
    /// the next message may probe at once.
    pub fn abandoned(&mut self, now: i64) {
        if let State::Probing { backoff } = self.state {
            self.state = State::Open {
                until: now,
                backoff,
            };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerConfig {
            failures: 3,
            open: Duration::from_secs(10),
            max_open: Duration::from_secs(25),
        })
    }

    #[test]
    fn a_run_of_failures_opens_it_and_a_success_in_between_resets_the_run() {
        let (mut breaker, now) = (breaker(), 0_i64);
        breaker.failed(now, false);
        breaker.failed(now, false);
        breaker.succeeded();
        breaker.failed(now, false);
        breaker.failed(now, false);
        assert_eq!(breaker.begin(now), Some(false));
        breaker.failed(now, false);
        assert_eq!(breaker.state(), BreakerState::Open);
        assert!(!breaker.in_rotation(now + 9_000));
        assert_eq!(breaker.begin(now + 9_000), None);
    }

    #[test]
    fn one_probe_at_a_time_and_a_failed_probe_doubles_the_time_out_up_to_the_maximum() {
        let (mut breaker, now) = (breaker(), 0_i64);
        for _ in 0..3 {
            breaker.failed(now, false);
        }
        let later = now + 10_000;
        assert!(breaker.in_rotation(later));
        assert_eq!(breaker.begin(later), Some(true));
        assert_eq!(breaker.begin(later), None, "a second probe waits");
        breaker.failed(later, false); // an older send: says nothing new
        assert_eq!(breaker.state(), BreakerState::Probing);
        breaker.failed(later, true);
        assert!(!breaker.in_rotation(later + 19_000));
        let again = later + 20_000;
        assert_eq!(breaker.begin(again), Some(true));
        breaker.failed(again, true);
        assert!(!breaker.in_rotation(again + 24_000));
        assert!(breaker.in_rotation(again + 25_000));
    }

    #[test]
    fn a_successful_probe_closes_it_and_an_abandoned_one_lets_the_next_probe() {
        let (mut breaker, now) = (breaker(), 0_i64);
        for _ in 0..3 {
            breaker.failed(now, false);
        }
        let later = now + 10_000;
        assert_eq!(breaker.begin(later), Some(true));
        breaker.abandoned(later);
        assert_eq!(breaker.begin(later), Some(true));
        breaker.succeeded();
        assert_eq!(breaker.state(), BreakerState::Closed);
        assert_eq!(breaker.begin(later), Some(false));
    }
}
