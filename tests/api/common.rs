//! Helpers shared by the integration tests: an in-process app on a temporary data folder,
//! and the real binary on a free port.

use rocket::local::asynchronous::Client;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shopbox::config::Config;

pub struct TestApp {
    pub client: Client,
    pub dir: tempfile::TempDir,
    /// The PostgreSQL schema the app serves from (`SHOPBOX_TEST_BACKEND=pg`), dropped last.
    pub pg: Option<PgSchema>,
}

/// Whether the in-process apps serve from PostgreSQL (`SHOPBOX_TEST_BACKEND=pg`).
pub fn on_pg() -> bool {
    std::env::var("SHOPBOX_TEST_BACKEND").as_deref() == Ok("pg")
}

/// True (after one printed line) when the tests run on PostgreSQL and this one is about
/// sled itself: the caller returns.
pub fn sled_only(test: &str) -> bool {
    if on_pg() {
        println!("skipped on PostgreSQL: {test} is about sled's data folder");
    }
    on_pg()
}

/// The server that `SHOPBOX_TEST_BACKEND=pg` tests use.
pub fn pg_base_url() -> String {
    std::env::var("SHOPBOX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

/// A schema of its own on the test server, dropped (with everything in it) at the end.
pub struct PgSchema {
    pub name: String,
    /// The server's URL with the schema as the search path.
    pub url: String,
}

impl PgSchema {
    pub async fn new() -> PgSchema {
        let name = format!("t_{}", hex::encode(rand::random::<[u8; 6]>()));
        let base = pg_base_url();
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {base} (set SHOPBOX_TEST_PG_URL): {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        PgSchema {
            url: format!("{base}{sep}options=-csearch_path%3D{name}"),
            name,
        }
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Its own thread and runtime: a test's runtime may be ending.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let base = pg_base_url();
                if let Ok((client, conn)) =
                    tokio_postgres::connect(&base, tokio_postgres::NoTls).await
                {
                    tokio::spawn(conn);
                    let _ = client
                        .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                        .await;
                }
            })
        });
        let _ = dropped.join();
    }
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        cache_capacity_mb: 8,
        ..Config::default()
    }
}

pub async fn app() -> TestApp {
    app_with(|_| {}, |r| r).await
}

/// An app on a data folder, whatever `SHOPBOX_TEST_BACKEND` says (tests of moving a
/// shop between the engines).
pub async fn sled_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = test_config(dir.path());
    let db = shopbox::open_data(&config).expect("open data");
    let rocket = shopbox::rocket(config, db).expect("build rocket");
    let client = Client::untracked(rocket).await.expect("valid rocket");
    TestApp {
        client,
        dir,
        pg: None,
    }
}

/// An app whose config and Rocket the test may adjust (extra test routes, say).
pub async fn app_with(
    adjust: impl FnOnce(&mut Config),
    extend: impl FnOnce(rocket::Rocket<rocket::Build>) -> rocket::Rocket<rocket::Build>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    let pg = match on_pg() {
        true => Some(PgSchema::new().await),
        false => None,
    };
    if let Some(pg) = &pg {
        config.database.url = Some(pg.url.clone());
    }
    adjust(&mut config);
    let db = shopbox::open_backend(&config).await.expect("open data");
    let rocket = extend(shopbox::rocket(config, db).expect("build rocket"));
    let client = Client::untracked(rocket).await.expect("valid rocket");
    TestApp { client, dir, pg }
}

/// An app serving from the PostgreSQL database `url` (several may share one); the
/// schema is the caller's to drop.
pub async fn app_on_pg(url: &str) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    config.database.url = Some(url.to_string());
    let db = shopbox::open_backend(&config)
        .await
        .expect("open PostgreSQL");
    let rocket = shopbox::rocket(config, db).expect("build rocket");
    let client = Client::untracked(rocket).await.expect("valid rocket");
    TestApp {
        client,
        dir,
        pg: None,
    }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shopbox"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The real server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        Self::start_logging(data, extra, "warn")
    }

    /// Starts with `RUST_LOG` set to `log`; read stderr only after `kill`, since a full
    /// pipe would stall the server.
    pub fn start_logging(data: &Path, extra: &[&str], log: &str) -> Server {
        Self::start_with_env(data, extra, log, &[])
    }

    /// `start_logging` with extra environment variables (configuration).
    pub fn start_with_env(
        data: &Path,
        extra: &[&str],
        log: &str,
        env: &[(&str, String)],
    ) -> Server {
        let port = free_port();
        let child = Command::new(binary())
            .args(["serve", "--data"])
            .arg(data)
            .args(["--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", log)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shopbox");
        Server { child, port }
    }

    /// Waits until `/health` answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shopbox exited early: {status}");
            }
            if let Ok((200, _, _)) = http(self.port, "GET", "/health", &[], "") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("shopbox did not become ready");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `(status, headers with lower-case names, body)`.
pub type HttpReply = (u16, Vec<(String, String)>, String);

/// A plain HTTP/1.1 request over loopback: `(status, headers, body)`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<HttpReply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let (status, headers) = parse_head(head);
    Ok((status, headers, body.to_string()))
}

/// A response head: its status and its headers with lower-case names.
pub fn parse_head(head: &str) -> (u16, Vec<(String, String)>) {
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    (status, headers)
}

use rocket::http::{ContentType, Header, Method, Status};
use serde_json::{json, Value};
use shopbox::AppState;

pub const PASSWORD: &str = "correct horse battery";

pub fn state(t: &TestApp) -> &AppState {
    t.client.rocket().state::<AppState>().expect("app state")
}

/// Whether the catalog's indexes hold what its records say (sled's; PostgreSQL keeps its
/// own indexes, so there it is always true).
pub fn catalog_indexes_ok(t: &TestApp) -> bool {
    match state(t).db.sled() {
        Some(db) => shopbox::product::store::check_indexes(db)
            .unwrap()
            .is_empty(),
        None => true,
    }
}

/// Makes an order name `product` (without going through checkout), so that deleting it
/// archives it.
pub async fn mark_referenced(t: &TestApp, product: u64) {
    if let Some(db) = state(t).db.sled() {
        db.write(|tx| shopbox::product::store::sled::mark_referenced(tx, product).map(|_| ()))
            .await
            .unwrap();
        return;
    }
    let url = &t.pg.as_ref().expect("a PostgreSQL schema").url;
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .execute(
            "WITH u AS (SELECT id FROM users ORDER BY id LIMIT 1), \
             a AS (INSERT INTO shipping_addresses (user_id, name, phone, address_line1, \
                   address_line2, city, state, postal_code, country, is_deleted) \
                   SELECT id, 'x', '', 'x', '', 'x', 'x', 'x', 'x', true FROM u \
                   RETURNING id, user_id), \
             o AS (INSERT INTO orders (user_id, total_price, status, created_at, updated_at, \
                   shipping_address_id, ship_name, ship_phone, ship_address_line1, \
                   ship_address_line2, ship_city, ship_state, ship_postal_code, ship_country) \
                   SELECT user_id, 0, 'payment_failed', now(), now(), id, 'x', '', 'x', '', \
                   'x', 'x', 'x', 'x' FROM a RETURNING id) \
             INSERT INTO order_items (order_id, product_id, title, quantity, price) \
             SELECT id, $1, 'x', 1, 0 FROM o",
            &[&(product as i64)],
        )
        .await
        .unwrap();
}

/// The sled database under the app, for tests of what only sled has.
pub fn sled(t: &TestApp) -> &shopbox::db::Db {
    state(t)
        .db
        .sled()
        .expect("a test of sled itself runs on sled")
}

pub fn bearer(token: &str) -> Header<'static> {
    Header::new("Authorization", format!("Bearer {token}"))
}

pub async fn post_json(t: &TestApp, path: &str, body: Value) -> (Status, Value) {
    let res = t
        .client
        .post(path.to_string())
        .header(ContentType::JSON)
        .body(body.to_string())
        .dispatch()
        .await;
    let status = res.status();
    (status, res.into_json().await.unwrap_or(Value::Null))
}

pub async fn send(
    t: &TestApp,
    method: rocket::http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (Status, Value) {
    send_to(&t.client, method, path, token, body).await
}

/// `send` to any client (an app opened over an existing data folder, say).
pub async fn send_to(
    client: &Client,
    method: rocket::http::Method,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (Status, Value) {
    let mut req = client.req(method, path.to_string());
    if let Some(token) = token {
        req = req.header(bearer(token));
    }
    if let Some(body) = body {
        req = req.header(ContentType::JSON).body(body.to_string());
    }
    let res = req.dispatch().await;
    let status = res.status();
    (status, res.into_json().await.unwrap_or(Value::Null))
}

pub async fn register(t: &TestApp, email: &str) -> Value {
    let (status, body) = post_json(
        t,
        "/api/account/register",
        json!({"email": email, "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    body
}

/// Logs in and answers `(access_token, refresh_token, body)`.
pub async fn login(t: &TestApp, email: &str, password: &str) -> (String, String, Value) {
    let (status, body) = post_json(
        t,
        "/api/account/login",
        json!({"email": email, "password": password}),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    (
        body["access_token"].as_str().unwrap().to_string(),
        body["refresh_token"].as_str().unwrap().to_string(),
        body,
    )
}

/// Registers and logs in a customer; answers the access token.
pub async fn customer(t: &TestApp, email: &str) -> String {
    register(t, email).await;
    login(t, email, PASSWORD).await.0
}

/// Creates an admin directly in the store and logs in; answers the access token.
pub async fn admin(t: &TestApp, email: &str) -> String {
    let db = &state(t).db;
    shopbox::account::store::create_user(
        db,
        shopbox::account::store::NewUser {
            email: email.into(),
            name: "Admin".into(),
            hashed_password: shopbox::core::password::hash_now(PASSWORD).unwrap(),
            is_admin: true,
            is_verified: true,
        },
        shopbox::core::time::now_micros(),
    )
    .await
    .unwrap();
    login(t, email, PASSWORD).await.0
}

/// The token in the newest outbox link to `to`.
pub async fn last_link_token(t: &TestApp, to: &str) -> String {
    let mails = shopbox::mail::store::latest(&state(t).db, Some(to), 1)
        .await
        .unwrap();
    let link = mails[0].link.clone().expect("a link");
    link.split("token=").nth(1).unwrap().to_string()
}

/// The app's OpenAPI document.
pub async fn openapi(t: &TestApp) -> Value {
    let res = t.client.get("/openapi.json").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    res.into_json().await.expect("an OpenAPI document")
}

/// Every operation of an OpenAPI document: `(path, lower-case method, operation)`.
pub fn operations(spec: &Value) -> Vec<(&str, &str, &Value)> {
    const METHODS: [&str; 7] = ["get", "put", "post", "delete", "patch", "head", "options"];
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().expect("paths") {
        for (method, op) in item.as_object().expect("a path item") {
            if METHODS.contains(&method.as_str()) {
                ops.push((path.as_str(), method.as_str(), op));
            }
        }
    }
    assert!(!ops.is_empty(), "the document lists no operation");
    ops
}

/// The security scheme names an operation requires, in order.
pub fn security_schemes(op: &Value) -> Vec<String> {
    op["security"]
        .as_array()
        .map(|reqs| {
            reqs.iter()
                .flat_map(|r| r.as_object().expect("a requirement").keys().cloned())
                .collect()
        })
        .unwrap_or_default()
}

/// A documented path with every `{parameter}` set to 1.
pub fn concrete_path(path: &str) -> String {
    path.split('/')
        .map(|seg| if seg.starts_with('{') { "1" } else { seg })
        .collect::<Vec<_>>()
        .join("/")
}

/// Creates a product as `admin`; answers its id.
pub async fn new_product(t: &TestApp, admin: &str, title: &str, price: f64, stock: i64) -> u64 {
    let (status, p) = send(
        t,
        Method::Post,
        "/api/products",
        Some(admin),
        Some(json!({"title": title, "price": price, "stock_quantity": stock})),
    )
    .await;
    assert_eq!(status, Status::Created, "{p}");
    p["id"].as_u64().unwrap()
}

/// Creates a shipping address for `token`; answers its id.
pub async fn address(t: &TestApp, token: &str) -> u64 {
    let (status, a) = send(t, Method::Post, "/api/shippings/addresses", Some(token),
        Some(json!({"name": "Ann", "address_line1": "1 Main St", "city": "Town", "state": "ST", "postal_code": "12345", "country": "US"}))).await;
    assert_eq!(status, Status::Created, "{a}");
    a["id"].as_u64().unwrap()
}

/// Adds a product to `token`'s cart.
pub async fn add(t: &TestApp, token: &str, product: u64, quantity: i64) -> (Status, Value) {
    send(
        t,
        Method::Post,
        "/api/carts/add",
        Some(token),
        Some(json!({"product_id": product, "quantity": quantity})),
    )
    .await
}

/// Checks out `token`'s cart with `body`.
pub async fn checkout(t: &TestApp, token: &str, body: Value) -> (Status, Value) {
    send(
        t,
        Method::Post,
        "/api/orders/checkout",
        Some(token),
        Some(body),
    )
    .await
}

/// A product's stock as the catalog shows it.
pub async fn stock(t: &TestApp, product: u64) -> i64 {
    send(
        t,
        Method::Get,
        &format!("/api/products/{product}"),
        None,
        None,
    )
    .await
    .1["stock_quantity"]
        .as_i64()
        .unwrap()
}

/// A checkout with an optional `Idempotency-Key`: `(status, Idempotent-Replayed, body)`.
pub async fn raw_checkout(
    client: &rocket::local::asynchronous::Client,
    token: &str,
    key: Option<&str>,
    body: &Value,
) -> (Status, Option<String>, Value) {
    let mut req = client
        .post("/api/orders/checkout")
        .header(bearer(token))
        .header(ContentType::JSON)
        .body(body.to_string());
    if let Some(k) = key {
        req = req.header(Header::new("Idempotency-Key", k.to_string()));
    }
    let res = req.dispatch().await;
    let status = res.status();
    let replayed = res
        .headers()
        .get_one("Idempotent-Replayed")
        .map(str::to_string);
    (
        status,
        replayed,
        res.into_json().await.unwrap_or(Value::Null),
    )
}

/// The variable that replays a randomised test: `SHOPBOX_TEST_SEED=<n>`.
pub const SEED_VAR: &str = "SHOPBOX_TEST_SEED";

/// The random source of a randomised test: seeded from `SHOPBOX_TEST_SEED` when set, else
/// from entropy; the seed is printed first so that a failure can be replayed.
pub fn seeded_rng(test: &str) -> (u64, rand::rngs::StdRng) {
    use rand::SeedableRng;
    let seed = match std::env::var(SEED_VAR) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{SEED_VAR} must be a number, not {v:?}")),
        Err(_) => rand::random(),
    };
    eprintln!("{test}: {SEED_VAR}={seed} replays this run's random choices");
    (seed, rand::rngs::StdRng::seed_from_u64(seed))
}

/// The data folder's sled database, opened directly (tests that write what an older
/// version left). A shop dropped just before lets go of the folder's lock a moment later
/// (its flusher ends): waits for the lock rather than failing on it.
pub fn reopen_sled(data: &Path) -> sled::Db {
    let mut tries = 0;
    loop {
        match sled::open(data.join("db")) {
            Ok(sled) => return sled,
            Err(_) if tries < 200 => {
                tries += 1;
                std::thread::sleep(Duration::from_millis(50));
            }
            Err(e) => panic!("the folder stayed locked: {e}"),
        }
    }
}
