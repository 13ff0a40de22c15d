//! The real binary under a checkout load, killed with SIGKILL at random moments (some
//! while it starts), round after round until a scarce product has sold out and some
//! rounds have fought over it since. Each checkout carries content the client chose (its
//! `Idempotency-Key` and a fresh address whose first line is the same tag), so every
//! order answered 201 is found again by that content, with its id, items and total, and
//! its key still replays the same answer. Stock never goes below 0, and for every
//! product stock plus the quantity in confirmed orders equals the start.
//!
//! Every random choice comes from one seed, printed at the start; `SHOPBOX_TEST_SEED`
//! replays it. Nothing waits a fixed time for progress: a round kills the server after a
//! random number of acknowledged checkouts, each awaited with a generous bound.

use crate::common;

use common::{http, seeded_rng, Server, PASSWORD};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

const PLENTY_STOCK: i64 = 100_000;
const PLENTY_PRICE: f64 = 1.5;
const SCARCE_STOCK: i64 = 60;
const SCARCE_PRICE: f64 = 2.25;
const CUSTOMERS: usize = 6;
/// Rounds at least, and rounds after the scarce product sold out.
const MIN_ROUNDS: usize = 20;
const ROUNDS_AFTER_SOLD_OUT: usize = 3;
const MAX_ROUNDS: usize = 80;
/// How long to wait for the next acknowledged checkout before calling the server stuck.
const STALLED: Duration = Duration::from_secs(120);

/// `(status, headers with lower-case names, body)`.
type Reply = (u16, Vec<(String, String)>, Value);

/// The reply to a request, or `None` when no complete answer came (the
/// server was killed).
fn call_full(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    key: Option<&str>,
    body: Option<&Value>,
) -> Option<Reply> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Content-Type", "application/json")];
    if !token.is_empty() {
        headers.push(("Authorization", auth.as_str()));
    }
    if let Some(k) = key {
        headers.push(("Idempotency-Key", k));
    }
    let body = body.map(Value::to_string).unwrap_or_default();
    let (status, headers, text) = http(port, method, path, &headers, &body).ok()?;
    if status == 0 {
        return None;
    }
    let value = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).ok()?
    };
    Some((status, headers, value))
}

fn call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    call_full(port, method, path, token, None, body.as_ref()).map(|(s, _, v)| (s, v))
}

fn login(port: u16, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD});
    let (status, body) = call(port, "POST", "/api/account/login", "", Some(body)).unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

fn stock_of(port: u16, product: u64) -> i64 {
    let (status, p) = call(port, "GET", &format!("/api/products/{product}"), "", None).unwrap();
    assert_eq!(status, 200, "{p}");
    p["stock_quantity"].as_i64().unwrap()
}

/// A checkout answered 201, as the client saw it.
struct Ack {
    tag: String,
    token: String,
    address_id: u64,
    answer: Value,
}

/// Every order, read through the admin API.
fn all_orders(port: u16, admin: &str) -> Vec<Value> {
    let mut orders = Vec::new();
    let mut page = 1;
    loop {
        let path = format!("/api/orders/admin/all?limit=100&page={page}");
        let (status, body) = call(port, "GET", &path, admin, None).unwrap();
        assert_eq!(status, 200, "{body}");
        orders.extend(body["items"].as_array().unwrap().iter().cloned());
        if page >= body["pages"].as_u64().unwrap() {
            return orders;
        }
        page += 1;
    }
}

fn empty_cart(port: u16, token: &str) -> Option<()> {
    let (status, cart) = call(port, "GET", "/api/carts", token, None)?;
    assert_eq!(status, 200, "{cart}");
    for item in cart["items"].as_array().unwrap() {
        let path = format!("/api/carts/delete/{}", item["id"]);
        let (status, body) = call(port, "DELETE", &path, token, None)?;
        assert_eq!(status, 204, "{body}");
    }
    Some(())
}

/// One customer's checkouts until the server goes away: a fresh address tagged
/// `r<round>-w<worker>-<n>`, some of the plentiful product and maybe of the scarce one,
/// and a checkout with the tag as its `Idempotency-Key`.
#[allow(clippy::too_many_arguments)]
fn shop(
    port: u16,
    round: usize,
    worker: usize,
    token: &str,
    (plenty, scarce): (u64, u64),
    seed: u64,
    stop: &AtomicBool,
    acks: &mpsc::Sender<Ack>,
) -> Option<()> {
    let mut rng = StdRng::seed_from_u64(seed);
    empty_cart(port, token)?;
    let mut n = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let tag = format!("r{round}-w{worker}-{n}");
        let address = json!({"address_line1": tag, "city": "C", "state": "S",
            "postal_code": "1", "country": "US"});
        let (status, address) = call(
            port,
            "POST",
            "/api/shippings/addresses",
            token,
            Some(address),
        )?;
        assert_eq!(status, 201, "{address}");
        let address_id = address["id"].as_u64().unwrap();
        let line = json!({"product_id": plenty, "quantity": rng.gen_range(1..=3)});
        let (status, body) = call(port, "POST", "/api/carts/add", token, Some(line))?;
        assert_eq!(status, 201, "{body}");
        let scarce_quantity = rng.gen_range(0..=2);
        if scarce_quantity > 0 {
            let line = json!({"product_id": scarce, "quantity": scarce_quantity});
            let (status, body) = call(port, "POST", "/api/carts/add", token, Some(line))?;
            assert!(status == 201 || status == 409, "{status} {body}");
        }
        let body = json!({"shipping_address_id": address_id});
        let (status, _, answer) = call_full(
            port,
            "POST",
            "/api/orders/checkout",
            token,
            Some(&tag),
            Some(&body),
        )?;
        match status {
            201 => {
                let ack = Ack {
                    tag,
                    token: token.to_string(),
                    address_id,
                    answer,
                };
                if acks.send(ack).is_err() {
                    return None;
                }
            }
            // Another customer took the last of the scarce product meanwhile.
            409 => empty_cart(port, token)?,
            _ => panic!("checkout {tag}: {status} {answer}"),
        }
    }
    Some(())
}

#[test]
fn kill_9_under_checkout_load_loses_no_acknowledged_order() {
    let (seed, mut rng) = seeded_rng("crash_checkout");
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = Command::new(common::binary())
        .args(["admin", "create", "--email", "admin@example.com"])
        .args(["--password", PASSWORD, "--data"])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success());

    let mut server = Server::start_logging(data, &["--address", "127.0.0.1"], "error");
    server.wait_ready();
    let port = server.port;
    let admin = login(port, "admin@example.com");
    let product = |title: &str, price: f64, stock: i64| {
        let body = json!({"title": title, "price": price, "stock_quantity": stock});
        let (status, p) = call(port, "POST", "/api/products", &admin, Some(body)).unwrap();
        assert_eq!(status, 201, "{p}");
        p["id"].as_u64().unwrap()
    };
    let products = (
        product("Plenty", PLENTY_PRICE, PLENTY_STOCK),
        product("Scarce", SCARCE_PRICE, SCARCE_STOCK),
    );
    let (plenty, scarce) = products;
    let start_stock = HashMap::from([(plenty, PLENTY_STOCK), (scarce, SCARCE_STOCK)]);
    let price = HashMap::from([(plenty, PLENTY_PRICE), (scarce, SCARCE_PRICE)]);
    let mut customers = Vec::new();
    for i in 0..CUSTOMERS {
        let email = format!("c{i}@example.com");
        let body = json!({"email": email, "password": PASSWORD});
        let (status, _) = call(port, "POST", "/api/account/register", "", Some(body)).unwrap();
        assert_eq!(status, 201);
        customers.push(login(port, &email));
    }

    let mut acks: Vec<Ack> = Vec::new();
    let mut sold_out_in = None;
    let mut round = 0;
    loop {
        if round > 0 {
            server = Server::start_logging(data, &[], "error");
            if rng.gen_ratio(1, 4) {
                // Kill while it starts (sled writes its snapshot while opening).
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..60)));
                server.kill();
                server = Server::start_logging(data, &[], "error");
            }
            server.wait_ready();
        }
        let port = server.port;
        let left = stock_of(port, scarce);
        assert!((0..=SCARCE_STOCK).contains(&left), "scarce stock {left}");
        if left == 0 && sold_out_in.is_none() {
            sold_out_in = Some(round);
        }
        if round >= MIN_ROUNDS && sold_out_in.is_some_and(|r| round >= r + ROUNDS_AFTER_SOLD_OUT) {
            break;
        }
        assert!(
            round < MAX_ROUNDS,
            "the scarce product still has {left} after {MAX_ROUNDS} rounds"
        );

        let stop = Arc::new(AtomicBool::new(false));
        let (send, acked) = mpsc::channel();
        let mut workers = Vec::new();
        for (worker, token) in customers.iter().cloned().enumerate() {
            let (stop, send, seed) = (Arc::clone(&stop), send.clone(), rng.gen::<u64>());
            workers.push(std::thread::spawn(move || {
                shop(port, round, worker, &token, products, seed, &stop, &send);
            }));
        }
        drop(send);
        // Kill after a random number of acknowledged checkouts, a moment later.
        for _ in 0..rng.gen_range(1..=25) {
            let ack = acked
                .recv_timeout(STALLED)
                .unwrap_or_else(|e| panic!("round {round}: no checkout answered 201: {e}"));
            acks.push(ack);
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(0..20)));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().expect("a customer met an unexpected answer");
        }
        acks.extend(acked.try_iter());
        round += 1;
    }

    // The server of the last round is up: everything acknowledged must be there.
    let port = server.port;
    let admin = login(port, "admin@example.com");
    let orders = all_orders(port, &admin);
    let mut by_tag: HashMap<String, &Value> = HashMap::new();
    for o in &orders {
        let tag = o["shipping_address"]["address_line1"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            by_tag.insert(tag.clone(), o).is_none(),
            "two orders for {tag}"
        );
    }
    for ack in &acks {
        let order = by_tag
            .get(&ack.tag)
            .unwrap_or_else(|| panic!("order {} was answered 201 but is gone", ack.tag));
        assert_eq!(order["id"], ack.answer["id"], "{}", ack.tag);
        assert_eq!(order["status"], "confirmed", "{}", ack.tag);
        assert_eq!(order["items"], ack.answer["items"], "{}", ack.tag);
        assert_eq!(
            order["total_price"], ack.answer["total_price"],
            "{}",
            ack.tag
        );
        let total: f64 = order["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| {
                i["quantity"].as_i64().unwrap() as f64 * price[&i["product_id"].as_u64().unwrap()]
            })
            .sum();
        assert_eq!(order["total_price"].as_f64(), Some(total), "{}", ack.tag);
        // Its key still answers what the client was told.
        let body = json!({"shipping_address_id": ack.address_id});
        let (status, headers, replay) = call_full(
            port,
            "POST",
            "/api/orders/checkout",
            &ack.token,
            Some(&ack.tag),
            Some(&body),
        )
        .unwrap();
        assert_eq!(status, 201, "{}: {replay}", ack.tag);
        assert!(
            headers.contains(&("idempotent-replayed".into(), "true".into())),
            "{}: {headers:?}",
            ack.tag
        );
        assert_eq!(replay, ack.answer, "{}", ack.tag);
    }
    let mut sold: HashMap<u64, i64> = HashMap::new();
    for o in orders.iter().filter(|o| o["status"] == "confirmed") {
        for item in o["items"].as_array().unwrap() {
            *sold
                .entry(item["product_id"].as_u64().unwrap())
                .or_default() += item["quantity"].as_i64().unwrap();
        }
    }
    for (product, start) in &start_stock {
        let left = stock_of(port, *product);
        assert!(left >= 0, "product {product}: stock {left}");
        assert_eq!(
            left + sold.get(product).copied().unwrap_or(0),
            *start,
            "product {product}"
        );
    }
    assert_eq!(stock_of(port, scarce), 0);
    eprintln!(
        "seed {seed}: {} checkouts answered 201 across {round} kills, all present; the scarce \
         product sold out in round {}",
        acks.len(),
        sold_out_in.unwrap_or_default()
    );
    // Stop the server (it holds the folder) and check every index against its records.
    server.kill();
    let out = Command::new(common::binary())
        .arg("check")
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
