//! Prometheus counters kept in memory and rendered as text at `/metrics`. The hot path
//! takes a read lock and bumps atomics; a route is allocated only the first time it is seen.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

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

/// What the database did since it opened (committed writes, and the fsyncs they shared),
/// and what it takes on disk.
pub struct StorageCounts {
    pub writes: u64,
    pub flushes: u64,
    /// Bytes of the database's files; `None` when it is not on this machine.
    pub size_bytes: Option<u64>,
}

/// Every domain counter, exported as `shopbox_<name>_total` from the first scrape (at 0),
/// with its help text.
pub const COUNTERS: [(&str, &str); 7] = [
    ("orders", "Orders placed and paid at checkout."),
    ("payments_failed", "Checkouts whose payment failed."),
    (
        "stock_outs",
        "Checkouts refused because a product was out of stock.",
    ),
    ("mails_queued", "Emails written to the outbox."),
    ("mails_sent", "Emails the SMTP server accepted."),
    (
        "mails_failed",
        "Emails given up: refused by the SMTP server, or not delivered in time.",
    ),
    ("rate_limited", "Requests refused by a rate limit."),
];

pub struct Metrics {
    routes: RwLock<BTreeMap<String, RouteStats>>,
    /// Domain counters (orders placed, stock-outs, ...), by name.
    counters: Mutex<BTreeMap<&'static str, u64>>,
    /// Sum of the totals of orders placed, in cents.
    revenue_cents: AtomicU64,
    /// The shop's currency, the label of the revenue.
    currency: String,
    started: Instant,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new("USD")
    }
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
    pub fn new(currency: &str) -> Metrics {
        Metrics {
            routes: RwLock::default(),
            counters: Mutex::new(COUNTERS.iter().map(|(name, _)| (*name, 0)).collect()),
            revenue_cents: AtomicU64::new(0),
            currency: currency.to_string(),
            started: Instant::now(),
        }
    }

    /// An order was placed: counts it and adds its total to the revenue.
    pub fn order_placed(&self, total_cents: i64) {
        self.count("orders", 1);
        self.revenue_cents
            .fetch_add(total_cents.max(0) as u64, Ordering::Relaxed);
    }

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
        if let Some(bytes) = storage.size_bytes {
            out.push_str("# HELP shopbox_db_size_bytes Size of the database files on disk.\n");
            out.push_str("# TYPE shopbox_db_size_bytes gauge\n");
            let _ = writeln!(out, "shopbox_db_size_bytes {bytes}");
        }
        out.push_str("# HELP shopbox_uptime_seconds Seconds since the process started serving.\n");
        out.push_str("# TYPE shopbox_uptime_seconds gauge\n");
        let _ = writeln!(
            out,
            "shopbox_uptime_seconds {:.3}",
            self.started.elapsed().as_secs_f64()
        );
        if let Ok(counters) = self.counters.lock() {
            for (name, n) in counters.iter() {
                let help = COUNTERS
                    .iter()
                    .find(|(known, _)| known == name)
                    .map(|(_, help)| *help)
                    .unwrap_or("A domain counter.");
                let _ = writeln!(out, "# HELP shopbox_{name}_total {help}");
                let _ = writeln!(out, "# TYPE shopbox_{name}_total counter");
                let _ = writeln!(out, "shopbox_{name}_total {n}");
            }
        }
        out.push_str(
            "# HELP shopbox_revenue_total Sum of the totals of orders placed, in the shop's currency.\n",
        );
        out.push_str("# TYPE shopbox_revenue_total counter\n");
        let cents = self.revenue_cents.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "shopbox_revenue_total{{currency=\"{}\"}} {}.{:02}",
            escape(&self.currency),
            cents / 100,
            cents % 100
        );
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
            size_bytes: None,
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

    #[test]
    fn every_domain_counter_is_exported_from_the_start() {
        let m = Metrics::new("EUR");
        let text = m.render(StorageCounts {
            writes: 0,
            flushes: 0,
            size_bytes: Some(4096),
        });
        for (name, _) in COUNTERS {
            assert!(
                text.contains(&format!("\nshopbox_{name}_total 0\n")),
                "{name}: {text}"
            );
        }
        assert!(text.contains("shopbox_revenue_total{currency=\"EUR\"} 0.00\n"));
        assert!(text.contains("shopbox_db_size_bytes 4096\n"));
        assert!(text.contains("shopbox_uptime_seconds "));
        m.order_placed(1999);
        m.order_placed(1);
        let text = m.render(StorageCounts {
            writes: 0,
            flushes: 0,
            size_bytes: None,
        });
        assert!(text.contains("shopbox_orders_total 2\n"), "{text}");
        assert!(text.contains("shopbox_revenue_total{currency=\"EUR\"} 20.00\n"));
    }
}
