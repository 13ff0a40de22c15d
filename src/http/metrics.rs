//! Prometheus counters kept in memory and rendered as text at `/metrics`. The hot path
//! takes a read lock and bumps atomics; a route is allocated only the first time it is seen.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct RouteStats {
    /// Requests by `(method, status)`.
    by_status: RwLock<BTreeMap<(String, u16), AtomicU64>>,
    /// Non-cumulative bucket counts; the last slot is beyond every bound.
    buckets: [AtomicU64; BUCKETS.len() + 1],
    count: AtomicU64,
    sum_micros: AtomicU64,
}

/// What the database did since it opened: committed writes, and the fsyncs they shared.
pub struct StorageCounts {
    pub writes: u64,
    pub flushes: u64,
}

#[derive(Default)]
pub struct Metrics {
    routes: RwLock<BTreeMap<String, RouteStats>>,
    /// Domain counters (orders placed, stock-outs, ...), by name.
    counters: Mutex<BTreeMap<&'static str, u64>>,
}

impl RouteStats {
    fn observe(&self, method: &str, status: u16, elapsed: Duration) {
        let bumped = self.by_status.read().ok().is_some_and(|m| {
            m.iter()
                .find(|((m, s), _)| m == method && *s == status)
                .map(|(_, n)| n.fetch_add(1, Ordering::Relaxed))
                .is_some()
        });
        if !bumped {
            if let Ok(mut m) = self.by_status.write() {
                m.entry((method.to_string(), status))
                    .or_default()
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        let secs = elapsed.as_secs_f64();
        let slot = BUCKETS
            .iter()
            .position(|bound| secs <= *bound)
            .unwrap_or(BUCKETS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    }
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(routes) = self.routes.read() {
            if let Some(stats) = routes.get(route) {
                stats.observe(method, status, elapsed);
                return;
            }
        }
        if let Ok(mut routes) = self.routes.write() {
            routes
                .entry(route.to_string())
                .or_default()
                .observe(method, status, elapsed);
        }
    }

    /// Adds to a named domain counter, exported as `shopbox_<name>_total`.
    pub fn count(&self, name: &'static str, by: u64) {
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry(name).or_default() += by;
        }
    }

    pub fn render(&self, storage: StorageCounts) -> String {
        let mut out = String::new();
        out.push_str("# HELP shopbox_db_writes_total Committed database writes (transactions).\n");
        out.push_str("# TYPE shopbox_db_writes_total counter\n");
        let _ = writeln!(out, "shopbox_db_writes_total {}", storage.writes);
        out.push_str(
            "# HELP shopbox_db_flushes_total Flushes to disk; concurrent writes share one.\n",
        );
        out.push_str("# TYPE shopbox_db_flushes_total counter\n");
        let _ = writeln!(out, "shopbox_db_flushes_total {}", storage.flushes);
        out.push_str("# HELP shopbox_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE shopbox_http_requests_total counter\n");
        let Ok(routes) = self.routes.read() else {
            return out;
        };
        for (route, stats) in routes.iter() {
            let route = escape(route);
            if let Ok(by_status) = stats.by_status.read() {
                for ((method, status), n) in by_status.iter() {
                    let _ = writeln!(
                        out,
                        "shopbox_http_requests_total{{method=\"{method}\",route=\"{route}\",status=\"{status}\"}} {}",
                        n.load(Ordering::Relaxed)
                    );
                }
            }
        }
        out.push_str(
            "# HELP shopbox_http_request_duration_seconds Request latency by route template.\n",
        );
        out.push_str("# TYPE shopbox_http_request_duration_seconds histogram\n");
        for (route, stats) in routes.iter() {
            let route = escape(route);
            let mut cumulative = 0;
            for (i, bound) in BUCKETS.iter().enumerate() {
                cumulative += stats.buckets[i].load(Ordering::Relaxed);
                let _ = writeln!(
                    out,
                    "shopbox_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
                );
            }
            let count = stats.count.load(Ordering::Relaxed);
            let _ = writeln!(
                out,
                "shopbox_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {count}"
            );
            let _ = writeln!(
                out,
                "shopbox_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                stats.sum_micros.load(Ordering::Relaxed) as f64 / 1e6
            );
            let _ = writeln!(
                out,
                "shopbox_http_request_duration_seconds_count{{route=\"{route}\"}} {count}"
            );
        }
        if let Ok(counters) = self.counters.lock() {
            for (name, n) in counters.iter() {
                let _ = writeln!(out, "# TYPE shopbox_{name}_total counter");
                let _ = writeln!(out, "shopbox_{name}_total {n}");
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histogram_buckets_are_cumulative() {
        let m = Metrics::default();
        m.observe("GET", "/a", 200, Duration::from_micros(300));
        m.observe("GET", "/a", 200, Duration::from_millis(3));
        m.observe("POST", "/a", 201, Duration::from_secs(9));
        let none = || StorageCounts {
            writes: 0,
            flushes: 0,
        };
        let text = m.render(none());
        assert!(text.contains("route=\"/a\",le=\"0.0005\"} 1\n"), "{text}");
        assert!(text.contains("route=\"/a\",le=\"0.005\"} 2\n"), "{text}");
        assert!(text.contains("route=\"/a\",le=\"5\"} 2\n"), "{text}");
        assert!(text.contains("route=\"/a\",le=\"+Inf\"} 3\n"), "{text}");
        assert!(
            text.contains("method=\"GET\",route=\"/a\",status=\"200\"} 2"),
            "{text}"
        );
        m.count("orders", 2);
        assert!(m.render(none()).contains("shopbox_orders_total 2"));
    }
}
