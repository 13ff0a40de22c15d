//! Catalog and checkout load over loopback against the release binary, on a fresh data
//! folder seeded with `seed --demo --products N` (100,000 by default). Each scenario runs
//! a fixed number of keep-alive connections (64) for some seconds and prints throughput,
//! p50 and p99, its ratio to `/health` measured in the same run, and the server's RSS:
//!
//! - `/health` (the baseline) and the cached figures (one URL repeated: the response cache);
//! - `GET /api/products/{id}`, random ids;
//! - random pages over the whole catalog, for each sort;
//! - two-word searches whose words match about 1%, 5% and 20% of the products, random page
//!   1 to 5;
//! - random ids while 64 customers check out at a steady 300 orders/s (against the ids
//!   alone);
//! - durable checkouts (add to cart + checkout) at 64 customers, next to the fsyncs/s one
//!   writer gets from this disk, measured in the same run.
//!
//! Run: `cargo bench --bench catalog [-- SECONDS [PRODUCTS]]`.

mod support;

use std::sync::Arc;
use support::{
    fsyncs_per_second, load, random_ids, random_pages, random_search, search_total, seeded_shop,
    Buyers, Measured, Server, SEARCHES, SORTS,
};

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<f64>().ok());
    let secs = args.next().unwrap_or(5.0);
    let products = args.next().unwrap_or(100_000.0) as u64;
    let (_dir, data) = seeded_shop(products);
    let server = Server::start(&data, &[]);
    let port = server.port;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fsync_dir = data.clone();
    runtime.block_on(async {
        let mut conn = server.ready().await;
        println!("server RSS after start: {:.0} MB", server.rss_mb());
        let health = load(port, secs, Arc::new(|_| "/health".to_string())).await;
        let report = |name: &str, m: &Measured| {
            println!(
                "{name:<58} {:>8.0} req/s ({:.2} of /health)  p50 {:>6.2} ms  p99 {:>6.2} ms{}  RSS {:.0} MB",
                m.rate,
                m.rate / health.rate,
                m.p50,
                m.p99,
                if m.failures > 0 { format!("  {} not 200", m.failures) } else { String::new() },
                server.rss_mb()
            );
        };
        report("/health (baseline)", &health);

        // Uncached: every request a different URL (mostly).
        let n = products;
        let ids = load(port, secs, random_ids(n)).await;
        report("GET /api/products/{id}, random ids", &ids);
        let pages = n.div_ceil(20);
        for sort in SORTS {
            let m = load(port, secs, random_pages(n, sort)).await;
            report(&format!("list, random page of {pages}, sort={sort}"), &m);
        }
        for (name, first, second) in SEARCHES {
            let total = search_total(&mut conn, first, second).await;
            let m = load(port, secs, random_search(first, second)).await;
            report(&format!("search, {name} (e.g. {total} hits), page 1-5"), &m);
        }

        // Cached: one URL repeated, answered from the response cache after the first.
        let (_, body) = conn.get("/api/products?limit=1&page=500").await;
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let slug = v["items"][0]["slug"].as_str().unwrap_or("x").to_string();
        for (name, path) in [
            ("cached: GET /api/products (page 1)", "/api/products".to_string()),
            ("cached: GET /api/products/{slug}", format!("/api/products/{slug}")),
            ("cached: search q=teapot", "/api/products/search?q=teapot".to_string()),
        ] {
            let m = load(port, secs, Arc::new(move |_| path.clone())).await;
            report(name, &m);
        }

        // Checkouts: customers with an address, one product with ample stock.
        let buyers = Buyers::make(&mut conn, "admin@bench.test").await;
        let ports = [port];
        let (paced, during) = tokio::join!(
            buyers.checkouts(&ports, "paced", Some(300.0), secs, false),
            load(port, secs, random_ids(n))
        );
        println!(
            "{:<58} {:>8.0} req/s ({:.2} of alone, {:.2} of /health)  p50 {:>6.2} ms  p99 {:>6.2} ms  RSS {:.0} MB",
            "random ids during paced checkouts",
            during.rate,
            during.rate / ids.rate,
            during.rate / health.rate,
            during.p50,
            during.p99,
            server.rss_mb()
        );
        println!(
            "{:<58} {:>8.0} orders/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} not 201",
            "  the paced checkouts (aim 300/s)", paced.rate, paced.p50, paced.p99, paced.failures
        );
        let fsyncs = tokio::task::spawn_blocking(move || fsyncs_per_second(&fsync_dir, 2.0))
            .await
            .unwrap();
        let full = buyers.checkouts(&[port], "full", None, secs, false).await;
        println!(
            "{:<58} {:>8.0} orders/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} not 201  (this disk: {:.0} fsyncs/s for one writer; RSS {:.0} MB)",
            "durable checkouts (add + checkout), 64 customers",
            full.rate,
            full.p50,
            full.p99,
            full.failures,
            fsyncs,
            server.rss_mb()
        );
        println!("server RSS after the runs: {:.0} MB", server.rss_mb());
    });
    drop(server);
}
