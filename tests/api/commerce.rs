//! Cart, addresses, checkout, orders, payments, shipping and reviews through the real app.

use crate::common;

use common::*;
use rocket::http::{Method, Status};
use serde_json::json;

#[rocket::async_test]
async fn cart_routes_and_their_failures() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 10.5, 3).await;

    let (status, item) = add(&t, &ann, lamp, 2).await;
    assert_eq!(status, Status::Created);
    assert_eq!(
        (
            item["quantity"].as_i64(),
            item["price"].as_f64(),
            item["total"].as_f64()
        ),
        (Some(2), Some(10.5), Some(21.0))
    );
    assert_eq!(item["product_title"], "Lamp");
    assert_eq!(
        add(&t, &ann, lamp, 2).await.0,
        Status::Conflict,
        "beyond stock"
    );
    assert_eq!(add(&t, &ann, 999, 1).await.0, Status::NotFound);
    assert_eq!(add(&t, &ann, lamp, 0).await.0, Status::UnprocessableEntity);
    assert_eq!(
        send(
            &t,
            Method::Post,
            "/api/carts/add",
            None,
            Some(json!({"product_id": lamp, "quantity": 1}))
        )
        .await
        .0,
        Status::Unauthorized
    );

    let (status, item) = send(
        &t,
        Method::Patch,
        &format!("/api/carts/increase/{lamp}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(item["quantity"], 3);
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/carts/increase/{lamp}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::Conflict
    );
    let (_, cart) = send(&t, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(
        (
            cart["total_quantity"].as_i64(),
            cart["total_price"].as_f64()
        ),
        (Some(3), Some(31.5))
    );

    for expected in [2, 1] {
        let (status, item) = send(
            &t,
            Method::Patch,
            &format!("/api/carts/decrease/{lamp}"),
            Some(&ann),
            None,
        )
        .await;
        assert_eq!(status, Status::Ok);
        assert_eq!(item["quantity"], expected);
    }
    let (status, gone) = send(
        &t,
        Method::Patch,
        &format!("/api/carts/decrease/{lamp}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert!(gone["message"].is_string());
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/carts/decrease/{lamp}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::NotFound
    );

    let (_, item) = add(&t, &ann, lamp, 1).await;
    let item_id = item["id"].as_u64().unwrap();
    assert_eq!(
        send(
            &t,
            Method::Delete,
            &format!("/api/carts/delete/{item_id}"),
            Some(&bob),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    assert_eq!(
        send(
            &t,
            Method::Delete,
            &format!("/api/carts/delete/{item_id}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::NoContent
    );
    let (_, cart) = send(&t, Method::Get, "/api/carts/", Some(&ann), None).await;
    assert_eq!(cart["items"], json!([]));

    // A deleted product leaves the cart.
    assert_eq!(add(&t, &ann, lamp, 1).await.0, Status::Created);
    let (_, cart) = send(&t, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(cart["total_quantity"], 1);
    assert_eq!(
        send(
            &t,
            Method::Delete,
            &format!("/api/products/{lamp}"),
            Some(&admin),
            None,
        )
        .await
        .0,
        Status::NoContent
    );
    let (status, cart) = send(&t, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(cart["total_quantity"], 0);
    assert_eq!(cart["items"], json!([]));
}

#[rocket::async_test]
async fn addresses_crud_and_ownership() {
    let t = app().await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let (status, a) = send(&t, Method::Post, "/api/shippings/addresses", Some(&ann),
        Some(json!({"address_line1": "2 Side St", "city": "Town", "state": "ST", "pin_code": "560001", "country": "IN", "user_id": 99}))).await;
    assert_eq!(status, Status::Created);
    assert_eq!(a["postal_code"], "560001");
    assert_ne!(a["user_id"], 99);
    let path = format!("/api/shippings/addresses/{}", a["id"]);
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/shippings/addresses",
        Some(&ann),
        Some(json!({"city": "Town"})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert!(body["detail"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["loc"] == json!(["body", "address_line1"])));

    let (_, list) = send(
        &t,
        Method::Get,
        "/api/shippings/addresses",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(
        send(&t, Method::Get, &path, Some(&bob), None).await.0,
        Status::NotFound
    );
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &path,
            Some(&bob),
            Some(json!({"city": "X"}))
        )
        .await
        .0,
        Status::NotFound
    );
    let (status, patched) = send(
        &t,
        Method::Patch,
        &path,
        Some(&ann),
        Some(json!({"city": "Elsewhere"})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        (patched["city"].as_str(), patched["address_line1"].as_str()),
        (Some("Elsewhere"), Some("2 Side St"))
    );
    assert_eq!(
        send(
            &t,
            Method::Put,
            &path,
            Some(&ann),
            Some(json!({"city": "Only"}))
        )
        .await
        .0,
        Status::UnprocessableEntity
    );
    let (status, put) = send(&t, Method::Put, &path, Some(&ann),
        Some(json!({"address_line1": "3 New Rd", "city": "C", "state": "S", "postal_code": "1", "country": "US"}))).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(put["address_line1"], "3 New Rd");
    assert_eq!(
        send(&t, Method::Delete, &path, Some(&bob), None).await.0,
        Status::NotFound
    );
    assert_eq!(
        send(&t, Method::Delete, &path, Some(&ann), None).await.0,
        Status::NoContent
    );
    assert_eq!(
        send(&t, Method::Get, &path, Some(&ann), None).await.0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn checkout_writes_everything_and_answers_failures_in_order() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 10.5, 3).await;
    let mug = new_product(&t, &admin, "Mug", 4.25, 10).await;
    let home = address(&t, &ann).await;
    let bobs = address(&t, &bob).await;

    let (status, body) = checkout(&t, &ann, json!({"shipping_address_id": home})).await;
    assert_eq!(status, Status::BadRequest, "empty cart first: {body}");
    assert_eq!(add(&t, &ann, lamp, 2).await.0, Status::Created);
    assert_eq!(add(&t, &ann, mug, 2).await.0, Status::Created);
    assert_eq!(
        checkout(&t, &ann, json!({"shipping_address_id": bobs}))
            .await
            .0,
        Status::NotFound
    );
    assert_eq!(
        checkout(&t, &ann, json!({"shipping_address_id": 999}))
            .await
            .0,
        Status::NotFound
    );
    // Stock drops below the cart behind its back.
    let (status, p) = send(
        &t,
        Method::Patch,
        &format!("/api/products/{lamp}"),
        Some(&admin),
        Some(json!({"stock_quantity": 1})),
    )
    .await;
    assert_eq!(
        (status, p["stock_quantity"].as_i64()),
        (Status::Ok, Some(1))
    );
    let (status, body) = checkout(&t, &ann, json!({"shipping_address_id": home})).await;
    assert_eq!(status, Status::Conflict);
    assert!(body["detail"].as_str().unwrap().contains("Lamp"), "{body}");
    let (status, p) = send(
        &t,
        Method::Patch,
        &format!("/api/products/{lamp}"),
        Some(&admin),
        Some(json!({"stock_quantity": 3})),
    )
    .await;
    assert_eq!(
        (status, p["stock_quantity"].as_i64()),
        (Status::Ok, Some(3))
    );
    let (status, _) = checkout(
        &t,
        &ann,
        json!({"shipping_address_id": home, "amount": 1.0}),
    )
    .await;
    assert_eq!(status, Status::Conflict);
    assert_eq!(
        checkout(
            &t,
            &ann,
            json!({"shipping_address_id": home, "gateway": "paypal"})
        )
        .await
        .0,
        Status::UnprocessableEntity
    );

    // A failed payment: 402, the order kept, stock and cart untouched.
    let (status, failed) = checkout(
        &t,
        &ann,
        json!({"shipping_address_id": home, "simulate_success": false}),
    )
    .await;
    assert_eq!(status, Status::PaymentRequired);
    assert!(failed["detail"].is_string());
    let failed_id = failed["order_id"].as_u64().unwrap();
    assert!(failed["payment_id"].is_u64());
    assert_eq!(stock(&t, lamp).await, 3);
    let (_, cart) = send(&t, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(cart["total_quantity"], 4);
    let (_, order) = send(
        &t,
        Method::Get,
        &format!("/api/orders/{failed_id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(order["status"], "payment_failed");
    assert_eq!(order["payment"]["status"], "failed");
    assert_eq!(order["payment"]["is_paid"], false);
    assert!(order["shipping_status"].is_null());
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/shippings/status/{failed_id}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/orders/cancel/{failed_id}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::Conflict
    );
    assert_eq!(
        send(
            &t,
            Method::Put,
            &format!("/api/shippings/status/{failed_id}"),
            Some(&admin),
            Some(json!({"status": "shipped"}))
        )
        .await
        .0,
        Status::Conflict
    );

    // Success, with fields a customer may not set ignored.
    let (status, order) = checkout(&t, &ann, json!({"shipping_address_id": home, "amount": 29.5, "status": "cancelled", "total_price": 0.01, "user_id": 99})).await;
    assert_eq!(status, Status::Created, "{order}");
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total_price"], 29.5);
    assert_ne!(order["user_id"], 99);
    assert_eq!(order["items"].as_array().unwrap().len(), 2);
    assert_eq!(order["items"][0]["title"], "Lamp");
    assert_eq!(order["items"][0]["price"], 10.5);
    assert_eq!(order["shipping_address"]["address_line1"], "1 Main St");
    assert_eq!(order["payment"]["status"], "success");
    assert_eq!(order["payment"]["amount"], 29.5);
    assert_eq!(order["payment"]["payment_gateway"], "mock");
    assert_eq!(order["shipping_status"]["status"], "pending");
    assert_eq!(stock(&t, lamp).await, 1);
    assert_eq!(stock(&t, mug).await, 8);
    let (_, cart) = send(&t, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(cart["items"], json!([]));
    let mails = shopbox::mail::store::latest(&state(&t).db, Some("ann@example.com"), 1)
        .await
        .unwrap();
    assert!(mails[0].subject.contains("order"), "{}", mails[0].subject);

    // The address copy survives the address.
    assert_eq!(
        send(
            &t,
            Method::Delete,
            &format!("/api/shippings/addresses/{home}"),
            Some(&ann),
            None,
        )
        .await
        .0,
        Status::NoContent
    );
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/shippings/addresses/{home}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    let id = order["id"].as_u64().unwrap();
    let (_, again) = send(
        &t,
        Method::Get,
        &format!("/api/orders/{id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(again["shipping_address"]["city"], "Town");
    // A later price change does not touch the order.
    let (status, changed) = send(
        &t,
        Method::Patch,
        &format!("/api/products/{lamp}"),
        Some(&admin),
        Some(json!({"price": 99})),
    )
    .await;
    assert_eq!(
        (status, changed["price"].as_f64()),
        (Status::Ok, Some(99.0))
    );
    let (_, again) = send(
        &t,
        Method::Get,
        &format!("/api/orders/{id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(again["items"][0]["price"], 10.5);
}

#[rocket::async_test]
async fn orders_and_payments_are_private_and_admins_see_all() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 50).await;
    let home = address(&t, &ann).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        add(&t, &ann, lamp, 1).await;
        ids.push(
            checkout(&t, &ann, json!({"shipping_address_id": home}))
                .await
                .1["id"]
                .as_u64()
                .unwrap(),
        );
    }
    let (_, list) = send(&t, Method::Get, "/api/orders?limit=2", Some(&ann), None).await;
    assert_eq!(
        (list["total"].as_u64(), list["pages"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        list["items"][0]["id"].as_u64(),
        Some(ids[2]),
        "newest first"
    );
    let (_, empty) = send(&t, Method::Get, "/api/orders", Some(&bob), None).await;
    assert_eq!(empty["total"], 0);
    let first = format!("/api/orders/{}", ids[0]);
    assert_eq!(
        send(&t, Method::Get, &first, Some(&bob), None).await.0,
        Status::NotFound
    );
    assert_eq!(
        send(&t, Method::Get, &first, Some(&admin), None).await.0,
        Status::Ok
    );
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/orders/cancel/{}", ids[0]),
            Some(&bob),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/shippings/status/{}", ids[0]),
            Some(&bob),
            None
        )
        .await
        .0,
        Status::NotFound
    );

    let (_, pays) = send(&t, Method::Get, "/api/payments", Some(&ann), None).await;
    assert_eq!(pays["total"], 3);
    let pay = pays["items"][0]["id"].as_u64().unwrap();
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/payments/{pay}"),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::Ok
    );
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/payments/{pay}"),
            Some(&bob),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    assert_eq!(
        send(
            &t,
            Method::Get,
            &format!("/api/payments/{pay}"),
            Some(&admin),
            None
        )
        .await
        .0,
        Status::Ok
    );

    send(
        &t,
        Method::Patch,
        &format!("/api/orders/cancel/{}", ids[1]),
        Some(&ann),
        None,
    )
    .await;
    send(
        &t,
        Method::Put,
        &format!("/api/shippings/status/{}", ids[2]),
        Some(&admin),
        Some(json!({"status": "shipped"})),
    )
    .await;
    assert_eq!(
        send(&t, Method::Get, "/api/orders/admin/all", Some(&ann), None)
            .await
            .0,
        Status::Forbidden
    );
    let (_, all) = send(&t, Method::Get, "/api/orders/admin/all", Some(&admin), None).await;
    assert_eq!(all["total"], 3);
    let (_, cancelled) = send(
        &t,
        Method::Get,
        "/api/orders/admin/all?status=cancelled",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(cancelled["items"][0]["id"].as_u64(), Some(ids[1]));
    let (_, shipped) = send(
        &t,
        Method::Get,
        "/api/orders/admin/all?shipping_status=shipped&shipping_status=delivered",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(shipped["total"], 1);
    let (_, by_user) = send(
        &t,
        Method::Get,
        &format!(
            "/api/orders/admin/all?user_id={}&status=confirmed",
            all["items"][0]["user_id"]
        ),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(by_user["total"], 2);
    assert_eq!(
        send(
            &t,
            Method::Get,
            "/api/orders/admin/all?status=lost",
            Some(&admin),
            None
        )
        .await
        .0,
        Status::UnprocessableEntity
    );
    // An id past the document's maximum (2^53 - 1) names no user: a 422, not an empty page.
    let (status, body) = send(
        &t,
        Method::Get,
        "/api/orders/admin/all?user_id=9007199254740992",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "user_id"]));
}

#[rocket::async_test]
async fn cancel_and_shipping_moves_follow_the_rules() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 10).await;
    let home = address(&t, &ann).await;
    let mut orders = Vec::new();
    for _ in 0..3 {
        add(&t, &ann, lamp, 2).await;
        orders.push(
            checkout(&t, &ann, json!({"shipping_address_id": home}))
                .await
                .1["id"]
                .as_u64()
                .unwrap(),
        );
    }
    assert_eq!(stock(&t, lamp).await, 4);

    // Customer cancel while pending: stock back, payment refunded, shipping cancelled.
    let (status, o) = send(
        &t,
        Method::Patch,
        &format!("/api/orders/cancel/{}", orders[0]),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(o["status"], "cancelled");
    assert_eq!(o["payment"]["status"], "refunded");
    assert_eq!(o["payment"]["is_paid"], false);
    assert_eq!(o["shipping_status"]["status"], "cancelled");
    assert_eq!(stock(&t, lamp).await, 6);
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/orders/cancel/{}", orders[0]),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::Conflict
    );

    let path = format!("/api/shippings/status/{}", orders[1]);
    let put = |status: &'static str| {
        send(
            &t,
            Method::Put,
            &path,
            Some(&admin),
            Some(json!({"status": status})),
        )
    };
    assert_eq!(put("processing").await.0, Status::Ok);
    let (status, same) = put("processing").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        same["history"].as_array().unwrap().len(),
        2,
        "the same status again changes nothing"
    );
    assert_eq!(put("pending").await.0, Status::Conflict);
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &path,
            Some(&admin),
            Some(json!({"status": "delivered"}))
        )
        .await
        .0,
        Status::Ok
    );
    assert_eq!(put("cancelled").await.0, Status::Conflict);
    assert_eq!(put("teleported").await.0, Status::UnprocessableEntity);
    assert_eq!(
        send(
            &t,
            Method::Put,
            &path,
            Some(&ann),
            Some(json!({"status": "shipped"}))
        )
        .await
        .0,
        Status::Forbidden
    );
    let (_, s) = send(&t, Method::Get, &path, Some(&ann), None).await;
    let history: Vec<&str> = s["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["status"].as_str().unwrap())
        .collect();
    assert_eq!(history, ["pending", "processing", "delivered"]);
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &format!("/api/orders/cancel/{}", orders[1]),
            Some(&ann),
            None
        )
        .await
        .0,
        Status::Conflict
    );

    // An admin's `cancelled` cancels the order like the cancel route.
    let (status, s) = send(
        &t,
        Method::Patch,
        &format!("/api/shippings/status/{}", orders[2]),
        Some(&admin),
        Some(json!({"status": "cancelled"})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(s["status"], "cancelled");
    let (_, o) = send(
        &t,
        Method::Get,
        &format!("/api/orders/{}", orders[2]),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        (o["status"].as_str(), o["payment"]["status"].as_str()),
        (Some("cancelled"), Some("refunded"))
    );
    assert_eq!(stock(&t, lamp).await, 8);
    let (status, _) = send(
        &t,
        Method::Patch,
        &format!("/api/shippings/status/{}", orders[2]),
        Some(&admin),
        Some(json!({"status": "cancelled"})),
    )
    .await;
    assert_eq!(status, Status::Ok, "cancelled again changes nothing");
    assert_eq!(stock(&t, lamp).await, 8);
    let mails = shopbox::mail::store::latest(&state(&t).db, Some("ann@example.com"), 20)
        .await
        .unwrap();
    assert!(mails.iter().any(|m| m.subject.contains("delivered")));
}

#[rocket::async_test]
async fn reviews_need_a_confirmed_order_and_keep_ratings() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 10).await;
    let mug = new_product(&t, &admin, "Mug", 5.0, 10).await;
    let path = format!("/api/products/{lamp}/reviews");
    assert_eq!(
        send(
            &t,
            Method::Post,
            &path,
            Some(&ann),
            Some(json!({"rating": 5}))
        )
        .await
        .0,
        Status::Forbidden
    );
    for token in [&ann, &bob] {
        let home = address(&t, token).await;
        add(&t, token, lamp, 1).await;
        checkout(&t, token, json!({"shipping_address_id": home})).await;
    }
    assert_eq!(
        send(
            &t,
            Method::Post,
            &path,
            Some(&ann),
            Some(json!({"rating": 6}))
        )
        .await
        .0,
        Status::UnprocessableEntity
    );
    let (status, r) = send(
        &t,
        Method::Post,
        &path,
        Some(&ann),
        Some(json!({"rating": 5, "title": "Bright", "body": "Love it"})),
    )
    .await;
    assert_eq!(status, Status::Created);
    assert_eq!(
        (r["rating"].as_u64(), r["user_name"].as_str()),
        (Some(5), Some("ann"))
    );
    // A confirmed order lets its buyer review what it holds, not any product.
    assert_eq!(
        send(
            &t,
            Method::Post,
            &format!("/api/products/{mug}/reviews"),
            Some(&ann),
            Some(json!({"rating": 4}))
        )
        .await
        .0,
        Status::Forbidden
    );
    assert_eq!(
        send(
            &t,
            Method::Post,
            &path,
            Some(&ann),
            Some(json!({"rating": 1}))
        )
        .await
        .0,
        Status::Conflict
    );
    let (_, rb) = send(
        &t,
        Method::Post,
        &path,
        Some(&bob),
        Some(json!({"rating": 2})),
    )
    .await;
    let (_, p) = send(
        &t,
        Method::Get,
        &format!("/api/products/{lamp}"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (p["rating_avg"].as_f64(), p["rating_count"].as_u64()),
        (Some(3.5), Some(2))
    );
    let (_, list) = send(&t, Method::Get, &path, None, None).await;
    assert_eq!(list["items"][0]["id"], rb["id"], "newest first");
    let (status, edited) = send(
        &t,
        Method::Put,
        &format!("{path}/mine"),
        Some(&bob),
        Some(json!({"rating": 4})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(edited["rating"], 4);
    let (_, p) = send(
        &t,
        Method::Get,
        &format!("/api/products/{lamp}"),
        None,
        None,
    )
    .await;
    assert_eq!(p["rating_avg"], 4.5);
    let (_, sorted) = send(&t, Method::Get, "/api/products?sort=rating", None, None).await;
    assert_eq!(sorted["items"][0]["id"].as_u64(), Some(lamp));
    assert_eq!(sorted["items"][1]["id"].as_u64(), Some(mug), "unrated last");

    let review = format!("/api/products/reviews/{}", r["id"]);
    assert_eq!(
        send(&t, Method::Delete, &review, Some(&bob), None).await.0,
        Status::NotFound
    );
    assert_eq!(
        send(&t, Method::Delete, &review, Some(&ann), None).await.0,
        Status::NoContent
    );
    let bobs = format!("/api/products/reviews/{}", rb["id"]);
    assert_eq!(
        send(&t, Method::Delete, &bobs, Some(&admin), None).await.0,
        Status::NoContent
    );
    let (_, p) = send(
        &t,
        Method::Get,
        &format!("/api/products/{lamp}"),
        None,
        None,
    )
    .await;
    assert_eq!(p["rating_count"], 0);
    assert!(common::catalog_indexes_ok(&t));
}

#[rocket::async_test]
async fn idempotency_keys_replay_refuse_other_bodies_and_expire() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let bob = customer(&t, "bob@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 10).await;
    let home = address(&t, &ann).await;
    add(&t, &ann, lamp, 1).await;
    let body = json!({"shipping_address_id": home});
    let (s1, r1, first) = raw_checkout(&t.client, &ann, Some("k-1"), &body).await;
    assert_eq!((s1, r1), (Status::Created, None));
    // From here the shop's clock moves only when the test moves it: the boundaries below
    // are exact whatever the requests cost.
    state(&t).clock.freeze();
    let (s2, r2, second) = raw_checkout(&t.client, &ann, Some("k-1"), &body).await;
    assert_eq!((s2, r2.as_deref()), (Status::Created, Some("true")));
    assert_eq!(first, second);
    let (s3, _, _) = raw_checkout(
        &t.client,
        &ann,
        Some("k-1"),
        &json!({"shipping_address_id": home, "amount": 5}),
    )
    .await;
    assert_eq!(s3, Status::UnprocessableEntity);
    // Another user's identical key is theirs alone (their cart is empty: 400, replayed too).
    assert_eq!(
        raw_checkout(&t.client, &bob, Some("k-1"), &body).await.0,
        Status::BadRequest
    );
    let (status, replayed, _) = raw_checkout(&t.client, &bob, Some("k-1"), &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (Status::BadRequest, Some("true"))
    );
    let (_, orders) = send(&t, Method::Get, "/api/orders", Some(&ann), None).await;
    assert_eq!(orders["total"], 1);

    // A key is remembered 24 hours: a second before, it still replays; after, it is
    // forgotten.
    assert_eq!(add(&t, &ann, lamp, 1).await.0, Status::Created);
    let st = state(&t);
    st.clock.advance(24 * 3600 * 1_000_000 - 1_000_000);
    // Access tokens expire by the shop's clock too: log in again after each jump.
    let ann = login(&t, "ann@example.com", PASSWORD).await.0;
    let (status, replayed, again) = raw_checkout(&t.client, &ann, Some("k-1"), &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (Status::Created, Some("true"))
    );
    assert_eq!(again, first);
    st.clock.advance(1_000_001);
    let (status, replayed, third) = raw_checkout(&t.client, &ann, Some("k-1"), &body).await;
    assert_eq!((status, replayed), (Status::Created, None));
    assert_ne!(third["id"], first["id"]);
    // Purging forgets what is older than 24 hours and keeps the rest.
    assert_eq!(
        shopbox::checkout::store::purge_expired_keys(&st.db, st.clock.now())
            .await
            .unwrap(),
        1,
        "bob's k-1; ann's was taken again just now"
    );
    st.clock.advance(24 * 3600 * 1_000_000 - 1_000_000);
    assert_eq!(
        shopbox::checkout::store::purge_expired_keys(&st.db, st.clock.now())
            .await
            .unwrap(),
        0
    );
    let ann = login(&t, "ann@example.com", PASSWORD).await.0;
    let (status, replayed, again) = raw_checkout(&t.client, &ann, Some("k-1"), &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (Status::Created, Some("true"))
    );
    assert_eq!(again, third);
    st.clock.advance(1_000_001);
    assert_eq!(
        shopbox::checkout::store::purge_expired_keys(&st.db, st.clock.now())
            .await
            .unwrap(),
        1
    );
}

#[rocket::async_test]
async fn idempotency_keys_are_checked_and_documented() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let ann = customer(&t, "ann@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 10).await;
    let home = address(&t, &ann).await;
    assert_eq!(add(&t, &ann, lamp, 1).await.0, Status::Created);
    let body = json!({"shipping_address_id": home});
    let longest = "k".repeat(255);
    let too_long = "k".repeat(256);
    for bad in ["", too_long.as_str(), "two words", "caf\u{e9}"] {
        let (status, _, answer) = raw_checkout(&t.client, &ann, Some(bad), &body).await;
        assert_eq!(status, Status::UnprocessableEntity, "{bad:?}: {answer}");
        assert_eq!(
            answer["detail"][0]["loc"],
            json!(["header", "Idempotency-Key"]),
            "{answer}"
        );
    }
    assert_eq!(stock(&t, lamp).await, 10, "refused keys ran nothing");
    let (status, replayed, _) = raw_checkout(&t.client, &ann, Some(&longest), &body).await;
    assert_eq!((status, replayed), (Status::Created, None));
    let (status, replayed, _) = raw_checkout(&t.client, &ann, Some(&longest), &body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (Status::Created, Some("true"))
    );

    let spec = openapi(&t).await;
    let op = &spec["paths"]["/api/orders/checkout"]["post"];
    let key = op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == "Idempotency-Key"))
        .unwrap_or_else(|| panic!("no Idempotency-Key parameter: {op}"));
    assert_eq!(key["in"], "header");
    assert_ne!(key["required"], true);
    assert_eq!(key["schema"]["type"], "string");
    assert!(key["description"].as_str().unwrap().contains("24 hours"));
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    assert!(schema.is_object(), "{op}");
    for status in ["201", "400", "402", "404", "409", "422"] {
        assert!(
            op["responses"][status].is_object(),
            "{status} undocumented: {op}"
        );
    }
}
