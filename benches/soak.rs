//! Soak benchmark: memory over a long run, against the release binary on a fresh data
//! folder. 64 customers loop add-to-cart and checkout (each with its own
//! `Idempotency-Key`); every 10,000 orders it prints the server's resident memory (VmRSS
//! from /proc/PID/status, with its anonymous and file-backed parts), then the same after
//! a minute with no requests. Memory should level off near `cache_capacity_mb` plus a
//! fixed base, not grow with the number of orders.
//!
//! Run: `cargo bench --bench soak [-- ORDERS [CACHE_MB [IDLE_SECS]]]` (default 200000 orders,
//! the default cache of 64 MiB, 60 s idle). Linux only (/proc).

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{field, Conn};

const CUSTOMERS: usize = 64;
const PASSWORD: &str = "bench password 1";
const EVERY: u64 = 10_000;

/// `VmRSS, RssAnon, RssFile` of a process, in MiB.
fn rss(pid: u32) -> (f64, f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kib = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (kib("VmRSS:"), kib("RssAnon:"), kib("RssFile:"))
}

fn report(label: &str, pid: u32) {
    let (total, anon, file) = rss(pid);
    println!("{label:>18}  VmRSS {total:7.1} MiB  (anon {anon:7.1}, file {file:5.1})");
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<u64>().ok());
    let orders = args.next().unwrap_or(200_000);
    let cache_mb = args.next().unwrap_or(64);
    let idle_secs = args.next().unwrap_or(60);
    // `SHOPBOX_BIN` runs another build of the server (say, a release binary built
    // without the bench profile's dev-dependencies).
    let bin = std::env::var("SHOPBOX_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_shopbox").into());
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    // The server refuses unknown SHOPBOX_* variables: `SHOPBOX_BIN` is the bench's own.
    let ok = std::process::Command::new(&bin)
        .env_remove("SHOPBOX_BIN")
        .args(["admin", "create", "--email", "admin@bench.test"])
        .args(["--password", PASSWORD, "--data"])
        .arg(&data)
        .output()
        .expect("admin create")
        .status
        .success();
    assert!(ok);
    let mut server = std::process::Command::new(&bin)
        .env_remove("SHOPBOX_BIN")
        .args(["serve", "--port", &port.to_string(), "--data"])
        .arg(&data)
        .env("SHOPBOX_RATE_LIMIT__ENABLED", "false")
        .env("SHOPBOX_CACHE_CAPACITY_MB", cache_mb.to_string())
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("serve");
    let pid = server.id();
    println!("soak: {orders} orders, 64 customers, cache_capacity_mb = {cache_mb}");
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
        let (_, body) = conn.call("POST", "/api/products", Some(&admin), r#"{"title":"Soak Lamp","price":9.99,"stock_quantity":1000000000}"#).await;
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
        report("after set-up", pid);

        let done = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for (customer, (token, address)) in customers.into_iter().enumerate() {
            let add = format!(r#"{{"product_id":{product},"quantity":1}}"#);
            let checkout = format!(r#"{{"shipping_address_id":{address}}}"#);
            let (done, failures) = (Arc::clone(&done), Arc::clone(&failures));
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut n = 0;
                while done.load(Ordering::Relaxed) < orders {
                    conn.call("POST", "/api/carts/add", Some(&token), &add).await;
                    n += 1;
                    let key = format!("Idempotency-Key: c{customer}-{n}\r\n");
                    let (status, _) = conn.call_with("POST", "/api/orders/checkout", Some(&token), &key, &checkout).await;
                    if status != 201 {
                        failures.fetch_add(1, Ordering::Relaxed);
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                }
            }));
        }
        let mut next = EVERY;
        while next <= orders {
            if done.load(Ordering::Relaxed) >= next {
                report(&format!("{next} orders"), pid);
                next += EVERY;
            } else {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let secs = start.elapsed().as_secs_f64();
        let total = done.load(Ordering::Relaxed);
        println!(
            "{total} orders in {secs:.0} s = {:.0} orders/s, {} not 201",
            total as f64 / secs,
            failures.load(Ordering::Relaxed)
        );
        tokio::time::sleep(Duration::from_secs(idle_secs)).await;
        report(&format!("after {idle_secs} s idle"), pid);
    });
    // A clean stop, so that what the server prints when it ends (with
    // `MIMALLOC_SHOW_STATS=1`, the allocator's own figures) is seen.
    // SAFETY: kill with a pid and a signal number touches no memory.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let _ = server.wait();
}
