//! The storefront and the dashboard: in process, what the pages are served with (shells,
//! CSP, cache headers, the verify link, the dashboard's admin API); then in a real browser
//! (headless Chromium over WebDriver, the real binary), the flows a customer and an admin
//! go through. A failing browser test saves a screenshot under
//! `target/browser-failures/`; the passing ones take the README's pictures into
//! `target/screenshots/`, and into `docs/screenshots/` when `SHOPBOX_TEST_README_PICTURES=1`
//! (so a test run leaves the work tree as it was).

use crate::common::{self, free_port, http, PASSWORD};

use fantoccini::{Client, ClientBuilder, Locator};
use rocket::http::{Accept, Header, Method, Status};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

// In process.

const SHOP_PAGES: &[&str] = &[
    "/",
    "/products",
    "/products?q=tea&page=2",
    "/product/blue-teapot",
    "/cart",
    "/checkout",
    "/orders",
    "/orders/7",
    "/account",
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password?token=abc",
    "/verify-email?token=abc",
];

const ADMIN_PAGES: &[&str] = &[
    "/admin",
    "/admin/",
    "/admin/products",
    "/admin/products/new",
    "/admin/orders/3",
    "/admin/users",
];

fn header<'a>(res: &'a rocket::local::asynchronous::LocalResponse<'_>, name: &str) -> &'a str {
    res.headers().get_one(name).unwrap_or("")
}

#[rocket::async_test]
async fn every_page_route_answers_its_shell_with_a_strict_csp_and_no_cache() {
    let t = common::app_with(|c| c.shop_name = "Tea & <Cakes>".into(), |r| r).await;
    for (pages, module) in [(SHOP_PAGES, "/js/shop.js"), (ADMIN_PAGES, "/js/admin.js")] {
        for page in pages {
            let res = t.client.get(*page).header(Accept::HTML).dispatch().await;
            assert_eq!(res.status(), Status::Ok, "{page}");
            assert_eq!(header(&res, "Content-Type"), "text/html; charset=utf-8");
            assert_eq!(header(&res, "Cache-Control"), "no-cache", "{page}");
            let csp = header(&res, "Content-Security-Policy").to_string();
            for rule in [
                "default-src 'self'",
                "script-src 'self'",
                "style-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(csp.contains(rule), "{page}: {csp}");
            }
            assert!(!csp.contains("unsafe"), "{csp}");
            assert_eq!(header(&res, "Referrer-Policy"), "no-referrer");
            let body = res.into_string().await.unwrap();
            assert!(body.contains(module), "{page} loads {module}");
            assert!(body.contains("Tea &amp; &lt;Cakes&gt;"), "{page}");
            assert!(
                body.contains("href=\"/docs/\""),
                "{page} links the API docs"
            );
        }
    }
    // Unknown pages and API paths are not shells.
    let res = t.client.get("/nowhere").dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
    let res = t
        .client
        .get("/api/nowhere")
        .header(Accept::HTML)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NotFound);
    assert!(res.into_string().await.unwrap().contains("detail"));
}

#[rocket::async_test]
async fn pages_revalidate_with_their_etag() {
    let t = common::app().await;
    let res = t.client.get("/cart").dispatch().await;
    let etag = header(&res, "ETag").to_string();
    assert!(etag.starts_with('"'), "{etag}");
    let again = t
        .client
        .get("/orders/1")
        .header(Header::new("If-None-Match", etag))
        .dispatch()
        .await;
    assert_eq!(again.status(), Status::NotModified);
}

/// The `/assets/<version>/` prefix the shell loads its files from.
async fn asset_prefix(t: &common::TestApp) -> String {
    let body = t
        .client
        .get("/")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    let end = body.find("/style.css").expect("the stylesheet");
    let start = body[..end].rfind("/assets/").expect("an asset URL");
    body[start..end].to_string()
}

#[rocket::async_test]
async fn assets_are_fingerprinted_and_cached_for_a_year() {
    let t = common::app().await;
    let prefix = asset_prefix(&t).await;
    for (file, kind) in [
        ("/style.css", "text/css"),
        ("/js/shop.js", "text/javascript"),
        ("/js/admin.js", "text/javascript"),
        ("/js/lib.js", "text/javascript"),
        ("/icons/favicon.svg", "image/svg+xml"),
    ] {
        let res = t.client.get(format!("{prefix}{file}")).dispatch().await;
        assert_eq!(res.status(), Status::Ok, "{file}");
        assert!(header(&res, "Content-Type").starts_with(kind), "{file}");
        assert_eq!(
            header(&res, "Cache-Control"),
            "public, max-age=31536000, immutable"
        );
        assert!(!header(&res, "ETag").is_empty());
    }
    // A page loaded before an upgrade asks for an old version: it gets today's file,
    // revalidated rather than cached for a year.
    let old = t
        .client
        .get("/assets/0000000000000000/style.css")
        .dispatch()
        .await;
    assert_eq!(old.status(), Status::Ok);
    assert_eq!(header(&old, "Cache-Control"), "no-cache");
    let missing = t
        .client
        .get(format!("{prefix}/js/nope.js"))
        .dispatch()
        .await;
    assert_eq!(missing.status(), Status::NotFound);
}

#[rocket::async_test]
async fn every_module_a_page_imports_is_served() {
    let t = common::app().await;
    let prefix = asset_prefix(&t).await;
    for entry in ["shop.js", "admin.js"] {
        let code = t
            .client
            .get(format!("{prefix}/js/{entry}"))
            .dispatch()
            .await
            .into_string()
            .await
            .unwrap();
        let imports: Vec<&str> = code
            .split("from './")
            .skip(1)
            .filter_map(|s| s.split('\'').next())
            .collect();
        assert!(imports.contains(&"lib.js"), "{entry}");
        for module in imports {
            let res = t
                .client
                .get(format!("{prefix}/js/{module}"))
                .dispatch()
                .await;
            assert_eq!(res.status(), Status::Ok, "{entry} imports {module}");
        }
    }
}

/// What the CSP relies on and what keeps customer text out of the HTML parser, checked on
/// the files themselves: no inline script or style in the shells, no HTML strings built
/// from data in the modules.
#[test]
fn pages_have_no_inline_script_and_modules_never_parse_html() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("static");
    for shell in ["shop.html", "admin.html"] {
        let html = std::fs::read_to_string(dir.join(shell)).unwrap();
        for tag in html.split("<script").skip(1) {
            let open = tag.split('>').next().unwrap();
            assert!(open.contains("src="), "{shell}: inline script");
            assert!(tag.contains("</script>"));
            assert!(
                tag.split('>').nth(1).unwrap().starts_with("</script"),
                "{shell}: inline script body"
            );
        }
        assert!(!html.contains("style="), "{shell}: inline style");
        assert!(!html.contains("<style"), "{shell}: inline style");
        assert!(
            !html.contains(" onclick") && !html.contains(" onload"),
            "{shell}: inline handler"
        );
        assert!(
            !html.contains("http://") && !html.contains("https://"),
            "{shell}: nothing from elsewhere"
        );
    }
    for entry in std::fs::read_dir(dir.join("js")).unwrap() {
        let path = entry.unwrap().path();
        let code = std::fs::read_to_string(&path).unwrap();
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
            "eval(",
            "new Function",
        ] {
            assert!(!code.contains(sink), "{}: {sink}", path.display());
        }
    }
}

#[rocket::async_test]
async fn the_verify_link_answers_a_browser_with_the_page_and_an_api_client_with_json() {
    let t = common::app().await;
    common::register(&t, "verify@example.com").await;
    let token = common::last_link_token(&t, "verify@example.com").await;
    let path = format!("/api/account/verify?token={token}");

    let res = t
        .client
        .get(path.clone())
        .header(Header::new(
            "Accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::SeeOther);
    assert_eq!(
        header(&res, "Location"),
        format!("/verify-email?token={token}")
    );
    // The redirect itself verifies nothing: the page does, through the API.
    let user = shopbox::account::store::user_by_email(&common::state(&t).db, "verify@example.com")
        .await
        .unwrap()
        .unwrap();
    assert!(!user.is_verified);
    let alias = t
        .client
        .get(format!("/api/account/verify-email?token={token}"))
        .header(Accept::HTML)
        .dispatch()
        .await;
    assert_eq!(alias.status(), Status::SeeOther);

    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut req = t.client.get("/api/account/verify?token=wrong");
        if let Some(a) = accept {
            req = req.header(Header::new("Accept", a));
        }
        let res = req.dispatch().await;
        assert_eq!(res.status(), Status::BadRequest, "{accept:?}");
        let body: Value = res.into_json().await.unwrap();
        assert_eq!(body["detail"], "Invalid, expired or already used token");
    }
    let res = t.client.get(path).header(Accept::JSON).dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["user"]["is_verified"], true);
}

async fn create_product(
    t: &common::TestApp,
    admin: &str,
    title: &str,
    price: f64,
    stock: i64,
) -> Value {
    let (status, body) = common::send(
        t,
        Method::Post,
        "/api/products",
        Some(admin),
        Some(json!({"title": title, "description": "", "price": price, "stock_quantity": stock, "category_ids": []})),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    body
}

async fn address(t: &common::TestApp, token: &str) -> u64 {
    let (status, body) = common::send(
        t,
        Method::Post,
        "/api/shippings/addresses",
        Some(token),
        Some(json!({"address_line1": "1 Main St", "city": "Springfield", "state": "IL", "postal_code": "62701", "country": "US"})),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    body["id"].as_u64().unwrap()
}

async fn buy(
    t: &common::TestApp,
    token: &str,
    product: u64,
    quantity: i64,
    address: u64,
    pay: bool,
) -> Status {
    let (status, body) = common::send(
        t,
        Method::Post,
        "/api/carts/add",
        Some(token),
        Some(json!({"product_id": product, "quantity": quantity})),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    let (status, _) = common::send(
        t,
        Method::Post,
        "/api/orders/checkout",
        Some(token),
        Some(json!({"shipping_address_id": address, "simulate_success": pay})),
    )
    .await;
    if !pay {
        // A failed payment leaves the cart as it was.
        let (_, cart) = common::send(t, Method::Get, "/api/carts", Some(token), None).await;
        let id = cart["items"][0]["id"].as_u64().unwrap();
        common::send(
            t,
            Method::Delete,
            &format!("/api/carts/delete/{id}"),
            Some(token),
            None,
        )
        .await;
    }
    status
}

#[rocket::async_test]
async fn the_admin_summary_counts_today_and_30_days_and_reads_only_those_orders() {
    if common::sled_only("the_admin_summary_counts_today_and_30_days_and_reads_only_those_orders") {
        return;
    }
    let t = common::app().await;
    let admin = common::admin(&t, "boss@example.com").await;
    let customer = common::customer(&t, "buyer@example.com").await;
    let mug = create_product(&t, &admin, "Mug", 12.5, 100).await;
    let rare = create_product(&t, &admin, "Rare vase", 80.0, 3).await;
    let addr = address(&t, &customer).await;
    let mug_id = mug["id"].as_u64().unwrap();
    for _ in 0..20 {
        assert_eq!(
            buy(&t, &customer, mug_id, 1, addr, true).await,
            Status::Created
        );
    }
    let rare_id = rare["id"].as_u64().unwrap();
    assert_eq!(
        buy(&t, &customer, rare_id, 2, addr, true).await,
        Status::Created
    );
    let (_, orders) = common::send(
        &t,
        Method::Get,
        "/api/orders?limit=1",
        Some(&customer),
        None,
    )
    .await;
    let cancel = format!("/api/orders/cancel/{}", orders["items"][0]["id"]);
    let (status, _) = common::send(&t, Method::Patch, &cancel, Some(&customer), None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(
        buy(&t, &customer, mug_id, 1, addr, false).await,
        Status::PaymentRequired
    );
    assert_eq!(
        buy(&t, &customer, rare_id, 1, addr, true).await,
        Status::Created
    );

    let (status, s) = common::send(&t, Method::Get, "/api/admin/summary", Some(&admin), None).await;
    assert_eq!(status, Status::Ok, "{s}");
    assert_eq!(s["today"]["orders"], 21, "{s}");
    assert_eq!(s["today"]["revenue"], 20.0 * 12.5 + 80.0);
    assert_eq!(s["today"]["cancelled"], 1);
    assert_eq!(s["today"]["payment_failed"], 1);
    assert_eq!(s["last_30_days"]["orders"], 21);
    assert_eq!(s["last_30_days"]["revenue"], 330.0);
    let days = s["days"].as_array().unwrap();
    assert_eq!(days.len(), 30);
    assert_eq!(days[29], s["today"]);
    assert_eq!(days[0]["date"], s["last_30_days"]["date"]);
    assert!(days[..29]
        .iter()
        .all(|d| d["orders"] == 0 && d["cancelled"] == 0));
    assert_eq!(s["low_stock_threshold"], 5);
    let low: Vec<&str> = s["low_stock"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(low, ["Rare vase"]);
    assert_eq!(
        s["low_stock"][0]["stock_quantity"], 2,
        "3, less 2 given back by the cancel, less 1"
    );
    let latest = s["latest_orders"].as_array().unwrap();
    assert_eq!(latest.len(), 8);
    let statuses: Vec<&str> = latest[..4]
        .iter()
        .map(|o| o["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["confirmed", "payment_failed", "cancelled", "confirmed"]
    );
    assert_eq!(latest[0]["shipping_status"], "pending");
    assert_eq!(latest[0]["total_price"], 80.0);
    assert_eq!(latest[1]["shipping_status"], Value::Null);
    assert_eq!(latest[2]["item_count"], 2);

    // A month later those orders are outside the 30 days, and the summary stops at the
    // newest of them instead of reading all 23 (it decodes 9 for the latest 8, and the
    // session, user, shipping statuses and the low-stock product: about 20).
    common::state(&t).clock.advance(31 * 24 * 3600 * 1_000_000);
    // Access tokens expire by the shop's clock too: log in again a month later.
    let admin = common::login(&t, "boss@example.com", common::PASSWORD)
        .await
        .0;
    let customer = common::login(&t, "buyer@example.com", common::PASSWORD)
        .await
        .0;
    let before = common::sled(&t).decoded_count();
    let (status, s) = common::send(&t, Method::Get, "/api/admin/summary", Some(&admin), None).await;
    let decoded = common::sled(&t).decoded_count() - before;
    assert_eq!(status, Status::Ok);
    assert_eq!(s["today"]["orders"], 0);
    assert_eq!(s["last_30_days"]["orders"], 0);
    assert_eq!(s["last_30_days"]["revenue"], 0.0);
    assert_eq!(s["latest_orders"].as_array().unwrap().len(), 8);
    assert!(decoded <= 22, "decoded {decoded} records");

    let (status, s) = common::send(
        &t,
        Method::Get,
        "/api/admin/summary?low_stock=0",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(s["low_stock"].as_array().unwrap().len(), 0);
    let (status, body) = common::send(
        &t,
        Method::Get,
        "/api/admin/summary?low_stock=x",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(body["detail"][0]["loc"], json!(["query", "low_stock"]));
    // Each value of a repeated parameter is checked, and a repeat must not differ.
    for query in ["low_stock=null&low_stock=null", "low_stock=3&low_stock=4"] {
        let (status, body) = common::send(
            &t,
            Method::Get,
            &format!("/api/admin/summary?{query}"),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity, "{query}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "low_stock"]));
    }
    let (status, s) = common::send(
        &t,
        Method::Get,
        "/api/admin/summary?low_stock=3&low_stock=3",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(s["low_stock_threshold"], 3);
    let (status, _) =
        common::send(&t, Method::Get, "/api/admin/summary", Some(&customer), None).await;
    assert_eq!(status, Status::Forbidden);
    let (status, _) = common::send(&t, Method::Get, "/api/admin/summary", None, None).await;
    assert_eq!(status, Status::Unauthorized);
}

#[rocket::async_test]
async fn the_outbox_lists_mail_with_tokens_hidden() {
    let t = common::app().await;
    let admin = common::admin(&t, "boss@example.com").await;
    common::register(&t, "new@example.com").await;
    let token = common::last_link_token(&t, "new@example.com").await;
    common::register(&t, "other@example.com").await;
    let (status, page) = common::send(
        &t,
        Method::Get,
        "/api/admin/outbox?to=NEW@example.com",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok, "{page}");
    assert_eq!(page["total"], 1);
    let mail = &page["items"][0];
    assert_eq!(mail["to"], "new@example.com");
    let link = mail["link"].as_str().unwrap();
    assert!(link.ends_with("/api/account/verify?token=hidden"), "{link}");
    assert!(mail["body"].as_str().unwrap().contains("token=hidden"));
    assert!(
        !page.to_string().contains(&token),
        "the token never leaves the server"
    );
    let (_, all) = common::send(
        &t,
        Method::Get,
        "/api/admin/outbox?limit=1",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(all["total"], 2);
    assert_eq!(all["items"][0]["to"], "other@example.com", "newest first");
    let (status, _) = common::send(
        &t,
        Method::Get,
        "/api/admin/outbox?limit=0",
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
}

// In a real browser.

const WAIT: Duration = Duration::from_secs(20);
const ADMIN_EMAIL: &str = "owner@example.com";
const DESKTOP: (u32, u32) = (1280, 860);
const PHONE: (u32, u32) = (390, 844);

type R<T = ()> = Result<T, String>;

/// Any failure as the test's error text.
trait Say<T> {
    fn say(self) -> R<T>;
}

impl<T, E: std::fmt::Display> Say<T> for Result<T, E> {
    fn say(self) -> R<T> {
        self.map_err(|e| e.to_string())
    }
}

fn on_path(name: &str) -> Option<PathBuf> {
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    })
}

/// Chromium and ChromeDriver, or a failure that says how to get them.
fn browser_tools() -> (PathBuf, PathBuf) {
    match (on_path("chromium"), on_path("chromedriver")) {
        (Some(c), Some(d)) => (c, d),
        _ => panic!(
            "the browser tests need Chromium and ChromeDriver (`chromium` and `chromedriver` on PATH); \
             run scripts/test.sh, which installs Debian's chromium and chromium-driver"
        ),
    }
}

/// The real binary on a free port, its log lines collected as they come (mail links).
struct Shop {
    _child: Killed,
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
    /// The schema the binary serves from with `SHOPBOX_TEST_BACKEND=pg`, dropped last.
    _pg: Option<common::PgSchema>,
}

impl Shop {
    /// A demo catalog, and an admin made with the CLI, before the server starts. With
    /// `SHOPBOX_TEST_BACKEND=pg` the binary serves from a fresh schema: the catalog is
    /// seeded into the data folder (which keeps its images) and exported there, and the
    /// admin is made on the database.
    async fn start() -> Shop {
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = match common::on_pg() {
            true => Some(common::PgSchema::new().await),
            false => None,
        };
        let served: Vec<(&str, String)> = pg
            .iter()
            .map(|s| ("SHOPBOX_DATABASE__URL", s.url.clone()))
            .collect();
        let cli = |args: &[&str], env: &[(&str, String)]| {
            let out = Command::new(common::binary())
                .args(args)
                .arg("--data")
                .arg(dir.path())
                .envs(env.iter().map(|(k, v)| (k, v)))
                .output()
                .expect("run shopbox");
            assert!(
                out.status.success(),
                "{args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        cli(&["seed", "--demo", "--products", "24"], &[]);
        if let Some(pg) = &pg {
            cli(&["export-pg", "--url", &pg.url], &[]);
        }
        cli(
            &[
                "admin",
                "create",
                "--email",
                ADMIN_EMAIL,
                "--name",
                "Owner",
                "--password",
                PASSWORD,
            ],
            &served,
        );
        let port = free_port();
        let mut child = Command::new(common::binary())
            .args(["serve", "--data"])
            .arg(dir.path())
            .args(["--port", &port.to_string()])
            .env("RUST_LOG", "info")
            .envs(served.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shopbox");
        let log = Arc::new(Mutex::new(Vec::new()));
        let lines = BufReader::new(child.stderr.take().unwrap());
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in lines.lines().map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        let deadline = Instant::now() + Duration::from_secs(30);
        while !matches!(http(port, "GET", "/health", &[], ""), Ok((200, _, _))) {
            assert!(Instant::now() < deadline, "shopbox did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        Shop {
            _child: Killed(child),
            port,
            log,
            _dir: dir,
            _pg: pg,
        }
    }

    fn handle(&self) -> ShopHandle {
        ShopHandle {
            port: self.port,
            log: Arc::clone(&self.log),
        }
    }
}

/// What a test body needs of the shop.
#[derive(Clone)]
struct ShopHandle {
    port: u16,
    log: Arc<Mutex<Vec<String>>>,
}

impl ShopHandle {
    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn mails_to(&self, to: &str) -> Vec<String> {
        let needle = format!("mail to={to} ");
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.contains(&needle))
            .filter_map(|l| l.split(" link=").nth(1).map(|s| s.trim().to_string()))
            .collect()
    }

    /// The link of the newest mail to `to` after the first `seen` of them, as the log line
    /// of a shop without SMTP carries it.
    async fn mail_link(&self, to: &str, seen: usize) -> R<String> {
        let deadline = Instant::now() + WAIT;
        loop {
            let mails = self.mails_to(to);
            if mails.len() > seen {
                return Ok(mails[mails.len() - 1].clone());
            }
            if Instant::now() > deadline {
                return Err(format!("no mail to {to} in the log"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// An API call with a Bearer token (setting up what a test does not click through).
    fn call(&self, method: &str, path: &str, token: Option<&str>, body: Value) -> R<Value> {
        let auth = token.map(|t| format!("Bearer {t}"));
        let mut headers = vec![("Content-Type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("Authorization", a.as_str()));
        }
        let body = if body.is_null() {
            String::new()
        } else {
            body.to_string()
        };
        let (status, _, text) = http(self.port, method, path, &headers, &body).say()?;
        if !(200..300).contains(&status) {
            return Err(format!("{method} {path}: {status} {text}"));
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    fn login(&self, email: &str, password: &str) -> R<String> {
        let body = self.call(
            "POST",
            "/api/account/login",
            None,
            json!({"email": email, "password": password}),
        )?;
        Ok(body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_string())
    }

    /// A customer with a confirmed order of `product`: answers (token, order id).
    fn customer_with_order(&self, email: &str, product: u64) -> R<(String, u64)> {
        self.call(
            "POST",
            "/api/account/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )?;
        let token = self.login(email, PASSWORD)?;
        let t = Some(token.as_str());
        self.call(
            "POST",
            "/api/carts/add",
            t,
            json!({"product_id": product, "quantity": 1}),
        )?;
        let address = self.call(
            "POST",
            "/api/shippings/addresses",
            t,
            json!({"name": "Ada Lovelace", "address_line1": "12 Market Street", "city": "Bristol", "state": "Avon", "postal_code": "BS1 4DJ", "country": "United Kingdom"}),
        )?;
        let order = self.call(
            "POST",
            "/api/orders/checkout",
            t,
            json!({"shipping_address_id": address["id"]}),
        )?;
        Ok((token, order["id"].as_u64().unwrap_or_default()))
    }

    /// A product made through the API by the admin.
    fn product(&self, title: &str, price: f64, stock: i64) -> R<Value> {
        let admin = self.login(ADMIN_EMAIL, PASSWORD)?;
        self.call(
            "POST",
            "/api/products",
            Some(&admin),
            json!({"title": title, "description": format!("A {title}, made by hand.\n\nDishwasher safe."), "price": price, "stock_quantity": stock, "category_ids": [1]}),
        )
    }
}

/// ChromeDriver with one headless Chromium session, both ended when dropped.
struct Browser {
    client: Client,
    _driver: Killed,
    _profile: tempfile::TempDir,
}

impl Browser {
    async fn open() -> Browser {
        let (chromium, chromedriver) = browser_tools();
        let port = free_port();
        let driver = Command::new(chromedriver)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let profile = tempfile::tempdir().expect("profile dir");
        let args = [
            "--headless".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--hide-scrollbars".into(),
            "--force-device-scale-factor=1".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ];
        let mut caps = serde_json::Map::new();
        caps.insert(
            "goog:chromeOptions".into(),
            json!({"binary": chromium, "args": args}),
        );
        let url = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        let client = loop {
            match ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(c) => break c,
                Err(e) if Instant::now() > deadline => {
                    panic!("cannot start Chromium through chromedriver: {e}")
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        };
        Browser {
            client,
            _driver: Killed(driver),
            _profile: profile,
        }
    }
}

/// A child process, killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One page of a browser, with the waits and finders the tests use.
#[derive(Clone)]
struct Page {
    c: Client,
    shop: ShopHandle,
}

fn xpath_literal(text: &str) -> String {
    if !text.contains('\'') {
        format!("'{text}'")
    } else {
        format!(
            "concat('{}')",
            text.split('\'').collect::<Vec<_>>().join("', \"'\", '")
        )
    }
}

impl Page {
    async fn goto(&self, path: &str) -> R {
        self.c
            .goto(&self.shop.url(path))
            .await
            .map_err(|e| format!("goto {path}: {e}"))?;
        self.until(
            "the page is drawn",
            "return document.body.dataset.ready === 'true'",
        )
        .await
    }

    /// Waits (bounded) until `script` returns true.
    async fn until(&self, what: &str, script: &str) -> R {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Value::Bool(true)) = self.c.execute(script, vec![]).await {
                return Ok(());
            }
            if Instant::now() > deadline {
                let url = self
                    .c
                    .current_url()
                    .await
                    .map(|u| u.to_string())
                    .unwrap_or_default();
                let text = self.body_text().await;
                return Err(format!(
                    "timed out waiting for {what} at {url}; the page says:\n{text}"
                ));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn body_text(&self) -> String {
        match self
            .c
            .execute("return document.body.innerText", vec![])
            .await
        {
            Ok(Value::String(s)) => s.chars().take(1500).collect(),
            _ => String::new(),
        }
    }

    async fn see(&self, text: &str) -> R {
        let script = format!("return document.body.innerText.includes({})", json!(text));
        self.until(&format!("“{text}”"), &script).await
    }

    /// A status badge (shown capitalised) whose text is `status`.
    async fn badge(&self, status: &str) -> R {
        let script = format!(
            "return [...document.querySelectorAll('.badge')].some((b) => b.textContent === {})",
            json!(status.replace('_', " "))
        );
        self.until(&format!("the badge “{status}”"), &script).await
    }

    async fn path_is(&self, path: &str) -> R {
        let script = format!("return location.pathname === {}", json!(path));
        self.until(&format!("the path {path}"), &script).await
    }

    async fn find(&self, what: &str, xpath: &str) -> R<fantoccini::elements::Element> {
        match self
            .c
            .wait()
            .at_most(WAIT)
            .for_element(Locator::XPath(xpath))
            .await
        {
            Ok(el) => Ok(el),
            Err(e) => Err(format!(
                "no {what} ({e}); the page says:\n{}",
                self.body_text().await
            )),
        }
    }

    /// Clicks what `xpath` finds; found again if the page was redrawn in between.
    async fn press(&self, what: String, xpath: String) -> R {
        let mut tries = 0;
        loop {
            let el = self.find(&what, &xpath).await?;
            match el.click().await {
                Ok(()) => return Ok(()),
                Err(e) if tries < 3 && e.to_string().contains("stale") => tries += 1,
                Err(e) => return Err(format!("click {what}: {e}")),
            }
        }
    }

    /// The button whose visible text is `text`.
    async fn click(&self, text: &str) -> R {
        let t = xpath_literal(text);
        self.press(
            format!("button “{text}”"),
            format!("//button[normalize-space()={t}]"),
        )
        .await
    }

    /// The button named `label` for assistive technology (its text is a symbol).
    async fn click_labelled(&self, label: &str) -> R {
        let t = xpath_literal(label);
        self.press(
            format!("button “{label}”"),
            format!("//button[@aria-label={t}]"),
        )
        .await
    }

    /// The link whose visible text is `text`.
    async fn follow(&self, text: &str) -> R {
        let t = xpath_literal(text);
        self.press(
            format!("link “{text}”"),
            format!("//a[normalize-space()={t}]"),
        )
        .await
    }

    /// The link whose text starts with `text` (a count may follow).
    async fn follow_starting(&self, text: &str) -> R {
        let t = xpath_literal(text);
        self.press(
            format!("link “{text}…”"),
            format!("//a[starts-with(normalize-space(), {t})]"),
        )
        .await
    }

    /// The form control labelled `label`.
    async fn field(&self, label: &str) -> R<fantoccini::elements::Element> {
        let xpath = format!(
            "//*[@id=//label[normalize-space()={}]/@for]",
            xpath_literal(label)
        );
        self.find(&format!("field “{label}”"), &xpath).await
    }

    async fn fill(&self, label: &str, value: &str) -> R {
        let el = self.field(label).await?;
        el.clear()
            .await
            .map_err(|e| format!("clear {label}: {e}"))?;
        el.send_keys(value)
            .await
            .map_err(|e| format!("type into {label}: {e}"))
    }

    async fn choose(&self, label: &str, value: &str) -> R {
        let el = self.field(label).await?;
        el.select_by_value(value)
            .await
            .map_err(|e| format!("choose {value} in {label}: {e}"))
    }

    async fn resize(&self, (w, h): (u32, u32)) -> R {
        self.c.set_window_size(w, h).await.say()
    }

    /// A picture of the page for the README: always under `target/screenshots/`, and in
    /// `docs/screenshots/` when asked to refresh the README's pictures.
    async fn picture(&self, name: &str) -> R {
        let png = self.c.screenshot().await.say()?;
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut dirs = vec![root.join("target/screenshots")];
        if std::env::var_os("SHOPBOX_TEST_README_PICTURES").is_some_and(|v| v == "1") {
            dirs.push(root.join("docs/screenshots"));
        }
        for dir in dirs {
            std::fs::create_dir_all(&dir).say()?;
            std::fs::write(dir.join(format!("{name}.png")), &png).say()?;
        }
        Ok(())
    }

    /// The page is no wider than the window: nothing scrolls sideways at phone width.
    async fn fits_width(&self) -> R {
        self.until(
            "the page to fit the window's width",
            "return document.documentElement.scrollWidth <= window.innerWidth",
        )
        .await
    }

    /// Fills the checkout's new-address form and waits for the saved address to be chosen.
    async fn add_address(&self, fields: &[(&str, &str)]) -> R {
        for (label, value) in fields {
            self.fill(label, value).await?;
        }
        self.click("Save address").await?;
        self.until(
            "the new address to be chosen",
            "return document.querySelector('input[name=shipping_address_id]:checked') !== null",
        )
        .await
    }

    async fn log_in(&self, email: &str, password: &str) -> R {
        self.goto("/login").await?;
        self.fill("Email", email).await?;
        self.fill("Password", password).await?;
        self.click("Log in").await?;
        self.until("the login", "return document.querySelector('#nav-user a[href=\"/account\"]') !== null || location.pathname.startsWith('/admin')").await
    }

    async fn log_out(&self) -> R {
        self.click("Log out").await?;
        self.see("Log in").await
    }
}

/// One browser test at a time: Chromium is heavy for a 2-core machine.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Runs a browser test: a fresh shop and browser; on failure a screenshot under
/// `target/browser-failures/<name>.png`, then the test fails with what went wrong.
async fn browser_test<F, Fut>(name: &str, body: F)
where
    F: FnOnce(Page) -> Fut,
    Fut: std::future::Future<Output = R> + Send + 'static,
{
    let _one = ONE_BROWSER.lock().await;
    browser_tools();
    let shop = Shop::start().await;
    let browser = Browser::open().await;
    let page = Page {
        c: browser.client.clone(),
        shop: shop.handle(),
    };
    let outcome = tokio::spawn(body(page)).await;
    let failure = match outcome {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e),
        Err(e) => Some(format!("the test panicked: {e}")),
    };
    if failure.is_some() {
        if let Ok(png) = browser.client.screenshot().await {
            let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-failures");
            let _ = std::fs::create_dir_all(&dir);
            let _ = std::fs::write(dir.join(format!("{name}.png")), png);
        }
    }
    let _ = browser.client.clone().close().await;
    drop(browser);
    drop(shop);
    if let Some(e) = failure {
        panic!("{name}: {e}\n(screenshot: target/browser-failures/{name}.png)");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_customer_registers_verifies_searches_buys_two_products_and_sees_the_order() {
    browser_test("customer_buys", |p| async move {
        p.shop.product("Blue Teapot", 24.5, 8)?;
        let green = p.shop.product("Green Teapot", 19.0, 8)?;
        let email = "ada@example.com";

        p.goto("/").await?;
        p.see("New in").await?;
        p.picture("storefront").await?;
        p.follow("Register").await?;
        p.fill("Name", "Ada").await?;
        p.fill("Email", email).await?;
        p.fill("Password", email).await?;
        p.click("Register").await?;
        // The API's 422, as a "field: msg" line next to the form.
        p.see("password: Password must not be the email address").await?;
        p.fill("Password", PASSWORD).await?;
        p.click("Register").await?;
        p.see("Welcome, Ada!").await?;
        p.see("not verified").await?;

        // The emailed link, opened in the browser, lands on the verify page.
        let link = p.shop.mail_link(email, 0).await?;
        assert!(link.contains("/api/account/verify?token="), "{link}");
        p.c.goto(&link).await.say()?;
        p.see(&format!("Thank you: {email} is verified.")).await?;
        p.path_is("/verify-email").await?;
        p.follow("Your account").await?;
        p.path_is("/account").await?;
        p.badge("verified").await?;

        p.fill("Search products", "teapot").await?;
        p.click("Search").await?;
        p.see("Results for “teapot”").await?;
        p.see("2 products").await?;
        for title in ["Blue Teapot", "Green Teapot"] {
            p.follow(title).await?;
            p.see("In stock: 8").await?;
            p.fill("Quantity", "2").await?;
            p.click("Add to cart").await?;
            p.see("Added to your cart.").await?;
            p.c.back().await.say()?;
            p.see("Results for “teapot”").await?;
        }
        // A product of the demo catalog (with its picture) for the README.
        let demo = p.shop.call("GET", "/api/products/1", None, Value::Null)?;
        p.goto(&format!("/product/{}", demo["slug"].as_str().unwrap_or_default())).await?;
        p.see("Reviews").await?;
        p.picture("product").await?;

        p.follow_starting("Cart").await?;
        p.see("Your cart").await?;
        p.see("4 items").await?;
        p.click_labelled("One fewer Green Teapot").await?;
        p.until("the cart to change", "return document.querySelector('.cart-total').innerText.includes('3 items')").await?;
        p.picture("cart").await?;
        p.resize(PHONE).await?;
        p.fits_width().await?;
        p.picture("cart-phone").await?;
        p.resize(DESKTOP).await?;

        p.follow("Checkout").await?;
        p.see("Add a new address").await?;
        p.add_address(&[
            ("Full name", "Ada Lovelace"),
            ("Address line 1", "12 Market Street"),
            ("City", "Bristol"),
            ("State or region", "Avon"),
            ("Postal code", "BS1 4DJ"),
            ("Country", "United Kingdom"),
        ])
        .await?;
        // Two clicks in a row, as a double click sends them: one order.
        p.c.execute(
            "const b = [...document.querySelectorAll('button')].find((b) => b.textContent === 'Place order'); b.click(); b.click(); return true;",
            vec![],
        )
        .await
        .say()?;
        p.see("Thank you! Your order is placed.").await?;
        p.see("12 Market Street").await?;
        p.see("Blue Teapot").await?;
        p.badge("pending").await?;

        p.follow("Orders").await?;
        p.see("Your orders").await?;
        let rows = p.c.find_all(Locator::Css("tbody tr")).await.say()?;
        if rows.len() != 1 {
            return Err(format!("a double click placed {} orders", rows.len()));
        }
        let total = 2.0 * 24.5 + 19.0;
        p.see(&format!("{total:.2}")).await?;
        let admin = p.shop.login(ADMIN_EMAIL, PASSWORD)?;
        let all = p.shop.call("GET", "/api/orders/admin/all", Some(&admin), Value::Null)?;
        if all["total"] != 1 || all["items"][0]["total_price"] != total {
            return Err(format!("the shop holds {all}"));
        }
        let stock = p.shop.call("GET", &format!("/api/products/{}", green["id"]), None, Value::Null)?;
        if stock["stock_quantity"] != 7 {
            return Err(format!("green teapot stock {}", stock["stock_quantity"]));
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_failed_payment_shows_its_message_and_keeps_the_cart() {
    browser_test("failed_payment", |p| async move {
        let vase = p.shop.product("Glass Vase", 40.0, 5)?;
        let email = "grace@example.com";
        p.shop.call(
            "POST",
            "/api/account/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )?;
        // Someone not logged in who adds to the cart is asked to log in first, and comes back.
        p.goto(&format!("/product/{}", vase["slug"].as_str().unwrap()))
            .await?;
        p.click("Add to cart").await?;
        p.path_is("/login").await?;
        p.fill("Email", email).await?;
        p.fill("Password", PASSWORD).await?;
        p.click("Log in").await?;
        p.see("Glass Vase").await?;
        p.click("Add to cart").await?;
        p.see("Added to your cart.").await?;
        p.follow("Checkout").await?;
        p.add_address(&[
            ("Address line 1", "1 Rue de Rivoli"),
            ("City", "Paris"),
            ("State or region", "IDF"),
            ("Postal code", "75001"),
            ("Country", "France"),
        ])
        .await?;
        p.choose("Simulated payment", "failure").await?;
        p.click("Place order").await?;
        p.until(
            "an error message",
            "return document.querySelector('.place-order .message.error') !== null",
        )
        .await?;
        let message = p
            .find(
                "the message",
                "//form[contains(@class,'place-order')]//div[contains(@class,'message')]",
            )
            .await?
            .text()
            .await
            .say()?;
        let token = p.shop.login(email, PASSWORD)?;
        let orders = p
            .shop
            .call("GET", "/api/orders", Some(&token), Value::Null)?;
        let order_id = orders["items"][0]["id"].as_u64().unwrap_or_default();
        let payment = p
            .shop
            .call("GET", "/api/payments", Some(&token), Value::Null)?;
        if orders["items"][0]["status"] != "payment_failed"
            || payment["items"][0]["status"] != "failed"
        {
            return Err(format!("orders {orders}"));
        }
        // The 402's detail, as the API gives it, and no raw JSON.
        let detail = "Payment failed; your cart is unchanged";
        if !message.contains(detail) || message.contains('{') {
            return Err(format!("the page says “{message}”"));
        }
        if !message.contains(&format!("See order #{order_id}")) {
            return Err(format!("no link to the failed order: {message}"));
        }
        let cart = p
            .shop
            .call("GET", "/api/carts", Some(&token), Value::Null)?;
        if cart["total_quantity"] != 1 {
            return Err(format!("the cart changed: {cart}"));
        }
        // Paying now succeeds with a new attempt.
        p.choose("Simulated payment", "success").await?;
        p.click("Place order").await?;
        p.see("Thank you! Your order is placed.").await?;
        p.see("Cancel order").await?;
        p.click("Cancel order").await?;
        p.see("Your order is cancelled and refunded.").await?;
        p.badge("refunded").await?;
        Ok(())
    })
    .await;
}

fn test_png() -> Vec<u8> {
    let mut out = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut out, 64, 48);
        encoder.set_color(png::ColorType::Rgb);
        let mut writer = encoder.write_header().unwrap();
        let pixels: Vec<u8> = (0..64 * 48)
            .flat_map(|i| [200, (i % 64 * 4) as u8, 90])
            .collect();
        writer.write_image_data(&pixels).unwrap();
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_admin_creates_a_product_with_an_image_and_ships_an_order_the_customer_then_sees() {
    browser_test("admin_ships", |p| async move {
        let lamp = p.shop.product("Desk Lamp", 35.0, 4)?;
        let customer = "linus@example.com";
        let (_, order_id) = p.shop.customer_with_order(customer, lamp["id"].as_u64().unwrap())?;

        // A customer is no admin: the dashboard sends them to log in.
        p.log_in(customer, PASSWORD).await?;
        p.goto("/admin/orders").await.ok();
        p.path_is("/login").await?;
        p.see("log in with an admin account").await?;
        p.goto("/").await?;
        p.log_out().await?;

        p.log_in(ADMIN_EMAIL, PASSWORD).await?;
        p.goto("/admin").await?;
        p.see("Summary").await?;
        p.see("Revenue, 30 days").await?;
        p.see("Latest orders").await?;
        p.see(&format!("#{order_id}")).await?;
        p.picture("dashboard").await?;

        p.follow("Products").await?;
        p.see("New product").await?;
        p.follow("New product").await?;
        p.fill("Title", "Walnut Cutting Board").await?;
        p.fill("Slug", "search").await?;
        p.fill("Price", "48.00").await?;
        p.fill("Stock", "6").await?;
        p.fill("Description", "Oiled walnut, 40 by 25 cm.").await?;
        let image = std::env::temp_dir().join(format!("shopbox-browser-{}.png", std::process::id()));
        std::fs::write(&image, test_png()).say()?;
        p.field("Image").await?.send_keys(&image.display().to_string()).await.say()?;
        p.click("Save").await?;
        // The browser lets a reserved slug through; the API refuses it and the form says why.
        p.until("the slug error", "return document.querySelector('.product-form .message.error') !== null").await?;
        p.see("slug: ").await?;
        p.field("Slug").await?.clear().await.say()?;
        p.click("Save").await?;
        p.see("“Walnut Cutting Board” is saved.").await?;
        let _ = std::fs::remove_file(&image);
        let board = p.shop.call("GET", "/api/products/walnut-cutting-board", None, Value::Null)?;
        let image_url = board["image_url"].as_str().unwrap_or_default().to_string();
        if !image_url.starts_with("/media/") || board["price"] != 48.0 || board["stock_quantity"] != 6 {
            return Err(format!("the product is {board}"));
        }
        let (status, _, _) = http(p.shop.port, "GET", &image_url, &[], "").say()?;
        if status != 200 {
            return Err(format!("its image answers {status}"));
        }
        p.until("the image on the form", "return [...document.querySelectorAll('.image-field img')].some((i) => i.complete && i.naturalWidth === 64)").await?;

        p.follow("Orders").await?;
        p.see(&format!("Order #{order_id}")).await?;
        p.follow(&format!("Order #{order_id}")).await?;
        p.see("Change shipping").await?;
        p.see("Desk Lamp").await?;
        p.choose("Shipping status", "shipped").await?;
        p.click("Save").await?;
        p.see(&format!("Order #{order_id} is now shipped")).await?;
        p.until("the shipped step", "return document.querySelectorAll('.timeline li').length === 2").await?;
        // Shipped orders go on only to delivered.
        let options = p.c.execute("return [...document.querySelectorAll('select[name=status] option')].map((o) => o.value).join(',')", vec![]).await.say()?;
        if options != json!("delivered") {
            return Err(format!("after shipped the choices are {options}"));
        }

        p.follow("Users").await?;
        p.see(customer).await?;
        p.fill("Search users", "linus").await?;
        p.click("Search").await?;
        p.see("1 user").await?;
        p.click("Promote").await?;
        p.see(&format!("{customer}: now an admin.")).await?;
        p.click("Demote").await?;
        p.see(&format!("{customer}: no longer an admin.")).await?;

        p.follow("Outbox").await?;
        p.see(&format!("Order #{order_id} is shipped")).await?;
        p.see(&format!("Your order #{order_id}")).await?;
        p.see(&format!("To {customer}")).await?;

        p.click("Log out").await?;
        p.path_is("/login").await?;
        p.see("Log in").await?;
        p.log_in(customer, PASSWORD).await?;
        p.goto(&format!("/orders/{order_id}")).await?;
        p.see(&format!("Order #{order_id}")).await?;
        p.until("the shipped status", "return [...document.querySelectorAll('.timeline .badge')].map((b) => b.textContent).join(',') === 'pending,shipped'").await?;
        p.follow("Orders").await?;
        p.until("the list to say shipped", "return [...document.querySelectorAll('tbody tr .badge')].some((b) => b.textContent === 'shipped')").await?;
        if p.body_text().await.contains("Cancel order") {
            return Err("a shipped order offers to cancel".into());
        }
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_reset_email_link_leads_to_a_working_reset() {
    browser_test("password_reset", |p| async move {
        let email = "barbara@example.com";
        p.shop.call(
            "POST",
            "/api/account/register",
            None,
            json!({"email": email, "password": PASSWORD}),
        )?;
        let seen = p.shop.mails_to(email).len();
        p.goto("/login").await?;
        p.follow("Forgot your password?").await?;
        p.fill("Email", email).await?;
        p.click("Send reset link").await?;
        p.see("If an account has this email, a reset link is on its way.")
            .await?;
        let link = p.shop.mail_link(email, seen).await?;
        if !link.starts_with(&p.shop.url("/reset-password?token=")) {
            return Err(format!("the link is {link}"));
        }
        p.c.goto(&link).await.say()?;
        p.see("Choose a new password").await?;
        // The token leaves the address bar once the page has it.
        p.path_is("/reset-password").await?;
        p.until(
            "the token to leave the URL",
            "return location.search === ''",
        )
        .await?;
        p.resize(PHONE).await?;
        p.fits_width().await?;
        p.resize(DESKTOP).await?;
        p.fill("New password", "a brand new secret").await?;
        p.click("Reset password").await?;
        p.see("Your password is changed. Log in with the new one.")
            .await?;
        p.path_is("/login").await?;
        p.fill("Email", email).await?;
        p.fill("Password", PASSWORD).await?;
        p.click("Log in").await?;
        p.see("Invalid email or password").await?;
        p.fill("Password", "a brand new secret").await?;
        p.click("Log in").await?;
        p.see("Welcome back").await?;
        // The link works once.
        p.c.goto(&link).await.say()?;
        p.fill("New password", "yet another secret").await?;
        p.click("Reset password").await?;
        p.see("Invalid, expired or already used token").await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_the_storefront_works_at_phone_width_and_by_keyboard() {
    browser_test("phone_and_keyboard", |p| async move {
        p.resize(PHONE).await?;
        p.goto("/").await?;
        p.see("Categories").await?;
        p.fits_width().await?;
        p.picture("storefront-phone").await?;
        p.goto("/products?sort=price_asc").await?;
        p.see("All products").await?;
        p.fits_width().await?;
        // Keyboard: the first Tab on a fresh page reaches the skip link, which shows a
        // focus ring and leads into the page's content.
        p.goto("/products?sort=price_asc").await?;
        let active = "return document.activeElement.textContent.trim()";
        let tab = || async {
            let body = p.c.find(Locator::Css("body")).await.say()?;
            body.send_keys("\u{E004}").await.say()
        };
        tab().await?;
        let first = p.c.execute(active, vec![]).await.say()?;
        if first != json!("Skip to content") {
            return Err(format!("the first Tab reached {first}"));
        }
        let ring =
            p.c.execute(
                "return getComputedStyle(document.activeElement).boxShadow",
                vec![],
            )
            .await
            .say()?;
        if ring == json!("none") {
            return Err("the focused link shows no focus ring".into());
        }
        p.c.active_element()
            .await
            .say()?
            .send_keys("\u{E007}")
            .await
            .say()?;
        p.until(
            "focus in the content",
            "return document.activeElement.id === 'main'",
        )
        .await?;
        p.resize(DESKTOP).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn browser_a_buyer_reviews_and_an_admin_edits_categorises_deletes_filters_and_deactivates() {
    browser_test("review_and_admin", |p| async move {
        let mug = p.shop.product("Stone Mug", 15.0, 10)?;
        let email = "rosa@example.com";
        let (_, order_id) = p
            .shop
            .customer_with_order(email, mug["id"].as_u64().unwrap_or_default())?;

        p.log_in(email, PASSWORD).await?;
        p.goto("/product/stone-mug").await?;
        p.see("Review this product").await?;
        p.choose("Rating", "4").await?;
        p.fill("Title", "Solid").await?;
        p.fill("Your review", "Keeps tea hot.").await?;
        p.click("Post review").await?;
        p.see("Your review").await?;
        p.see("Keeps tea hot.").await?;
        p.click("Edit review").await?;
        p.fill("Title", "Very solid").await?;
        p.click("Save review").await?;
        p.see("Very solid").await?;
        let reviews = p.shop.call(
            "GET",
            &format!("/api/products/{}/reviews", mug["id"]),
            None,
            Value::Null,
        )?;
        if reviews["total"] != 1
            || reviews["items"][0]["title"] != "Very solid"
            || reviews["items"][0]["rating"] != 4
        {
            return Err(format!("reviews {reviews}"));
        }
        p.goto("/account").await?;
        p.fill("Name", "Rosa Parks").await?;
        p.click("Save name").await?;
        p.see("Your name is saved.").await?;
        p.log_out().await?;

        p.log_in(ADMIN_EMAIL, PASSWORD).await?;
        p.goto("/admin/categories").await?;
        p.fill("Name", "Mugs").await?;
        p.click("Add category").await?;
        p.see("Category “Mugs” is added.").await?;
        p.fill("Name", "Mugs").await?;
        p.click("Add category").await?;
        p.until(
            "the duplicate's 409",
            "return document.querySelector('.message.error') !== null",
        )
        .await?;

        p.goto("/admin/products").await?;
        p.fill("Search products", "stone").await?;
        p.click("Search").await?;
        p.see("1 product").await?;
        p.follow("Edit").await?;
        p.see("Edit “Stone Mug”").await?;
        p.field("Mugs").await?.click().await.say()?;
        p.fill("Price", "16.50").await?;
        p.click("Save").await?;
        p.see("“Stone Mug” is saved.").await?;
        let saved = p
            .shop
            .call("GET", "/api/products/stone-mug", None, Value::Null)?;
        let names: Vec<&str> = saved["categories"]
            .as_array()
            .map(|c| c.iter().filter_map(|c| c["name"].as_str()).collect())
            .unwrap_or_default();
        if saved["price"] != 16.5 || !names.contains(&"Mugs") {
            return Err(format!("saved {saved}"));
        }

        p.goto("/admin/products?q=stone").await?;
        p.click("Delete").await?;
        p.click("Confirm delete").await?;
        p.see("“Stone Mug” is deleted.").await?;
        let (status, _, _) = http(p.shop.port, "GET", "/api/products/stone-mug", &[], "").say()?;
        if status != 404 {
            return Err(format!("the deleted product answers {status}"));
        }

        p.goto("/admin/orders").await?;
        p.choose("Status", "confirmed").await?;
        p.fill("Customer", email).await?;
        p.click("Filter").await?;
        p.until("the filtered list", "return location.search.includes('user_id=') && location.search.includes('status=confirmed')").await?;
        p.see("1 order").await?;
        // The archived product stays in the order it was bought in.
        p.follow(&format!("Order #{order_id}")).await?;
        p.see("Stone Mug").await?;

        p.goto(&format!("/admin/users?q={email}")).await?;
        p.click("Deactivate").await?;
        p.see(&format!("{email}: deactivated and logged out."))
            .await?;
        let login = http(
            p.shop.port,
            "POST",
            "/api/account/login",
            &[("Content-Type", "application/json")],
            &json!({"email": email, "password": PASSWORD}).to_string(),
        )
        .say()?;
        if login.0 != 403 {
            return Err(format!("a deactivated customer logs in: {}", login.0));
        }
        Ok(())
    })
    .await;
}
