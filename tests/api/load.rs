//! A checkout load against the real binary, shared by the tests that stop, kill or back
//! up a server while customers buy: a stocked shop, and customers looping add-to-cart
//! and checkout over HTTP, recording every answer.

use crate::common;

use common::{http, PASSWORD};
use serde_json::{json, Value};
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::SystemTime;

/// One request; `None` when the connection failed (refused, reset, or no answer).
pub fn call(
    port: u16,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let auth = token.map(|t| format!("Bearer {t}"));
    let mut headers = vec![("Content-Type", "application/json")];
    if let Some(a) = &auth {
        headers.push(("Authorization", a.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, text) = http(port, method, path, &headers, &body).ok()?;
    if status == 0 {
        return None;
    }
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

pub fn login(port: u16, email: &str) -> String {
    let (status, body) = call(
        port,
        "POST",
        "/api/account/login",
        None,
        Some(json!({"email": email, "password": PASSWORD})),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

pub const ADMIN: &str = "admin@example.com";

/// Creates the admin `ADMIN` with the CLI (no server may hold the folder).
pub fn create_admin(data: &Path) {
    let out = Command::new(common::binary())
        .args(["admin", "create", "--email", ADMIN, "--password", PASSWORD])
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

/// Products to buy and customers (access token, address id) to buy them.
pub struct Shop {
    pub products: Vec<u64>,
    pub customers: Vec<(String, u64)>,
}

/// Creates `products` products of `stock` each and `customers` customers with an address.
pub fn stock(port: u16, products: usize, stock: i64, customers: usize) -> Shop {
    let admin = login(port, ADMIN);
    let mut shop = Shop {
        products: Vec::new(),
        customers: Vec::new(),
    };
    for i in 0..products {
        let (status, p) = call(
            port,
            "POST",
            "/api/products",
            Some(&admin),
            Some(json!({"title": format!("Item {i}"), "price": 1.5, "stock_quantity": stock})),
        )
        .unwrap();
        assert_eq!(status, 201, "{p}");
        shop.products.push(p["id"].as_u64().unwrap());
    }
    for i in 0..customers {
        let email = format!("c{i}@example.com");
        call(
            port,
            "POST",
            "/api/account/register",
            None,
            Some(json!({"email": email, "password": PASSWORD})),
        )
        .unwrap();
        let token = login(port, &email);
        let (_, a) = call(
            port,
            "POST",
            "/api/shippings/addresses",
            Some(&token),
            Some(json!({"address_line1": "1 Way", "city": "C", "state": "S", "postal_code": "1", "country": "US"})),
        )
        .unwrap();
        shop.customers.push((token, a["id"].as_u64().unwrap()));
    }
    shop
}

/// Orders answered 201, with when the answer came.
pub type Acknowledged = Vec<(u64, SystemTime)>;
/// Every answer: `(what, status)`, what being "add" or "checkout".
pub type Answers = Vec<(&'static str, u16)>;

/// Customers looping add-to-cart and checkout until stopped or their connection fails.
pub struct Load {
    stop: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    pub acknowledged: Arc<Mutex<Acknowledged>>,
    pub answers: Arc<Mutex<Answers>>,
}

impl Load {
    pub fn start(port: u16, shop: &Shop) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let acknowledged: Arc<Mutex<Acknowledged>> = Arc::default();
        let answers: Arc<Mutex<Answers>> = Arc::default();
        let mut workers = Vec::new();
        for (n, (token, address)) in shop.customers.iter().cloned().enumerate() {
            let (stop, acknowledged, answers, products) = (
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
                Arc::clone(&answers),
                shop.products.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let product = products[i % products.len()];
                    let add = json!({"product_id": product, "quantity": 1 + i % 3});
                    let Some((status, _)) =
                        call(port, "POST", "/api/carts/add", Some(&token), Some(add))
                    else {
                        return;
                    };
                    answers.lock().unwrap().push(("add", status));
                    let checkout = json!({"shipping_address_id": address});
                    let Some((status, body)) = call(
                        port,
                        "POST",
                        "/api/orders/checkout",
                        Some(&token),
                        Some(checkout),
                    ) else {
                        return;
                    };
                    answers.lock().unwrap().push(("checkout", status));
                    if status == 201 {
                        acknowledged
                            .lock()
                            .unwrap()
                            .push((body["id"].as_u64().unwrap(), SystemTime::now()));
                    }
                }
            }));
        }
        Load {
            stop,
            workers,
            acknowledged,
            answers,
        }
    }

    /// Stops the customers (or waits for them, once the server is gone).
    pub fn finish(self) -> (Acknowledged, Answers) {
        self.stop.store(true, Ordering::Relaxed);
        for w in self.workers {
            w.join().unwrap();
        }
        let acknowledged = self.acknowledged.lock().unwrap().clone();
        let answers = self.answers.lock().unwrap().clone();
        (acknowledged, answers)
    }

    /// How many orders were acknowledged so far.
    pub fn orders(&self) -> usize {
        self.acknowledged.lock().unwrap().len()
    }
}
