//! 422 messages in a client's words (issue 11 item 8): what a field must be in JSON,
//! never the Rust type behind it ("expected f64" for `"12.50"`).

use crate::common;

use common::*;
use rocket::http::{Method, Status};
use serde_json::json;

#[rocket::async_test]
async fn type_errors_speak_json_not_rust() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let token = customer(&t, "c@example.com").await;
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Lamp", "price": "12.50"})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity, "{body}");
    assert_eq!(body["detail"][0]["loc"], json!(["body", "price"]));
    assert_eq!(body["detail"][0]["msg"], "Input must be a number");
    let rust = [
        "f64", "f32", "u64", "i64", "u32", "i32", "usize", "struct", "sequence", "a map",
    ];
    for (path, who, bad) in [
        (
            "/api/products",
            &admin,
            json!({"title": "Lamp", "price": "12.50"}),
        ),
        ("/api/products", &admin, json!({"title": 5, "price": 1})),
        (
            "/api/products",
            &admin,
            json!({"title": "x", "price": 1, "stock_quantity": 1.5}),
        ),
        (
            "/api/products",
            &admin,
            json!({"title": "x", "price": 1, "category_ids": "1"}),
        ),
        (
            "/api/products",
            &admin,
            json!({"title": "x", "price": 1, "category_ids": [-1]}),
        ),
        (
            "/api/carts/add",
            &token,
            json!({"product_id": "1", "quantity": 1}),
        ),
        (
            "/api/carts/add",
            &token,
            json!({"product_id": -1, "quantity": 1}),
        ),
        ("/api/account/me", &token, json!({"name": ["x"]})),
        (
            "/api/orders/checkout",
            &token,
            json!({"shipping_address_id": 1, "simulate_success": "yes"}),
        ),
        ("/api/orders/checkout", &token, json!([1, 2])),
    ] {
        let method = if path == "/api/account/me" {
            Method::Patch
        } else {
            Method::Post
        };
        let (status, body) = send(&t, method, path, Some(who), Some(bad.clone())).await;
        assert_eq!(status, Status::UnprocessableEntity, "{path} {bad}: {body}");
        let msg = body["detail"][0]["msg"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(msg.starts_with("Input must be"), "{path} {bad}: {msg}");
        for word in rust {
            assert!(!msg.contains(word), "{path} {bad}: {msg}");
        }
    }
    // The multipart form and the query say it the same way.
    let (status, body) = send(&t, Method::Get, "/api/products?min_price=cheap", None, None).await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(body["detail"][0]["msg"], "Input must be a number");
}
