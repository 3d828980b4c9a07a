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
        self.offset_ms.fetch_add(ms(by), Ordering::Relaxed);
    }
}

/// Unix milliseconds as RFC 3339 (UTC, milliseconds), the form times take
/// in exports and outgoing webhooks.
pub fn rfc3339(ms: i64) -> Option<String> {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
}

/// As [`rfc3339`], "" for a time out of chrono's range (never stored).
pub fn rfc3339_text(ms: i64) -> String {
    rfc3339(ms).unwrap_or_default()
}

/// A duration in milliseconds, for arithmetic on stored times (Unix ms);
/// saturates at `i64::MAX` rather than wrapping into the past.
pub fn ms(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}
