//! Time, injected so tests can move it (STYLE 5). Stored times are Unix milliseconds, UTC.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

use chrono::{DateTime, Utc};

/// The wall clock plus an offset that only tests change.
#[derive(Clone, Default)]
pub struct Clock {
    offset_ms: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::milliseconds(self.offset_ms.load(Ordering::Relaxed))
    }

    /// Now as Unix milliseconds, the form every timestamp column holds.
    pub fn now_ms(&self) -> i64 {
        self.now().timestamp_millis()
    }

    /// Moves this clock (and every clone of it) forward.
    pub fn advance(&self, by: std::time::Duration) {
        let ms = i64::try_from(by.as_millis()).unwrap_or(i64::MAX);
        self.offset_ms.fetch_add(ms, Ordering::Relaxed);
    }
}

/// Converts a duration in whole seconds to milliseconds for timestamp arithmetic.
pub const fn secs_ms(seconds: u64) -> i64 {
    (seconds as i64).saturating_mul(1000)
}

/// Converts hours to milliseconds.
pub const fn hours_ms(hours: u64) -> i64 {
    secs_ms(hours.saturating_mul(3600))
}
