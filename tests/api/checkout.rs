//! The checkout flow's single transaction: a key claimed, the order written and its answer
//! recorded together, so retries replay the first answer exactly, and schema 2's records
//! carry over.

use crate::common;

use common::*;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};

async fn shop_with_cart(t: &TestApp, stock: i64) -> (String, u64, u64) {
    let admin = admin(t, "admin@example.com").await;
    let ann = customer(t, "ann@example.com").await;
    let (status, lamp) = send(
        t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Lamp", "price": 5.0, "stock_quantity": stock})),
    )
    .await;
    assert_eq!(status, Status::Created, "{lamp}");
    let address = json!({"address_line1": "1 Main St", "city": "Town", "state": "ST",
        "postal_code": "12345", "country": "US"});
    let (status, home) = send(
        t,
        Method::Post,
        "/api/shippings/addresses",
        Some(&ann),
        Some(address),
    )
    .await;
    assert_eq!(status, Status::Created, "{home}");
    let lamp = lamp["id"].as_u64().unwrap();
    let line = json!({"product_id": lamp, "quantity": 1});
    let (status, _) = send(t, Method::Post, "/api/carts/add", Some(&ann), Some(line)).await;
    assert_eq!(status, Status::Created);
    (ann, lamp, home["id"].as_u64().unwrap())
}

/// `(status, Idempotent-Replayed, body text)`.
async fn checkout(client: &Client, token: &str, key: &str, body: &Value) -> (Status, bool, String) {
    let res = client
        .post("/api/orders/checkout")
        .header(bearer(token))
        .header(ContentType::JSON)
        .header(Header::new("Idempotency-Key", key.to_string()))
        .body(body.to_string())
        .dispatch()
        .await;
    let status = res.status();
    let replayed = res.headers().get_one("Idempotent-Replayed") == Some("true");
    (
        status,
        replayed,
        res.into_string().await.unwrap_or_default(),
    )
}

#[rocket::async_test]
async fn a_replay_answers_the_first_body_not_the_order_as_it_is_now() {
    let t = app().await;
    let (ann, _, home) = shop_with_cart(&t, 5).await;
    let body = json!({"shipping_address_id": home});
    let (status, replayed, first) = checkout(&t.client, &ann, "k", &body).await;
    assert_eq!((status, replayed), (Status::Created, false));
    let order: Value = serde_json::from_str(&first).unwrap();
    let cancel = format!("/api/orders/cancel/{}", order["id"]);
    let (status, cancelled) = send(&t, Method::Patch, &cancel, Some(&ann), None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(cancelled["status"], "cancelled");
    let (status, replayed, again) = checkout(&t.client, &ann, "k", &body).await;
    assert_eq!((status, replayed), (Status::Created, true));
    assert_eq!(again, first);
    assert!(again.contains("\"status\":\"confirmed\""), "{again}");

    // A refusal is an answer too: replayed as it was, though the cause is gone.
    let (status, _, empty) = checkout(&t.client, &ann, "k2", &body).await;
    assert_eq!(status, Status::BadRequest, "{empty}");
    let line = json!({"product_id": order["items"][0]["product_id"], "quantity": 1});
    let (status, _) = send(&t, Method::Post, "/api/carts/add", Some(&ann), Some(line)).await;
    assert_eq!(status, Status::Created);
    let (status, replayed, still) = checkout(&t.client, &ann, "k2", &body).await;
    assert_eq!((status, replayed, still), (Status::BadRequest, true, empty));
}

/// An idempotency record as schema 2 stored it.
#[derive(serde::Serialize)]
struct OldRecord {
    request: String,
    state: OldState,
    created_at: i64,
}

#[derive(serde::Serialize)]
enum OldState {
    Running,
    Done { status: u16, body: String },
}

#[rocket::async_test]
async fn schema_2_answers_replay_and_running_keys_run_again() {
    if common::sled_only("schema_2_answers_replay_and_running_keys_run_again") {
        return;
    }
    let t = app().await;
    let (ann, _, home) = shop_with_cart(&t, 5).await;
    let (_, me) = send(&t, Method::Get, "/api/account/me", Some(&ann), None).await;
    let user_id = me["id"].as_u64().unwrap();
    let TestApp { client, dir, .. } = t;
    drop(client);
    let config = test_config(dir.path());
    let body = json!({"shipping_address_id": home});
    let now = shopbox::core::time::now_micros();
    {
        let sled = common::reopen_sled(dir.path());
        let keys = sled.open_tree("idempotency").unwrap();
        for (key, state) in [
            (
                "done",
                OldState::Done {
                    status: 201,
                    body: "{\"id\":77}".into(),
                },
            ),
            ("running", OldState::Running),
        ] {
            let record = OldRecord {
                request: body.to_string(),
                state,
                created_at: now,
            };
            let mut value = vec![1u8];
            bincode::serde::encode_into_std_write(&record, &mut value, bincode::config::standard())
                .unwrap();
            let mut k = user_id.to_be_bytes().to_vec();
            k.extend_from_slice(key.as_bytes());
            keys.insert(k, value).unwrap();
        }
        let meta = sled.open_tree("meta").unwrap();
        meta.insert("schema_version", &2u32.to_be_bytes()).unwrap();
        sled.flush().unwrap();
    }
    let db = shopbox::open_data(&config).unwrap();
    let client = Client::untracked(shopbox::rocket(config, db).unwrap())
        .await
        .unwrap();
    let (status, replayed, text) = checkout(&client, &ann, "done", &body).await;
    assert_eq!(
        (status, replayed, text.as_str()),
        (Status::Created, true, "{\"id\":77}")
    );
    let (status, replayed, text) = checkout(&client, &ann, "running", &body).await;
    assert_eq!((status, replayed), (Status::Created, false), "{text}");
}
