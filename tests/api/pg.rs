//! `export-pg` and `import-pg` against a real PostgreSQL (`SHOPBOX_TEST_PG_URL`, by default
//! the local server): each test makes its own databases and drops them at the end.

use crate::common;

use common::*;
use rocket::http::{Method, Status};
use rocket::local::asynchronous::Client;
use serde_json::{json, Value};
use std::path::Path;
use std::process::{Command, Output};

fn base_url() -> String {
    std::env::var("SHOPBOX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

async fn pg(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("PostgreSQL at {url} (set SHOPBOX_TEST_PG_URL): {e}"));
    tokio::spawn(conn);
    client
}

/// A database of its own, dropped when the test ends.
struct TestDb {
    name: String,
    url: String,
}

impl TestDb {
    async fn new() -> TestDb {
        let name = format!("shopbox_test_{}", hex::encode(rand::random::<[u8; 6]>()));
        pg(&base_url())
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let base = base_url();
        let server = base.rsplit_once('/').map(|(s, _)| s).unwrap_or(&base);
        TestDb {
            url: format!("{server}/{name}"),
            name,
        }
    }

    async fn client(&self) -> tokio_postgres::Client {
        pg(&self.url).await
    }

    /// Every row of a table as text, sorted: two databases with equal tables answer equal.
    async fn rows(&self, table: &str) -> Vec<String> {
        self.texts(&format!("SELECT t::text FROM {table} t ORDER BY 1"))
            .await
    }

    async fn texts(&self, sql: &str) -> Vec<String> {
        self.client()
            .await
            .query(sql, &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    async fn scalar(&self, sql: &str) -> i64 {
        self.client()
            .await
            .query_one(sql, &[])
            .await
            .unwrap()
            .get(0)
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        let name = self.name.clone();
        // Drop runs inside the test's runtime: a thread of its own may block.
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                pg(&base_url())
                    .await
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await
                    .unwrap();
            });
        })
        .join()
        .unwrap();
    }
}

fn shopbox(args: &[&str], data: &Path) -> Output {
    Command::new(binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The one-line reason of a refused command.
fn refused(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).trim().to_string()
}

/// The app over an existing data folder.
async fn open(dir: &Path) -> Client {
    let config = test_config(dir);
    let db = shopbox::open_data(&config).unwrap();
    Client::untracked(shopbox::rocket(config, db).unwrap())
        .await
        .unwrap()
}

async fn sign_in(c: &Client, email: &str, password: &str) -> (Status, String) {
    let (status, body) = send_to(
        c,
        Method::Post,
        "/api/account/login",
        None,
        Some(json!({"email": email, "password": password})),
    )
    .await;
    (
        status,
        body["access_token"].as_str().unwrap_or("").to_string(),
    )
}

const TABLES: &[&str] = &[
    "users",
    "categories",
    "products",
    "product_categories",
    "cart_items",
    "shipping_addresses",
    "orders",
    "order_items",
    "payments",
    "shipping_statuses",
    "shipping_status_history",
    "reviews",
];

/// A shop with orders of every outcome, a review, an archived product, a deleted address
/// and a full cart, built through the API.
async fn build_shop(t: &TestApp) {
    let admin = admin(t, "admin@example.com").await;
    let ann = customer(t, "ann@example.com").await;
    let bob = customer(t, "Bob@Example.com").await;
    let (_, lamps) = send(
        t,
        Method::Post,
        "/api/products/category",
        Some(&admin),
        Some(json!({"name": "Lamps"})),
    )
    .await;
    let (_, _mugs) = send(
        t,
        Method::Post,
        "/api/products/category",
        Some(&admin),
        Some(json!({"name": "Mugs & Cups"})),
    )
    .await;
    let (_, kettles) = send(
        t,
        Method::Post,
        "/api/products/category",
        Some(&admin),
        Some(json!({"name": "Kettles"})),
    )
    .await;
    let mut products = Vec::new();
    for (title, price, cats) in [
        ("Brass Desk Lamp", 49.99, json!([lamps["id"]])),
        ("Paper Floor Lamp", 120.0, json!([lamps["id"]])),
        ("Blue Mug", 7.5, json!([])),
        ("Retired Kettle", 30.0, json!([kettles["id"]])),
        ("Spare Part", 1.0, json!([])),
    ] {
        let (status, p) = send(t, Method::Post, "/api/products", Some(&admin),
            Some(json!({"title": title, "description": "Made well. \"Quoted\", tab\there.", "price": price, "stock_quantity": 20, "category_ids": cats}))).await;
        assert_eq!(status, Status::Created, "{p}");
        products.push(p["id"].as_u64().unwrap());
    }
    let address = |token: String, line: &'static str| async move {
        let (status, a) = send(t, Method::Post, "/api/shippings/addresses", Some(&token),
            Some(json!({"name": "Ann Example", "phone": "+1 555 0100", "address_line1": line, "city": "Town", "state": "ST", "postal_code": "12345", "country": "US"}))).await;
        assert_eq!(status, Status::Created, "{a}");
        a["id"].as_u64().unwrap()
    };
    let ann_home = address(ann.clone(), "1 Main St").await;
    let ann_old = address(ann.clone(), "9 Old Rd").await;
    let bob_home = address(bob.clone(), "2 Side St").await;
    let order = |token: String, items: Vec<(u64, i64)>, address: u64, success: bool| async move {
        for (product, quantity) in items {
            let (status, body) = send(
                t,
                Method::Post,
                "/api/carts/add",
                Some(&token),
                Some(json!({"product_id": product, "quantity": quantity})),
            )
            .await;
            assert_eq!(status, Status::Created, "{body}");
        }
        let (status, o) = send(
            t,
            Method::Post,
            "/api/orders/checkout",
            Some(&token),
            Some(json!({"shipping_address_id": address, "simulate_success": success})),
        )
        .await;
        assert!(
            status == Status::Created || status == Status::PaymentRequired,
            "{status} {o}"
        );
        o
    };
    // Confirmed, shipped later; ordered to the address that is then deleted.
    let first = order(
        ann.clone(),
        vec![(products[0], 2), (products[3], 1)],
        ann_old,
        true,
    )
    .await;
    // Cancelled.
    let second = order(ann.clone(), vec![(products[1], 1)], ann_home, true).await;
    // Payment failed: the cart stays full for the export's cart_items.
    order(bob.clone(), vec![(products[2], 3)], bob_home, false).await;
    let first_id = first["id"]
        .as_u64()
        .or(first["order"]["id"].as_u64())
        .unwrap();
    let second_id = second["id"]
        .as_u64()
        .or(second["order"]["id"].as_u64())
        .unwrap();
    let (status, _) = send(
        t,
        Method::Patch,
        &format!("/api/orders/cancel/{second_id}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    for state in ["processing", "shipped"] {
        let (status, body) = send(
            t,
            Method::Put,
            &format!("/api/shippings/status/{first_id}"),
            Some(&admin),
            Some(json!({"status": state})),
        )
        .await;
        assert_eq!(status, Status::Ok, "{body}");
    }
    let (status, body) = send(
        t,
        Method::Post,
        &format!("/api/products/{}/reviews", products[0]),
        Some(&ann),
        Some(json!({"rating": 4, "title": "Bright", "body": "Good lamp"})),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    let (status, _) = send(
        t,
        Method::Delete,
        &format!("/api/shippings/addresses/{ann_old}"),
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(status, Status::NoContent);
    // Lines of deleted products stay in carts, unseen: an archived one and a removed one.
    for (token, product) in [(&ann, products[3]), (&bob, products[4])] {
        let (status, body) = send(
            t,
            Method::Post,
            "/api/carts/add",
            Some(token),
            Some(json!({"product_id": product, "quantity": 1})),
        )
        .await;
        assert_eq!(status, Status::Created, "{body}");
    }
    for product in [products[3], products[4]] {
        let path = format!("/api/products/{product}");
        let (status, _) = send(t, Method::Delete, &path, Some(&admin), None).await;
        assert_eq!(status, Status::NoContent);
    }
    // The archived kettle still names its category, which then goes.
    let path = format!("/api/products/category/{}", kettles["id"]);
    let (status, _) = send(t, Method::Delete, &path, Some(&admin), None).await;
    assert_eq!(status, Status::NoContent);
}

/// Public reads and an order as a client sees them, for comparing two shops.
async fn answers(t: &TestApp, token: &str) -> Vec<Value> {
    let mut out = Vec::new();
    for path in [
        "/api/products?limit=100",
        "/api/products?limit=100&sort=price_desc",
        "/api/products?limit=100&sort=title",
        "/api/products/category",
        "/api/products/search?q=floo",
        "/api/products/brass-desk-lamp",
        "/api/orders/",
        "/api/payments/",
        "/api/shippings/addresses",
    ] {
        let (status, body) = send(t, Method::Get, path, Some(token), None).await;
        assert_eq!(status, Status::Ok, "{path}: {body}");
        out.push(body);
    }
    out
}

#[rocket::async_test]
async fn an_exported_shop_serves_from_postgresql_as_it_is() {
    let target = TestDb::new().await;
    let t = sled_app().await;
    build_shop(&t).await;
    let ann = login(&t, "ann@example.com", PASSWORD).await.0;
    let before = answers(&t, &ann).await;
    let TestApp { client, dir, .. } = t;
    drop(client);
    ok(&shopbox(&["export-pg", "--url", &target.url], dir.path()));

    // The first start takes the exported tables as they are and adds its own.
    let served = app_on_pg(&target.url).await;
    let ann = login(&served, "ann@example.com", PASSWORD).await.0;
    assert_eq!(answers(&served, &ann).await, before);
    assert_eq!(
        target
            .scalar("SELECT version::int8 FROM schema_version")
            .await,
        i64::from(shopbox::pg::serving::VERSION)
    );
    // New rows get ids past the exported ones, and a second start changes nothing.
    let admin = login(&served, "admin@example.com", PASSWORD).await.0;
    let id = new_product(&served, &admin, "Brass Desk Clock", 15.0, 4).await;
    assert_eq!(
        id as i64,
        target.scalar("SELECT max(id) FROM products").await
    );
    let again = app_on_pg(&target.url).await;
    let (status, hits) = send(
        &again,
        Method::Get,
        "/api/products/search?q=brass%20de",
        None,
        None,
    )
    .await;
    assert_eq!(status, Status::Ok, "{hits}");
    assert_eq!(hits["total"], 2, "{hits}");

    // And back into a data folder with `import-pg`: the same answers there.
    let ann = login(&again, "ann@example.com", PASSWORD).await.0;
    let served = answers(&again, &ann).await;
    let back = tempfile::tempdir().unwrap();
    ok(&shopbox(&["import-pg", "--url", &target.url], back.path()));
    let home = TestApp {
        client: open(back.path()).await,
        dir: back,
        pg: None,
    };
    let ann = login(&home, "ann@example.com", PASSWORD).await.0;
    assert_eq!(answers(&home, &ann).await, served);
}

#[rocket::async_test]
async fn export_import_export_keeps_every_table_equal() {
    let first = TestDb::new().await;
    let second = TestDb::new().await;
    let t = sled_app().await;
    build_shop(&t).await;
    let TestApp { client, dir, .. } = t;
    drop(client);
    let source = dir.path();

    let summary = ok(&shopbox(&["export-pg", "--url", &first.url], source));
    assert!(summary.contains("rows/s"), "{summary}");
    assert_eq!(first.scalar("SELECT count(*) FROM orders").await, 3);
    assert_eq!(
        first
            .scalar("SELECT count(*) FROM products WHERE archived_at IS NOT NULL")
            .await,
        1
    );
    assert_eq!(
        first
            .scalar("SELECT count(*) FROM shipping_addresses WHERE is_deleted")
            .await,
        1
    );
    assert_eq!(first.scalar("SELECT count(*) FROM cart_items").await, 1);
    assert_eq!(first.scalar("SELECT count(*) FROM reviews").await, 1);
    assert_eq!(
        first
            .scalar("SELECT count(*) FROM shipping_status_history")
            .await,
        5
    );
    let statuses = first.texts("SELECT status FROM payments ORDER BY 1").await;
    assert_eq!(statuses, ["failed", "refunded", "success"]);
    // Money is NUMERIC(12,2), times TIMESTAMPTZ, and the sequences are past every id.
    let price: String = first
        .client()
        .await
        .query_one(
            "SELECT price::text FROM products WHERE title = 'Brass Desk Lamp'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(price, "49.99");
    let kinds = first.texts("SELECT table_name || '.' || column_name || ': ' || data_type FROM information_schema.columns \
        WHERE column_name IN ('price', 'created_at') AND table_name IN ('products', 'orders') ORDER BY 1").await;
    assert_eq!(
        kinds,
        [
            "orders.created_at: timestamp with time zone",
            "products.created_at: timestamp with time zone",
            "products.price: numeric"
        ]
    );
    let next: i64 = first
        .client()
        .await
        .query_one(
            "INSERT INTO categories (name, slug) VALUES ('New', 'new') RETURNING id",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(next, 3);
    first
        .client()
        .await
        .batch_execute("DELETE FROM categories WHERE id = 3")
        .await
        .unwrap();
    // Foreign keys hold: an order item cannot point at a product that never was.
    let err = first
        .client()
        .await
        .batch_execute("UPDATE order_items SET product_id = 999 WHERE id = 1")
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("foreign key") || format!("{err:?}").contains("foreign key"),
        "{err:?}"
    );

    // A target that holds rows is refused, unless told to replace them.
    let why = refused(&shopbox(&["export-pg", "--url", &first.url], source));
    assert!(
        why.contains("already holds rows") && why.contains("--drop-existing"),
        "{why}"
    );
    assert_eq!(why.lines().count(), 1);
    ok(&shopbox(
        &["export-pg", "--url", &first.url, "--drop-existing"],
        source,
    ));

    let copy = tempfile::tempdir().unwrap();
    let summary = ok(&shopbox(&["import-pg", "--url", &first.url], copy.path()));
    assert!(
        summary.contains("imported shopbox tables") && summary.contains("rows/s"),
        "{summary}"
    );
    ok(&shopbox(&["check"], copy.path()));
    ok(&shopbox(&["export-pg", "--url", &second.url], copy.path()));
    for table in TABLES {
        let (a, b) = (first.rows(table).await, second.rows(table).await);
        assert!(!a.is_empty(), "{table} is empty");
        assert_eq!(a, b, "table {table} differs after export, import, export");
    }

    // A folder that holds a shop is refused, unless forced.
    let why = refused(&shopbox(&["import-pg", "--url", &first.url], copy.path()));
    assert!(
        why.contains("already holds a shop") && why.contains("--force"),
        "{why}"
    );
    ok(&shopbox(
        &["import-pg", "--url", &first.url, "--force"],
        copy.path(),
    ));

    // The imported shop works: logins, orders, carts, search, ratings, new ids.
    let c = open(copy.path()).await;
    let (status, ann) = sign_in(&c, "ann@example.com", PASSWORD).await;
    assert_eq!(status, Status::Ok);
    let (_, orders) = send_to(&c, Method::Get, "/api/orders", Some(&ann), None).await;
    let items = orders["items"].as_array().unwrap();
    let statuses: Vec<&str> = items
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["cancelled", "confirmed"]);
    assert_eq!(items[1]["shipping_address"]["address_line1"], "9 Old Rd");
    let (_, addresses) = send_to(
        &c,
        Method::Get,
        "/api/shippings/addresses",
        Some(&ann),
        None,
    )
    .await;
    assert_eq!(
        addresses
            .as_array()
            .map(|a| a.len())
            .or(addresses["items"].as_array().map(|a| a.len())),
        Some(1)
    );
    let (_, hits) = send_to(&c, Method::Get, "/api/products/search?q=lamp", None, None).await;
    assert_eq!(hits["total"], 2, "{hits}");
    let (_, lamp) = send_to(&c, Method::Get, "/api/products/brass-desk-lamp", None, None).await;
    assert_eq!(lamp["rating_count"], 1);
    assert_eq!(lamp["stock_quantity"], 18);
    let (_, gone) = send_to(&c, Method::Get, "/api/products/retired-kettle", None, None).await;
    assert!(gone["detail"].is_string());
    let (status, bob) = sign_in(&c, "bob@example.com", PASSWORD).await;
    assert_eq!(status, Status::Ok);
    let (_, cart) = send_to(&c, Method::Get, "/api/carts", Some(&bob), None).await;
    assert_eq!(cart["total_quantity"], 3, "{cart}");
    let (_, cats) = send_to(&c, Method::Get, "/api/products/category", None, None).await;
    let lamps = cats
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "Lamps")
        .unwrap()
        .clone();
    assert_eq!(lamps["product_count"], 2);
    let (status, made) = send_to(
        &c,
        Method::Post,
        "/api/products/category",
        Some(&sign_in(&c, "admin@example.com", PASSWORD).await.1),
        Some(json!({"name": "Vases"})),
    )
    .await;
    assert_eq!(status, Status::Created);
    assert_eq!(made["id"], 3);
}

#[rocket::async_test]
async fn an_invalid_row_stops_the_import_and_leaves_the_folder_as_it_was() {
    let db = TestDb::new().await;
    let t = sled_app().await;
    build_shop(&t).await;
    let TestApp { client, dir, .. } = t;
    drop(client);
    ok(&shopbox(&["export-pg", "--url", &db.url], dir.path()));

    let pg = db.client().await;
    pg.batch_execute(
        "ALTER TABLE products DROP CONSTRAINT products_price_check;
         UPDATE products SET price = -5 WHERE title = 'Blue Mug';
         ALTER TABLE users DROP CONSTRAINT users_email_key;
         DROP INDEX users_email_lower_key;
         UPDATE users SET email = 'ANN@example.com' WHERE lower(email) = 'bob@example.com';",
    )
    .await
    .unwrap();
    let mug: i64 = pg
        .query_one("SELECT id FROM products WHERE title = 'Blue Mug'", &[])
        .await
        .unwrap()
        .get(0);

    // Into an empty folder: refused, and the folder stays empty.
    let empty = tempfile::tempdir().unwrap();
    let out = shopbox(&["import-pg", "--url", &db.url], empty.path());
    let why = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success());
    assert!(why.contains("nothing was imported: 2 problem(s)"), "{why}");
    assert!(
        why.contains(&format!("products id {mug}: price -5.00 is out of range")),
        "{why}"
    );
    assert!(
        why.contains("users id 3: email ANN@example.com is also user 2's"),
        "{why}"
    );
    let users = ok(&shopbox(&["users", "list"], empty.path()));
    assert!(!users.contains('@'), "{users}");

    // Over a shop with --force: refused, and the shop is still there.
    let why = refused(&shopbox(
        &["import-pg", "--url", &db.url, "--force"],
        dir.path(),
    ));
    assert!(why.contains("nothing was imported"), "{why}");
    let users = ok(&shopbox(&["users", "list"], dir.path()));
    assert!(users.contains("Bob@Example.com"), "{users}");
    ok(&shopbox(&["check"], dir.path()));
}

#[test]
fn import_refuses_while_the_server_runs_and_export_runs_in_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready();
    // import-pg would replace the shop under the server: refused in one line.
    let why = refused(&shopbox(
        &[
            "import-pg",
            "--url",
            "postgres://postgres@127.0.0.1:5432/none",
        ],
        dir.path(),
    ));
    assert!(why.contains("stop the server first"), "{why}");
    assert_eq!(why.lines().count(), 1, "{why}");
    // export-pg is carried out by the server (tests/api/live_cli.rs); a database that is
    // not there is its one-line failure.
    let why = refused(&shopbox(
        &[
            "export-pg",
            "--url",
            "postgres://postgres@127.0.0.1:5432/none",
        ],
        dir.path(),
    ));
    assert!(why.contains("none"), "{why}");
    assert_eq!(why.lines().count(), 1, "{why}");
}

/// The FastAPI reference backend's tables, as its Alembic migrations create them.
const REFERENCE_SCHEMA: &str = "
CREATE TYPE orderstatus AS ENUM ('pending', 'confirmed', 'cancelled');
CREATE TYPE paymentstatus AS ENUM ('pending', 'success', 'failed', 'cancelled');
CREATE TYPE paymentgateway AS ENUM ('mock', 'bkash', 'razorpay', 'sslcommerz');
CREATE TYPE shippingstatus AS ENUM ('pending', 'processing', 'shipped', 'delivered', 'cancelled');
CREATE TABLE users (id SERIAL PRIMARY KEY, email VARCHAR(255) UNIQUE NOT NULL,
  hashed_password VARCHAR(255) NOT NULL, is_active BOOLEAN, is_admin BOOLEAN,
  is_verified BOOLEAN, created_at TIMESTAMP, updated_at TIMESTAMP);
CREATE TABLE refresh_tokens (id SERIAL PRIMARY KEY, user_id INTEGER REFERENCES users (id),
  token VARCHAR(255) UNIQUE, expires_at TIMESTAMP, revoked BOOLEAN, created_at TIMESTAMP);
CREATE TABLE categories (id SERIAL PRIMARY KEY, name VARCHAR(255) UNIQUE NOT NULL);
CREATE TABLE products (id SERIAL PRIMARY KEY, title VARCHAR(255) NOT NULL, description TEXT,
  slug TEXT UNIQUE NOT NULL, price DOUBLE PRECISION NOT NULL, stock_quantity INTEGER,
  image_url VARCHAR(255), created_at TIMESTAMPTZ DEFAULT now(), updated_at TIMESTAMPTZ);
CREATE TABLE product_category (
  product_id INTEGER REFERENCES products (id) ON DELETE CASCADE,
  category_id INTEGER REFERENCES categories (id) ON DELETE CASCADE,
  PRIMARY KEY (product_id, category_id));
CREATE TABLE cart_items (id SERIAL PRIMARY KEY, user_id INTEGER REFERENCES users (id),
  product_id INTEGER REFERENCES products (id) ON DELETE SET NULL, quantity INTEGER,
  price DOUBLE PRECISION);
CREATE TABLE shipping_addresses (id SERIAL PRIMARY KEY, user_id INTEGER REFERENCES users (id),
  name VARCHAR(255) NOT NULL, address_line1 VARCHAR(255), address_line2 VARCHAR(255),
  city VARCHAR(100), state VARCHAR(100), pin_code VARCHAR(20), country VARCHAR(100));
CREATE TABLE orders (id SERIAL PRIMARY KEY, user_id INTEGER REFERENCES users (id),
  total_price DOUBLE PRECISION, status orderstatus,
  shipping_address_id INTEGER REFERENCES shipping_addresses (id),
  created_at TIMESTAMPTZ DEFAULT now());
CREATE TABLE order_items (id SERIAL PRIMARY KEY,
  order_id INTEGER REFERENCES orders (id) ON DELETE CASCADE,
  product_id INTEGER REFERENCES products (id) ON DELETE SET NULL, quantity INTEGER,
  price DOUBLE PRECISION);
CREATE TABLE payments (id SERIAL PRIMARY KEY, order_id INTEGER UNIQUE REFERENCES orders (id),
  user_id INTEGER REFERENCES users (id), amount INTEGER, status paymentstatus,
  payment_gateway paymentgateway, is_paid BOOLEAN, pg_order_id VARCHAR(255),
  pg_payment_id VARCHAR(255), pg_signature VARCHAR(255), created_at TIMESTAMPTZ DEFAULT now(),
  updated_at TIMESTAMPTZ);
CREATE TABLE shipping_status (id SERIAL PRIMARY KEY, order_id INTEGER REFERENCES orders (id),
  status shippingstatus, updated_at TIMESTAMPTZ DEFAULT now());
";

#[rocket::async_test]
async fn a_reference_shop_is_mapped_and_its_bcrypt_users_log_in() {
    let db = TestDb::new().await;
    let pg = db.client().await;
    pg.batch_execute(REFERENCE_SCHEMA).await.unwrap();
    let ann_hash = bcrypt::hash("ann's old password", 12).unwrap();
    let admin_hash = bcrypt::hash("admin's old password", 4).unwrap();
    pg.execute(
        "INSERT INTO users (email, hashed_password, is_active, is_admin, is_verified, created_at, updated_at) \
         VALUES ('ann@example.com', $1, true, false, true, '2024-03-01 10:00', '2024-03-02 10:00'), \
                ('admin@example.com', $2, true, true, true, '2024-01-01 09:00', NULL)",
        &[&ann_hash, &admin_hash],
    )
    .await
    .unwrap();
    pg.batch_execute(
        "INSERT INTO refresh_tokens (user_id, token, revoked) VALUES (1, 'abc', false);
         INSERT INTO categories (name) VALUES ('Lamps'), ('Mugs & Cups');
         INSERT INTO products (title, description, slug, price, stock_quantity, image_url) VALUES
           ('Brass Desk Lamp', 'A lamp for the desk', 'brass-desk-lamp', 49.99, 10,
            'media/images/0123456789abcdef0123456789abcdef.png'),
           ('Numbered Mug', NULL, '123', 10.005, 5, NULL),
           ('Search Lamp', 'Finds things', 'search', 5, 3, NULL),
           ('Gone Vase', NULL, 'gone-vase', 10, 1, NULL);
         INSERT INTO product_category VALUES (1, 1), (3, 1), (2, 2);
         INSERT INTO cart_items (user_id, product_id, quantity, price) VALUES
           (1, 1, 1, 49.99), (1, 1, 2, 49.99), (1, 4, 1, 10);
         INSERT INTO shipping_addresses (user_id, name, address_line1, city, state, pin_code, country)
           VALUES (1, 'Ann', NULL, 'Town', 'KA', '560001', 'IN');
         INSERT INTO orders (user_id, total_price, status, shipping_address_id, created_at) VALUES
           (1, 59.99, 'confirmed', 1, '2024-04-01 12:00+00'),
           (1, 10.005, 'pending', 1, '2024-04-02 12:00+00'),
           (1, 49.99, 'cancelled', 1, '2024-04-03 12:00+00');
         INSERT INTO order_items (order_id, product_id, quantity, price) VALUES
           (1, 1, 1, 49.99), (1, 4, 1, 10), (2, 2, 1, 10.005), (3, 1, 1, 49.99);
         INSERT INTO payments (order_id, user_id, amount, status, payment_gateway, is_paid, pg_payment_id) VALUES
           (1, 1, 60, 'success', 'mock', true, 'pay_1'),
           (2, 1, 10, 'failed', 'mock', false, NULL),
           (3, 1, 50, 'cancelled', 'razorpay', false, 'pay_3');
         INSERT INTO shipping_status (order_id, status, updated_at) VALUES
           (3, 'pending', '2024-04-03 12:00+00'), (3, 'cancelled', '2024-04-03 13:00+00');
         DELETE FROM products WHERE id = 4;",
    )
    .await
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let their_media = tempfile::tempdir().unwrap();
    let image = "0123456789abcdef0123456789abcdef.png";
    std::fs::write(
        their_media.path().join(image),
        shopbox::product::images::demo_png(1, 8),
    )
    .unwrap();
    let media = their_media.path().to_string_lossy().to_string();
    let summary = ok(&shopbox(
        &["import-pg", "--url", &db.url, "--media", &media],
        dir.path(),
    ));
    assert!(!summary.contains("image file missing"), "{summary}");
    assert!(dir.path().join("media").join(image).is_file());
    for change in [
        "imported the FastAPI reference schema",
        "users: name taken from the email before @: 2",
        "categories: slug made from the name: 2",
        "products: slug was a number or a reserved word, suffixed: 2 (ids 2, 3)",
        "products: price rounded to the cent: 1 (ids 2)",
        "cart_items: dropped, the product is gone: 1 (ids 3)",
        "cart_items: merged into the same product's line: 1 (ids 2)",
        "shipping_addresses.address_line1: null became empty: 1 (ids 1)",
        "orders: pending became payment_failed: 1 (ids 2)",
        "orders: confirmed without a shipping status, now pending: 1 (ids 1)",
        "order_items: the product is gone, titled \"Deleted product\": 1 (ids 2)",
        "payments: cancelled (of a cancelled order) became refunded: 1 (ids 3)",
        "payments: amount set to the order's total_price (the reference kept whole units): 3",
        "refresh_tokens: not imported (everyone signs in again): 1",
    ] {
        assert!(
            summary.contains(change),
            "missing {change:?} in:\n{summary}"
        );
    }
    ok(&shopbox(&["check"], dir.path()));

    let c = open(dir.path()).await;
    // bcrypt logs in, and is replaced by argon2id on the way.
    let (status, _) = sign_in(&c, "ann@example.com", "wrong password").await;
    assert_eq!(status, Status::Unauthorized);
    let (status, ann) = sign_in(&c, "ann@example.com", "ann's old password").await;
    assert_eq!(status, Status::Ok);
    let state = c.rocket().state::<shopbox::AppState>().unwrap();
    let stored = shopbox::account::store::user_by_email(&state.db, "ann@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(
        stored.hashed_password.starts_with("$argon2id$"),
        "{}",
        stored.hashed_password
    );
    assert_eq!(stored.name, "ann");
    let (status, _) = sign_in(&c, "ann@example.com", "ann's old password").await;
    assert_eq!(status, Status::Ok);

    // Imported products are found by search, by their new slugs, in their categories.
    let (_, hits) = send_to(&c, Method::Get, "/api/products/search?q=lamp", None, None).await;
    assert_eq!(hits["total"], 2, "{hits}");
    let (_, mug) = send_to(&c, Method::Get, "/api/products/123-item", None, None).await;
    assert_eq!(mug["price"], 10.01);
    assert_eq!(mug["categories"][0]["slug"], "mugs-cups");
    let (_, lamp) = send_to(&c, Method::Get, "/api/products/brass-desk-lamp", None, None).await;
    assert_eq!(
        lamp["image_url"],
        "/media/0123456789abcdef0123456789abcdef.png"
    );

    let (_, orders) = send_to(&c, Method::Get, "/api/orders", Some(&ann), None).await;
    let items = orders["items"].as_array().unwrap();
    let summary: Vec<(String, f64, String)> = items
        .iter()
        .map(|o| {
            (
                o["status"].as_str().unwrap().to_string(),
                o["total_price"].as_f64().unwrap(),
                o["payment"]["status"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("cancelled".into(), 49.99, "refunded".into()),
            ("payment_failed".into(), 10.01, "failed".into()),
            ("confirmed".into(), 59.99, "success".into()),
        ]
    );
    let first = &items[2];
    assert_eq!(first["payment"]["amount"], 59.99);
    assert_eq!(first["items"][1]["title"], "Deleted product");
    assert_eq!(first["shipping_address"]["postal_code"], "560001");
    assert_eq!(first["shipping_address"]["address_line1"], "");
    let (_, shipping) = send_to(&c, Method::Get, "/api/shippings/status/1", Some(&ann), None).await;
    assert_eq!(shipping["status"], "pending", "{shipping}");
    let (_, shipping) = send_to(&c, Method::Get, "/api/shippings/status/3", Some(&ann), None).await;
    assert_eq!(
        shipping["history"].as_array().map(|h| h.len()),
        Some(2),
        "{shipping}"
    );
    let (_, cart) = send_to(&c, Method::Get, "/api/carts", Some(&ann), None).await;
    assert_eq!(cart["total_quantity"], 3, "{cart}");
    let (status, admin) = sign_in(&c, "admin@example.com", "admin's old password").await;
    assert_eq!(status, Status::Ok);
    let (status, _) = send_to(&c, Method::Get, "/api/orders/admin/all", Some(&admin), None).await;
    assert_eq!(status, Status::Ok);
}

#[rocket::async_test]
async fn emails_equal_but_for_case_stop_a_reference_import() {
    let db = TestDb::new().await;
    let pg = db.client().await;
    pg.batch_execute(REFERENCE_SCHEMA).await.unwrap();
    pg.batch_execute(
        "INSERT INTO users (email, hashed_password) VALUES
           ('sam@example.com', '$2b$04$abcdefghijklmnopqrstuu'),
           ('Sam@Example.com', '$2b$04$abcdefghijklmnopqrstuu');
         INSERT INTO shipping_addresses (user_id, name, city, state, pin_code, country)
           VALUES (2, 'Sam', 'Town', 'KA', '1', 'IN');",
    )
    .await
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let why = refused(&shopbox(&["import-pg", "--url", &db.url], dir.path()));
    assert!(why.contains("nothing was imported: 1 problem(s)"), "{why}");
    assert!(
        why.contains(
            "users id 2: email Sam@Example.com is also user 1's (emails are unique ignoring case)"
        ),
        "{why}"
    );
    assert!(
        shopbox::transfer::is_empty(&shopbox::open_data(&test_config(dir.path())).unwrap())
            .unwrap()
    );
}
