//! The real binary under a checkout load, killed with SIGKILL at random moments (some
//! while it starts), 20 times: it always opens again, every order answered 201 is there,
//! and for every product stock plus the quantity in confirmed orders equals the start.

use crate::common;
use crate::load::{call, login};

use common::{Server, PASSWORD};
use rand::Rng;
use serde_json::json;
use std::collections::HashMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const START_STOCK: i64 = 100_000;

/// Confirmed orders' quantities by product, read through the admin API.
fn ordered_quantities(port: u16, admin: &str) -> (HashMap<u64, i64>, Vec<u64>) {
    let mut quantities = HashMap::new();
    let mut ids = Vec::new();
    let mut page = 1;
    loop {
        let (status, body) = call(
            port,
            "GET",
            &format!("/api/orders/admin/all?status=confirmed&limit=100&page={page}"),
            Some(admin),
            None,
        )
        .unwrap();
        assert_eq!(status, 200);
        for o in body["items"].as_array().unwrap() {
            ids.push(o["id"].as_u64().unwrap());
            for item in o["items"].as_array().unwrap() {
                *quantities
                    .entry(item["product_id"].as_u64().unwrap())
                    .or_default() += item["quantity"].as_i64().unwrap();
            }
        }
        if page >= body["pages"].as_u64().unwrap() {
            break;
        }
        page += 1;
    }
    (quantities, ids)
}

#[test]
fn kill_9_under_checkout_load_loses_no_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let out = Command::new(common::binary())
        .args([
            "admin",
            "create",
            "--email",
            "admin@example.com",
            "--password",
            PASSWORD,
            "--data",
        ])
        .arg(data)
        .output()
        .unwrap();
    assert!(out.status.success());

    let mut server = Server::start_logging(data, &["--address", "127.0.0.1"], "error");
    server.wait_ready();
    let port = server.port;
    let admin = login(port, "admin@example.com");
    let mut products = Vec::new();
    for i in 0..3 {
        let (status, p) = call(
            port,
            "POST",
            "/api/products",
            Some(&admin),
            Some(
                json!({"title": format!("Item {i}"), "price": 1.5, "stock_quantity": START_STOCK}),
            ),
        )
        .unwrap();
        assert_eq!(status, 201, "{p}");
        products.push(p["id"].as_u64().unwrap());
    }
    let mut customers = Vec::new();
    for i in 0..6 {
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
        let (_, a) = call(port, "POST", "/api/shippings/addresses", Some(&token),
            Some(json!({"address_line1": "1 Way", "city": "C", "state": "S", "postal_code": "1", "country": "US"}))).unwrap();
        customers.push((token, a["id"].as_u64().unwrap()));
    }

    let acknowledged: Arc<Mutex<Vec<u64>>> = Arc::default();
    let mut rng = rand::thread_rng();
    for round in 0..20 {
        if round > 0 {
            server = Server::start_logging(data, &[], "error");
            if round % 5 == 0 {
                // Kill while it starts (sled writes its snapshot while opening).
                std::thread::sleep(Duration::from_millis(rng.gen_range(0..60)));
                server.kill();
                server = Server::start_logging(data, &[], "error");
            }
            server.wait_ready();
        }
        let port = server.port;
        let stop = Arc::new(AtomicBool::new(false));
        let mut workers = Vec::new();
        for (n, (token, address)) in customers.iter().cloned().enumerate() {
            let (stop, acknowledged, products) = (
                Arc::clone(&stop),
                Arc::clone(&acknowledged),
                products.clone(),
            );
            workers.push(std::thread::spawn(move || {
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    i += 1;
                    let product = products[i % products.len()];
                    if call(
                        port,
                        "POST",
                        "/api/carts/add",
                        Some(&token),
                        Some(json!({"product_id": product, "quantity": 1 + i % 3})),
                    )
                    .is_none()
                    {
                        return;
                    }
                    match call(
                        port,
                        "POST",
                        "/api/orders/checkout",
                        Some(&token),
                        Some(json!({"shipping_address_id": address})),
                    ) {
                        Some((201, body)) => acknowledged
                            .lock()
                            .unwrap()
                            .push(body["id"].as_u64().unwrap()),
                        Some(_) => {}
                        None => return,
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(150..600)));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for w in workers {
            w.join().unwrap();
        }
    }

    let mut server = Server::start_logging(data, &[], "error");
    server.wait_ready();
    let port = server.port;
    let admin = login(port, "admin@example.com");
    let (quantities, confirmed) = ordered_quantities(port, &admin);
    let acknowledged = acknowledged.lock().unwrap().clone();
    assert!(
        acknowledged.len() >= 20,
        "only {} checkouts were answered",
        acknowledged.len()
    );
    for id in &acknowledged {
        assert!(
            confirmed.contains(id),
            "order {id} was answered 201 but is gone"
        );
    }
    for product in &products {
        let (_, p) = call(port, "GET", &format!("/api/products/{product}"), None, None).unwrap();
        let stock = p["stock_quantity"].as_i64().unwrap();
        assert_eq!(
            stock + quantities.get(product).copied().unwrap_or(0),
            START_STOCK,
            "product {product}"
        );
    }
    eprintln!(
        "{} checkouts answered 201 across 20 kills; all present",
        acknowledged.len()
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
