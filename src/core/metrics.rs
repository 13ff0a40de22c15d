//! Prometheus counters kept in memory and rendered as text at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, Histogram>>,
    /// Domain counters (orders placed, stock-outs, ...), by name.
    counters: Mutex<BTreeMap<&'static str, AtomicU64>>,
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        let secs = elapsed.as_secs_f64();
        if let Ok(mut latency) = self.latency.lock() {
            let h = latency.entry(route.to_string()).or_default();
            for (i, bound) in BUCKETS.iter().enumerate() {
                if secs <= *bound {
                    h.counts[i] += 1;
                }
            }
            h.count += 1;
            h.sum += secs;
        }
    }

    /// Adds to a named domain counter, exported as `shopbox_<name>_total`.
    pub fn count(&self, name: &'static str, by: u64) {
        if let Ok(mut counters) = self.counters.lock() {
            counters
                .entry(name)
                .or_default()
                .fetch_add(by, Ordering::Relaxed);
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        out.push_str("# HELP shopbox_http_requests_total HTTP requests by method, route template and status.\n");
        out.push_str("# TYPE shopbox_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), n) in requests.iter() {
                let _ = writeln!(
                    out,
                    "shopbox_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                    escape(route)
                );
            }
        }
        out.push_str(
            "# HELP shopbox_http_request_duration_seconds Request latency by route template.\n",
        );
        out.push_str("# TYPE shopbox_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, h) in latency.iter() {
                let route = escape(route);
                for (i, bound) in BUCKETS.iter().enumerate() {
                    let _ = writeln!(
                        out,
                        "shopbox_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {}",
                        h.counts[i]
                    );
                }
                let _ = writeln!(
                    out,
                    "shopbox_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    h.count
                );
                let _ = writeln!(
                    out,
                    "shopbox_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    h.sum
                );
                let _ = writeln!(
                    out,
                    "shopbox_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    h.count
                );
            }
        }
        if let Ok(counters) = self.counters.lock() {
            for (name, n) in counters.iter() {
                let _ = writeln!(out, "# TYPE shopbox_{name}_total counter");
                let _ = writeln!(out, "shopbox_{name}_total {}", n.load(Ordering::Relaxed));
            }
        }
        out
    }
}

fn escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}
