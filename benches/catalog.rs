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

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{field, percentile, Conn};

const CONNECTIONS: usize = 64;
const PASSWORD: &str = "bench password 1";

fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// What one scenario measured.
struct Measured {
    rate: f64,
    p50: f64,
    p99: f64,
    failures: usize,
}

/// `CONNECTIONS` connections, each asking for `path(rng)` in a loop for `secs`.
async fn load(
    port: u16,
    secs: f64,
    path: Arc<dyn Fn(&mut StdRng) -> String + Send + Sync>,
) -> Measured {
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = StdRng::seed_from_u64(c as u64 + 1);
            let mut conn = Conn::open(port).await;
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let p = path(&mut rng);
                let start = Instant::now();
                let (status, _) = conn.get(&p).await;
                latencies.push(start.elapsed());
                if status != 200 {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.unwrap();
        all.extend(l);
        failures += f;
    }
    all.sort();
    Measured {
        rate: all.len() as f64 / secs,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        failures,
    }
}

/// Appends 4 KiB and fsyncs, as one writer, for `secs`: this disk's fsyncs per second.
fn fsyncs_per_second(dir: &std::path::Path, secs: f64) -> f64 {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        file.write_all(&block).expect("write");
        file.sync_all().expect("fsync");
        n += 1;
    }
    let _ = std::fs::remove_file(&path);
    n as f64 / start.elapsed().as_secs_f64()
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<f64>().ok());
    let secs = args.next().unwrap_or(5.0);
    let products = args.next().unwrap_or(100_000.0) as u64;
    let bin = env!("CARGO_BIN_EXE_shopbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = std::process::Command::new(bin)
            .args(args)
            .arg("--data")
            .arg(&data)
            .output()
            .expect("run shopbox");
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let started = Instant::now();
    run(&["seed", "--demo", "--products", &products.to_string()]);
    println!(
        "seeded {products} demo products in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    run(&[
        "admin",
        "create",
        "--email",
        "admin@bench.test",
        "--password",
        PASSWORD,
    ]);
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut server = std::process::Command::new(bin)
        .args(["serve", "--port", &port.to_string(), "--data"])
        .arg(&data)
        .env("SHOPBOX_RATE_LIMIT__ENABLED", "false")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let pid = server.id();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let fsync_dir = data.clone();
    runtime.block_on(async move {
        let mut conn = Conn::when_listening(port).await;
        while conn.get("/health").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("server RSS after start: {:.0} MB", rss_mb(pid));
        let health = load(port, secs, Arc::new(|_| "/health".to_string())).await;
        let report = |name: &str, m: &Measured| {
            println!(
                "{name:<58} {:>8.0} req/s ({:.2} of /health)  p50 {:>6.2} ms  p99 {:>6.2} ms{}  RSS {:.0} MB",
                m.rate,
                m.rate / health.rate,
                m.p50,
                m.p99,
                if m.failures > 0 { format!("  {} not 200", m.failures) } else { String::new() },
                rss_mb(pid)
            );
        };
        report("/health (baseline)", &health);

        // Uncached: every request a different URL (mostly).
        let n = products;
        let ids = load(port, secs, Arc::new(move |r| format!("/api/products/{}", r.gen_range(1..=n)))).await;
        report("GET /api/products/{id}, random ids", &ids);
        let pages = n.div_ceil(20);
        for sort in ["newest", "price_asc", "price_desc", "title", "rating"] {
            let m = load(port, secs, Arc::new(move |r| {
                format!("/api/products?limit=20&sort={sort}&page={}", r.gen_range(1..=pages))
            }))
            .await;
            report(&format!("list, random page of {pages}, sort={sort}"), &m);
        }
        // Words of the demo catalog by the share of products they match: a noun ~1%, an
        // adjective ~5%, a word of one description phrase ~23%.
        let nouns = ["teapot", "mug", "lamp", "notebook", "speaker", "kettle", "scarf", "wallet", "puzzle", "lantern", "journal", "basket", "sandals", "beanie", "satchel", "teacup", "saucer", "platter", "skillet", "whisk", "ladle", "apron", "trowel", "rake", "novel", "atlas", "kite", "robot", "candle", "tent"];
        let adjectives = ["red", "blue", "green", "classic", "vintage", "compact", "deluxe", "handmade", "organic", "smart"];
        let phrases = ["workshop", "regulars", "anywhere", "clean", "gift", "collection", "ships", "years"];
        for (name, first, second) in [
            ("~1% word + ~5% word", &nouns[..], &adjectives[..]),
            ("~5% word + ~20% word", &adjectives[..], &phrases[..]),
            ("~20% word + ~20% word", &phrases[..], &phrases[..]),
        ] {
            let (first, second): (Vec<&'static str>, Vec<&'static str>) = (first.to_vec(), second.to_vec());
            let (_, body) = conn.get(&format!("/api/products/search?q={}+{}&limit=1", first[0], second[1])).await;
            let total = field(&body, "total");
            let m = load(port, secs, Arc::new(move |r| {
                // A limit of 16 to 24 makes most URLs new to the response cache.
                format!(
                    "/api/products/search?q={}+{}&page={}&limit={}",
                    first[r.gen_range(0..first.len())],
                    second[r.gen_range(0..second.len())],
                    r.gen_range(1..=5),
                    r.gen_range(16..=24)
                )
            }))
            .await;
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
        let login = |email: &str| format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
        let (_, body) = conn.call_with("POST", "/api/account/login", None, "", &login("admin@bench.test")).await;
        let admin = field(&body, "access_token");
        let (_, body) = conn
            .call_with("POST", "/api/products", Some(&admin), "", r#"{"title":"Bench Lamp","price":9.99,"stock_quantity":1000000000}"#)
            .await;
        let product = field(&body, "id");
        let mut customers = Vec::new();
        for i in 0..CONNECTIONS {
            let email = format!("c{i}@bench.test");
            conn.call_with("POST", "/api/account/register", None, "", &login(&email)).await;
            let (_, body) = conn.call_with("POST", "/api/account/login", None, "", &login(&email)).await;
            let token = field(&body, "access_token");
            let (_, body) = conn
                .call_with("POST", "/api/shippings/addresses", Some(&token), "", r#"{"address_line1":"1 Way","city":"C","state":"S","postal_code":"1","country":"US"}"#)
                .await;
            customers.push((token, field(&body, "id")));
        }
        let checkouts = |rate: Option<f64>, secs: f64| {
            let customers = customers.clone();
            let product = product.clone();
            async move {
                let deadline = Instant::now() + Duration::from_secs_f64(secs);
                let mut tasks = Vec::new();
                for (c, (token, address)) in customers.into_iter().enumerate() {
                    let add = format!(r#"{{"product_id":{product},"quantity":1}}"#);
                    let checkout = format!(r#"{{"shipping_address_id":{address}}}"#);
                    tasks.push(tokio::spawn(async move {
                        let mut conn = Conn::open(port).await;
                        let mut latencies = Vec::new();
                        let mut failures = 0;
                        let mut n = 0u64;
                        // Paced: each customer orders every 64/rate s, starting staggered.
                        let every = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / r));
                        let begin = Instant::now()
                            + every.map(|e| e.mul_f64(c as f64 / CONNECTIONS as f64)).unwrap_or_default();
                        while Instant::now() < deadline {
                            if let Some(every) = every {
                                let at = begin + every * n as u32;
                                if at > deadline {
                                    break;
                                }
                                tokio::time::sleep_until(at.into()).await;
                            }
                            n += 1;
                            conn.call_with("POST", "/api/carts/add", Some(&token), "", &add).await;
                            let key = format!("Idempotency-Key: b{c}-{n}-{}\r\n", rate.unwrap_or(0.0));
                            let start = Instant::now();
                            let (status, _) = conn.call_with("POST", "/api/orders/checkout", Some(&token), &key, &checkout).await;
                            latencies.push(start.elapsed());
                            if status != 201 {
                                failures += 1;
                            }
                        }
                        (latencies, failures)
                    }));
                }
                let mut all = Vec::new();
                let mut failures = 0;
                for t in tasks {
                    let (l, f) = t.await.unwrap();
                    all.extend(l);
                    failures += f;
                }
                all.sort();
                Measured {
                    rate: all.len() as f64 / secs,
                    p50: percentile(&all, 0.5),
                    p99: percentile(&all, 0.99),
                    failures,
                }
            }
        };
        let paced = tokio::spawn(checkouts(Some(300.0), secs));
        let during = load(port, secs, Arc::new(move |r| format!("/api/products/{}", r.gen_range(1..=n)))).await;
        let orders = paced.await.unwrap();
        println!(
            "{:<58} {:>8.0} req/s ({:.2} of alone, {:.2} of /health)  p50 {:>6.2} ms  p99 {:>6.2} ms  RSS {:.0} MB",
            "random ids during paced checkouts",
            during.rate,
            during.rate / ids.rate,
            during.rate / health.rate,
            during.p50,
            during.p99,
            rss_mb(pid)
        );
        println!(
            "{:<58} {:>8.0} orders/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} not 201",
            "  the paced checkouts (aim 300/s)", orders.rate, orders.p50, orders.p99, orders.failures
        );
        let fsyncs = tokio::task::spawn_blocking(move || fsyncs_per_second(&fsync_dir, 2.0))
            .await
            .unwrap();
        let full = checkouts(None, secs).await;
        println!(
            "{:<58} {:>8.0} orders/s  p50 {:>6.2} ms  p99 {:>6.2} ms  {} not 201  (this disk: {:.0} fsyncs/s for one writer; RSS {:.0} MB)",
            "durable checkouts (add + checkout), 64 customers",
            full.rate,
            full.p50,
            full.p99,
            full.failures,
            fsyncs,
            rss_mb(pid)
        );
        println!("server RSS after the runs: {:.0} MB", rss_mb(pid));
    });
    let _ = server.kill();
    let _ = server.wait();
}
