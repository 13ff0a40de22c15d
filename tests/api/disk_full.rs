//! A database flush that fails (a full disk, an I/O error; here injected through the
//! hidden `test_fail_flush_when` seam, which makes every flush fail once a file exists,
//! and keeps what was written since the last flush in memory only, as a full disk does).
//! The writer that waited for it gets a clean 503, every later answer is that 503 with
//! `/health` included, the real binary says why in one line and exits with a failure
//! status, and after a restart the write that failed is gone for everyone.

use crate::common;

use common::{add, address, admin, checkout, customer, http, new_product, send, PASSWORD};
use rocket::http::{Method, Status};
use serde_json::{json, Value};
use std::io::Read;
use std::process::Command;

const UNWRITABLE: &str = "the database could not write to disk; restarting";

#[rocket::async_test]
async fn after_a_failed_flush_every_answer_is_503_and_nothing_more_is_written() {
    if common::sled_only("after_a_failed_flush_every_answer_is_503_and_nothing_more_is_written") {
        return;
    }
    let fail = tempfile::tempdir().unwrap();
    let trigger = fail.path().join("fail");
    let trigger_for_config = trigger.clone();
    let t = common::app_with(
        move |c| c.test_fail_flush_when = Some(trigger_for_config),
        |r| r,
    )
    .await;
    let admin = admin(&t, "admin@example.com").await;
    let product = new_product(&t, &admin, "Lamp", 10.0, 5).await;
    let token = customer(&t, "ann@example.com").await;
    let address = address(&t, &token).await;
    let (status, _) = add(&t, &token, product, 2).await;
    assert_eq!(status, Status::Created);

    std::fs::write(&trigger, b"").unwrap();
    let (status, body) = checkout(&t, &token, json!({"shipping_address_id": address})).await;
    assert_eq!(status, Status::ServiceUnavailable, "{body}");
    assert_eq!(body, json!({"detail": UNWRITABLE}));

    // Nobody reads what failed: the buyer, the catalog, the admin, the health check.
    for (path, who) in [
        ("/api/orders", Some(token.as_str())),
        ("/api/carts", Some(token.as_str())),
        (&format!("/api/products/{product}") as &str, None),
        ("/api/orders/admin/all", Some(admin.as_str())),
        ("/health", None),
    ] {
        let (status, body) = send(&t, Method::Get, path, who, None).await;
        assert_eq!(status, Status::ServiceUnavailable, "{path}: {body}");
        assert_eq!(body, json!({"detail": UNWRITABLE}), "{path}");
    }
    // Writes are refused even once the disk would take them again.
    std::fs::remove_file(&trigger).unwrap();
    let (status, body) = add(&t, &token, product, 1).await;
    assert_eq!(status, Status::ServiceUnavailable, "{body}");
    let db = common::sled(&t);
    assert!(db.failure().is_some());
    assert!(
        db.durable().await.is_err(),
        "no flush runs after a failed one"
    );
}

/// The real binary: `(status, body)` of a request, `None` once it no longer answers.
fn call(
    port: u16,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> Option<(u16, Value)> {
    let auth = format!("Bearer {token}");
    let mut headers = vec![("Content-Type", "application/json")];
    if !token.is_empty() {
        headers.push(("Authorization", auth.as_str()));
    }
    let body = body.map(|b| b.to_string()).unwrap_or_default();
    let (status, _, text) = http(port, method, path, &headers, &body).ok()?;
    if status == 0 {
        return None;
    }
    Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
}

fn login(port: u16, email: &str) -> String {
    let body = json!({"email": email, "password": PASSWORD});
    let (status, body) = call(port, "POST", "/api/account/login", "", Some(body)).unwrap();
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

#[test]
fn the_binary_stops_with_a_failure_status_and_restarts_from_what_is_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let trigger = dir.path().join("fail");
    let out = Command::new(common::binary())
        .args(["admin", "create", "--email", "admin@example.com"])
        .args(["--password", PASSWORD, "--data"])
        .arg(&data)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let env = [(
        "SHOPBOX_TEST_FAIL_FLUSH_WHEN",
        trigger.display().to_string(),
    )];
    let mut server = common::Server::start_with_env(&data, &[], "warn", &env);
    server.wait_ready();
    let port = server.port;

    let admin = login(port, "admin@example.com");
    let body = json!({"title": "Lamp", "price": 10.0, "stock_quantity": 5});
    let (status, p) = call(port, "POST", "/api/products", &admin, Some(body)).unwrap();
    assert_eq!(status, 201, "{p}");
    let product = p["id"].as_u64().unwrap();
    let body = json!({"email": "ann@example.com", "password": PASSWORD});
    let (status, _) = call(port, "POST", "/api/account/register", "", Some(body)).unwrap();
    assert_eq!(status, 201);
    let token = login(port, "ann@example.com");
    let body = json!({"address_line1": "1 Main St", "city": "Town", "state": "ST",
        "postal_code": "12345", "country": "US"});
    let (status, a) = call(port, "POST", "/api/shippings/addresses", &token, Some(body)).unwrap();
    assert_eq!(status, 201, "{a}");
    let body = json!({"product_id": product, "quantity": 2});
    let (status, _) = call(port, "POST", "/api/carts/add", &token, Some(body)).unwrap();
    assert_eq!(status, 201);

    std::fs::write(&trigger, b"").unwrap();
    let body = json!({"shipping_address_id": a["id"]});
    let (status, answer) = call(port, "POST", "/api/orders/checkout", &token, Some(body)).unwrap();
    assert_eq!(status, 503, "{answer}");
    assert_eq!(answer, json!({"detail": UNWRITABLE}));
    // Until it has stopped, whatever still answers is that 503, never the order.
    for (path, who) in [("/api/orders", token.as_str()), ("/health", "")] {
        if let Some((status, body)) = call(port, "GET", path, who, None) {
            assert_eq!(
                (status, body),
                (503, json!({"detail": UNWRITABLE})),
                "{path}"
            );
        }
    }

    let exit = server.child.wait().unwrap();
    assert!(
        !exit.success(),
        "a stop for a restart must be a failure: {exit}"
    );
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let errors: Vec<&str> = log.lines().filter(|l| l.contains("ERROR")).collect();
    assert_eq!(errors.len(), 1, "one ERROR line says why: {log}");
    assert!(
        errors[0].contains("could not write to disk") && errors[0].contains("restart"),
        "{log}"
    );

    std::fs::remove_file(&trigger).unwrap();
    let mut server = common::Server::start(&data, &[]);
    server.wait_ready();
    let port = server.port;
    let token = login(port, "ann@example.com");
    let (status, orders) = call(port, "GET", "/api/orders", &token, None).unwrap();
    assert_eq!(status, 200, "{orders}");
    assert_eq!(orders["items"], json!([]), "the order that failed is gone");
    let (status, p) = call(port, "GET", &format!("/api/products/{product}"), "", None).unwrap();
    assert_eq!(
        (status, p["stock_quantity"].as_i64()),
        (200, Some(5)),
        "stock is back"
    );
    let (status, cart) = call(port, "GET", "/api/carts", &token, None).unwrap();
    assert_eq!(status, 200, "{cart}");
    assert_eq!(
        cart["items"].as_array().map(Vec::len),
        Some(1),
        "the cart is as it was: {cart}"
    );
}
