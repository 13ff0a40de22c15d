//! Timestamps: stored as microseconds since the Unix epoch, shown as RFC 3339 UTC.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// The shop's clock, for every "now" of a request: real time plus an offset that tests
/// can move forward, or (frozen by a test) a fixed instant that only `advance` moves.
/// Clones share the offset and the frozen instant.
#[derive(Clone, Default)]
pub struct Clock {
    offset_micros: Arc<AtomicI64>,
    /// The instant the clock stands at while frozen; 0 while it runs.
    frozen_at: Arc<AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> i64 {
        match self.frozen_at.load(Ordering::Acquire) {
            0 => now_micros() + self.offset_micros.load(Ordering::Relaxed),
            frozen => frozen,
        }
    }

    pub fn advance(&self, micros: i64) {
        if self.frozen_at.load(Ordering::Acquire) == 0 {
            self.offset_micros.fetch_add(micros, Ordering::Relaxed);
        } else {
            self.frozen_at.fetch_add(micros, Ordering::AcqRel);
        }
    }

    /// Stops the clock where it is (tests of exact boundaries: the time a request takes
    /// no longer counts).
    pub fn freeze(&self) {
        self.frozen_at.store(self.now(), Ordering::Release);
    }

    /// Lets a frozen clock run again from the instant it stood at.
    pub fn thaw(&self) {
        let frozen = self.frozen_at.load(Ordering::Acquire);
        if frozen != 0 {
            self.offset_micros
                .store(frozen - now_micros(), Ordering::Relaxed);
            self.frozen_at.store(0, Ordering::Release);
        }
    }
}

pub fn rfc3339(micros: i64) -> String {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_utc() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_500_000), "1970-01-01T00:00:01.5Z");
    }

    #[test]
    fn a_frozen_clock_moves_only_when_advanced_and_runs_on_from_there() {
        let clock = super::Clock::default();
        clock.freeze();
        let at = clock.now();
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert_eq!(clock.now(), at);
        clock.advance(5_000_000);
        assert_eq!(clock.now(), at + 5_000_000);
        clock.thaw();
        let after = clock.now();
        assert!(after >= at + 5_000_000, "{after} vs {at}");
        std::thread::sleep(std::time::Duration::from_millis(2));
        assert!(clock.now() > after);
    }
}
