//! Two shopbox instances serving from one PostgreSQL database (`SHOPBOX_TEST_PG_URL`, by
//! default the local server), whatever `SHOPBOX_TEST_BACKEND` says: what one writes the
//! other reads, and a write through one drops the other's cached answers.

use crate::common::*;
use rocket::http::{Method, Status};
use serde_json::json;
use std::time::Duration;

/// Waits until `t` has heard of a write after `version` (the notification travels
/// through the database); at most a few seconds, then the test fails.
async fn heard_after(t: &TestApp, version: u64) {
    for _ in 0..500 {
        if state(t).db.version() > version {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the other instance never heard of the write");
}

#[rocket::async_test]
async fn two_instances_share_orders_sessions_and_prices() {
    let schema = PgSchema::new().await;
    let one = app_on_pg(&schema.url).await;
    let two = app_on_pg(&schema.url).await;

    // Tokens issued by one are good on the other: the secret is the database's.
    let admin_token = admin(&one, "boss@example.com").await;
    let buyer = customer(&one, "ann@example.com").await;
    let product = new_product(&one, &admin_token, "Lamp", 10.0, 3).await;
    let path = format!("/api/products/{product}");

    // Two reads the product (and keeps the answer in its cache).
    let (status, p) = send(&two, Method::Get, &path, None, None).await;
    assert_eq!(status, Status::Ok, "{p}");
    assert_eq!(p["price"], json!(10.0));

    // An order placed through one is read through two.
    let address = address(&one, &buyer).await;
    let (status, body) = add(&one, &buyer, product, 2).await;
    assert_eq!(status, Status::Created, "{body}");
    let (status, order) = checkout(&one, &buyer, json!({"shipping_address_id": address})).await;
    assert_eq!(status, Status::Created, "{order}");
    let order_id = order["id"].as_u64().unwrap();
    let (status, seen) = send(
        &two,
        Method::Get,
        &format!("/api/orders/{order_id}"),
        Some(&buyer),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok, "{seen}");
    assert_eq!(seen["id"], json!(order_id));
    assert_eq!(seen["items"][0]["quantity"], json!(2));
    assert_eq!(seen["total_price"], order["total_price"]);

    // A price changed through one is what two answers next.
    let before = state(&two).db.version();
    let (status, changed) = send(
        &one,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"price": 12.5})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{changed}");
    heard_after(&two, before).await;
    let (status, p) = send(&two, Method::Get, &path, None, None).await;
    assert_eq!(status, Status::Ok, "{p}");
    assert_eq!(p["price"], json!(12.5));
    assert_eq!(p["stock_quantity"], json!(1));

    // Logging out through two ends the session on one at once.
    let (status, _) = send(
        &two,
        Method::Post,
        "/api/account/logout",
        Some(&buyer),
        None,
    )
    .await;
    assert!(
        status == Status::Ok || status == Status::NoContent,
        "{status}"
    );
    let (status, _) = send(&one, Method::Get, "/api/account/me", Some(&buyer), None).await;
    assert_eq!(status, Status::Unauthorized);
    drop((one, two));
    drop(schema);
}

#[rocket::async_test]
async fn the_last_unit_goes_to_exactly_one_of_two_instances() {
    let schema = PgSchema::new().await;
    let one = app_on_pg(&schema.url).await;
    let two = app_on_pg(&schema.url).await;
    let admin_token = admin(&one, "boss@example.com").await;
    let product = new_product(&one, &admin_token, "Last one", 5.0, 1).await;
    let mut buyers = Vec::new();
    for i in 0..10 {
        let t = if i % 2 == 0 { &one } else { &two };
        let token = customer(t, &format!("buyer{i}@example.com")).await;
        let a = address(t, &token).await;
        let (status, body) = add(t, &token, product, 1).await;
        assert_eq!(status, Status::Created, "{body}");
        buyers.push((i, token, a));
    }
    let races = buyers.iter().map(|(i, token, a)| {
        let t = if i % 2 == 0 { &one } else { &two };
        checkout(t, token, json!({"shipping_address_id": a}))
    });
    let outcomes = futures_util::future::join_all(races).await;
    let won = outcomes
        .iter()
        .filter(|(s, _)| *s == Status::Created)
        .count();
    let refused = outcomes
        .iter()
        .filter(|(s, _)| *s == Status::Conflict)
        .count();
    assert_eq!((won, refused), (1, 9), "{outcomes:?}");
    assert_eq!(stock(&two, product).await, 0);
    drop((one, two));
    drop(schema);
}

/// Two server processes on one database, both sending mail: each mail goes out once.
#[rocket::async_test]
async fn two_processes_send_each_queued_mail_once() {
    let schema = PgSchema::new().await;
    let sink = crate::smtp_sink::Sink::start();
    let env = vec![
        ("SHOPBOX_DATABASE__URL", schema.url.clone()),
        ("SHOPBOX_SMTP__HOST", "127.0.0.1".into()),
        ("SHOPBOX_SMTP__PORT", sink.port.to_string()),
        ("SHOPBOX_SMTP__TLS", "none".into()),
        ("SHOPBOX_SMTP__FROM", "Shop <shop@example.com>".into()),
    ];
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = Server::start_with_env(one_dir.path(), &[], "warn", &env);
    one.wait_ready();
    let mut two = Server::start_with_env(two_dir.path(), &[], "warn", &env);
    two.wait_ready();
    for i in 0..6 {
        let port = if i % 2 == 0 { one.port } else { two.port };
        let body = format!(r#"{{"email": "m{i}@example.com", "password": "{PASSWORD}"}}"#);
        let (status, _, text) = http(
            port,
            "POST",
            "/api/account/register",
            &[("Content-Type", "application/json")],
            &body,
        )
        .unwrap();
        assert_eq!(status, 201, "{text}");
    }
    let got = sink.wait_for(6, 30);
    assert_eq!(got.len(), 6);
    // A while longer: no mail comes twice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(sink.received().len(), 6);
    assert_eq!(
        sink.recipients.load(std::sync::atomic::Ordering::SeqCst),
        6,
        "one delivery attempt per mail"
    );
    one.kill();
    two.kill();
}
