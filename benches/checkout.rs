//! Checkout benchmark over loopback against the release binary: 64 customers, each
//! looping add-to-cart (quantity 1 of a product with ample stock) and checkout with an
//! `Idempotency-Key` of its own, as a client that retries safely sends; then
//! `GET /api/carts` at 64 connections. It also reports the database writes and flushes
//! per order, from `/metrics`, and the fsyncs/s one writer gets from the same disk just
//! before the load. Run: `cargo bench --bench checkout [-- SECONDS]`.

mod support;

use std::time::{Duration, Instant};
use support::{counter, field, fsyncs_per_second, percentile, Conn};

const CUSTOMERS: usize = 64;
const PASSWORD: &str = "bench password 1";

fn main() {
    let secs: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(10);
    let bin = env!("CARGO_BIN_EXE_shopbox");
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    support::shopbox(&[
        "admin",
        "create",
        "--email",
        "admin@bench.test",
        "--password",
        PASSWORD,
        "--data",
        &data.to_string_lossy(),
    ]);
    let mut server = std::process::Command::new(bin)
        .args(["serve", "--port", &port.to_string(), "--data"])
        .arg(&data)
        .env("SHOPBOX_RATE_LIMIT__ENABLED", "false")
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let mut conn = Conn::when_listening(port).await;
        let login = |email: String| format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
        let (_, body) = conn.call("POST", "/api/account/login", None, &login("admin@bench.test".into())).await;
        let admin = field(&body, "access_token");
        let (_, body) = conn.call("POST", "/api/products", Some(&admin), r#"{"title":"Bench Lamp","price":9.99,"stock_quantity":1000000000}"#).await;
        let product = field(&body, "id");
        let mut customers = Vec::new();
        for i in 0..CUSTOMERS {
            let email = format!("c{i}@bench.test");
            conn.call("POST", "/api/account/register", None, &login(email.clone())).await;
            let (_, body) = conn.call("POST", "/api/account/login", None, &login(email)).await;
            let token = field(&body, "access_token");
            let (_, body) = conn
                .call("POST", "/api/shippings/addresses", Some(&token), r#"{"address_line1":"1 Way","city":"C","state":"S","postal_code":"1","country":"US"}"#)
                .await;
            customers.push((token, field(&body, "id")));
        }

        let probe = data.clone();
        let fsyncs = tokio::task::spawn_blocking(move || fsyncs_per_second(&probe, 2.0))
            .await
            .expect("fsync probe");
        let (_, before) = conn.call("GET", "/metrics", None, "").await;
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for (customer, (token, address)) in customers.clone().into_iter().enumerate() {
            let add = format!(r#"{{"product_id":{product},"quantity":1}}"#);
            let checkout = format!(r#"{{"shipping_address_id":{address}}}"#);
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut latencies = Vec::new();
                let mut failures = 0;
                let mut n = 0;
                while Instant::now() < deadline {
                    conn.call("POST", "/api/carts/add", Some(&token), &add).await;
                    n += 1;
                    let key = format!("Idempotency-Key: c{customer}-{n}\r\n");
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
        let (_, after) = conn.call("GET", "/metrics", None, "").await;
        let per_order = |name: &str| {
            (counter(&after, name) - counter(&before, name)) as f64 / all.len().max(1) as f64
        };
        println!(
            "per order (add to cart + checkout): {:.2} database writes, {:.2} flushes (fsyncs)",
            per_order("shopbox_db_writes_total"),
            per_order("shopbox_db_flushes_total")
        );
        let rate = all.len() as f64 / secs as f64;
        println!(
            "checkout: {} orders in {secs} s = {rate:.0} orders/s (64 customers, add + checkout each), p50 {:.2} ms, p99 {:.2} ms, {failures} not 201",
            all.len(),
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
        println!(
            "this disk, same run: {fsyncs:.0} fsyncs/s for one writer (4 KiB append + fsync); {:.2} orders per fsync",
            rate / fsyncs
        );

        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut tasks = Vec::new();
        for (token, _) in customers {
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut latencies = Vec::new();
                while Instant::now() < deadline {
                    let start = Instant::now();
                    conn.call("GET", "/api/carts", Some(&token), "").await;
                    latencies.push(start.elapsed());
                }
                latencies
            }));
        }
        let mut all = Vec::new();
        for t in tasks {
            all.extend(t.await.unwrap());
        }
        all.sort();
        println!(
            "GET /api/carts: {:.0} req/s at 64 connections, p50 {:.2} ms, p99 {:.2} ms",
            all.len() as f64 / secs as f64,
            percentile(&all, 0.5),
            percentile(&all, 0.99)
        );
    });
    let _ = server.kill();
    let _ = server.wait();
}
