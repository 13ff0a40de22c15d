//! Timestamps: stored as microseconds since the Unix epoch, shown as RFC 3339 UTC.

use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

pub fn now_micros() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000) as i64
}

/// The shop's clock, for every "now" of a request: real time plus an offset that tests
/// can move forward. Clones share the offset.
#[derive(Clone, Default)]
pub struct Clock {
    offset_micros: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

impl Clock {
    pub fn now(&self) -> i64 {
        now_micros()
            + self
                .offset_micros
                .load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn advance(&self, micros: i64) {
        self.offset_micros
            .fetch_add(micros, std::sync::atomic::Ordering::Relaxed);
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
}
