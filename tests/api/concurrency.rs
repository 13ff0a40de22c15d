//! Requests at the same moment on a multi-threaded runtime (the in-process client on four
//! tokio workers), so that handlers, transactions and group flushes really overlap:
//! SECURITY.md's last-unit race and idempotency replay under concurrency.

use crate::common;

use common::*;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Method, Status};
use rocket::{Data, Request, Response};
use serde_json::{json, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use tokio::sync::Barrier;

const CHECKOUT: &str = "/api/orders/checkout";

/// How many checkouts the app was handling at once, at most, and the threads that ran
/// them while others were in flight: the proof that a test's requests ran in parallel.
#[derive(Default)]
struct Overlap {
    running: AtomicUsize,
    most: AtomicUsize,
    threads: Mutex<HashSet<ThreadId>>,
}

impl Overlap {
    /// Notes the current thread when `running` checkouts are in the app at this moment.
    fn saw_thread(&self, running: usize) {
        if running < 2 {
            return;
        }
        if let Ok(mut threads) = self.threads.lock() {
            threads.insert(std::thread::current().id());
        }
    }
}

struct Track(Arc<Overlap>);

#[rocket::async_trait]
impl Fairing for Track {
    fn info(&self) -> Info {
        Info {
            name: "checkout overlap",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        if req.uri().path() == CHECKOUT {
            let now = self.0.running.fetch_add(1, Ordering::SeqCst) + 1;
            self.0.most.fetch_max(now, Ordering::SeqCst);
            self.0.saw_thread(now);
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, _: &mut Response<'r>) {
        if req.uri().path() == CHECKOUT {
            let running = self.0.running.fetch_sub(1, Ordering::SeqCst);
            self.0.saw_thread(running);
        }
    }
}

async fn tracked_app() -> (Arc<TestApp>, Arc<Overlap>) {
    let overlap = Arc::new(Overlap::default());
    let track = Track(Arc::clone(&overlap));
    let t = app_with(|c| c.rate_limit.enabled = false, |r| r.attach(track)).await;
    (Arc::new(t), overlap)
}

fn assert_overlapped(overlap: &Overlap) {
    let most = overlap.most.load(Ordering::SeqCst);
    let threads = overlap.threads.lock().unwrap().len();
    eprintln!("at most {most} checkouts at once; {threads} threads ran overlapping ones");
    assert!(most >= 2, "the checkouts never overlapped");
    assert!(threads >= 2, "overlapping checkouts all ran on one thread");
}

/// `n` customers (made in the store with one shared hash, then logged in at once), each
/// with an address and `product` in the cart: `(token, address id)`.
async fn buyers(t: &Arc<TestApp>, n: usize, product: u64) -> Vec<(String, u64)> {
    let hash = shopbox::core::password::hash_now(PASSWORD).unwrap();
    let mut logins = Vec::new();
    for i in 0..n {
        let email = format!("buyer{i}@example.com");
        shopbox::account::store::create_user(
            &state(t).db,
            shopbox::account::store::NewUser {
                email: email.clone(),
                name: format!("Buyer {i}"),
                hashed_password: hash.clone(),
                is_admin: false,
                is_verified: true,
            },
            shopbox::core::time::now_micros(),
        )
        .await
        .unwrap();
        let t = Arc::clone(t);
        logins.push(tokio::spawn(async move {
            let token = login(&t, &email, PASSWORD).await.0;
            let home = address(&t, &token).await;
            let (status, line) = add(&t, &token, product, 1).await;
            assert_eq!(status, Status::Created, "{line}");
            (token, home)
        }));
    }
    let mut out = Vec::new();
    for l in logins {
        out.push(l.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_buyers_for_the_last_unit_make_one_order() {
    last_unit_race(false).await;
}

/// The same race with an `Idempotency-Key` per buyer: each answer is recorded for its key
/// (on PostgreSQL the winner's is written before the stock is taken, and a loser's
/// replaced by its refusal when the stock is found short), so a retry of every buyer
/// replays exactly what that buyer was told.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn fifty_keyed_buyers_for_the_last_unit_make_one_order_and_replay_their_answers() {
    last_unit_race(true).await;
}

async fn last_unit_race(keyed: bool) {
    let (t, overlap) = tracked_app().await;
    let admin = admin(&t, "a@example.com").await;
    let lamp = new_product(&t, &admin, "Last Lamp", 5.0, 1).await;
    let buyers = buyers(&t, 50, lamp).await;

    let start = Arc::new(Barrier::new(buyers.len()));
    let mut tasks = Vec::new();
    for (token, home) in buyers.clone() {
        let (t, start) = (Arc::clone(&t), Arc::clone(&start));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let body = json!({"shipping_address_id": home});
            let key = format!("race-{home}");
            let key = keyed.then_some(key.as_str());
            let (status, _, answer) = raw_checkout(&t.client, &token, key, &body).await;
            (token, status, answer)
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    assert_overlapped(&overlap);
    if keyed {
        for ((token, home), (_, status, answer)) in buyers.iter().zip(&answers) {
            let body = json!({"shipping_address_id": home});
            let key = format!("race-{home}");
            let again = raw_checkout(&t.client, token, Some(&key), &body).await;
            assert_eq!(
                again,
                (*status, Some("true".to_string()), answer.clone()),
                "a retry of this buyer's checkout must replay what it was told"
            );
        }
    }

    let won: Vec<&(String, Status, Value)> = answers
        .iter()
        .filter(|(_, s, _)| *s == Status::Created)
        .collect();
    let statuses: Vec<u16> = answers.iter().map(|(_, s, _)| s.code).collect();
    assert_eq!(won.len(), 1, "{statuses:?}");
    let (winner, _, order) = won[0];
    assert_eq!(order["status"], "confirmed");
    assert_eq!(order["total_price"], 5.0);
    assert_eq!(order["items"].as_array().unwrap().len(), 1, "{order}");
    assert_eq!(order["items"][0]["product_id"].as_u64(), Some(lamp));
    assert_eq!(order["items"][0]["quantity"], 1);
    for (token, status, body) in &answers {
        if token == winner {
            continue;
        }
        assert_eq!(*status, Status::Conflict, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains("Last Lamp"),
            "{body}"
        );
        // A refused checkout leaves the cart as it was.
        let (_, cart) = send(&t, Method::Get, "/api/carts", Some(token), None).await;
        assert_eq!(cart["total_quantity"], 1);
    }
    let (_, cart) = send(&t, Method::Get, "/api/carts", Some(winner), None).await;
    assert_eq!(cart["items"], json!([]));

    assert_eq!(stock(&t, lamp).await, 0);
    let (status, all) = send(&t, Method::Get, "/api/orders/admin/all", Some(&admin), None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(all["total"], 1, "{all}");
    assert_eq!(all["items"][0]["id"], order["id"]);
}

/// Ten checkouts with one key at once: one order and nine replays of its answer, which
/// the function returns.
async fn ten_at_once(t: &Arc<TestApp>, token: &str, body: &Value, key: &str) -> Value {
    let start = Arc::new(Barrier::new(10));
    let mut tasks = Vec::new();
    for _ in 0..10 {
        let (t, start) = (Arc::clone(t), Arc::clone(&start));
        let (token, body, key) = (token.to_string(), body.clone(), key.to_string());
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            raw_checkout(&t.client, &token, Some(&key), &body).await
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    // One transaction claims the key and writes the order, so no request can see the
    // key "still running": the first answer, then nine replays of it.
    let statuses: Vec<(u16, Option<String>)> = answers
        .iter()
        .map(|(s, r, _)| (s.code, r.clone()))
        .collect();
    let originals = answers.iter().filter(|(_, r, _)| r.is_none()).count();
    assert_eq!(originals, 1, "{statuses:?}");
    let first = answers[0].2.clone();
    for (status, replayed, answer) in &answers {
        assert_eq!(*status, Status::Created, "{statuses:?} {answer}");
        assert!(
            matches!(replayed.as_deref(), None | Some("true")),
            "{replayed:?}"
        );
        assert_eq!(answer, &first, "a replay differs from the original");
    }
    // After the race, the key still replays the same answer.
    let (status, replayed, again) = raw_checkout(&t.client, token, Some(key), body).await;
    assert_eq!(
        (status, replayed.as_deref()),
        (Status::Created, Some("true"))
    );
    assert_eq!(again, first);
    first
}

/// Fifty rounds, so that a race between reading and claiming a key has chances to show.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_same_key_ten_times_at_once_makes_one_order_and_nine_replays() {
    const ROUNDS: usize = 50;
    let (t, overlap) = tracked_app().await;
    let admin = admin(&t, "a@example.com").await;
    let lamp = new_product(&t, &admin, "Lamp", 5.0, 100).await;
    let (ann, home) = buyers(&t, 1, lamp).await.remove(0);
    let body = json!({"shipping_address_id": home});
    let mut ids = Vec::new();
    for round in 0..ROUNDS {
        if round > 0 {
            assert_eq!(add(&t, &ann, lamp, 1).await.0, Status::Created);
        }
        let first = ten_at_once(&t, &ann, &body, &format!("same-{round}")).await;
        ids.push(first["id"].clone());
    }
    assert_overlapped(&overlap);

    let (_, orders) = send(&t, Method::Get, "/api/orders?limit=100", Some(&ann), None).await;
    assert_eq!(orders["total"], ROUNDS, "{orders}");
    let mut listed: Vec<Value> = orders["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["id"].clone())
        .collect();
    listed.reverse();
    assert_eq!(listed, ids);
    assert_eq!(stock(&t, lamp).await, 100 - ROUNDS as i64);
}
