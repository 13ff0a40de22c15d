//! Observability: `/metrics` behind an optional token with every domain series from the
//! first scrape, `/health` with the database and the disk, and request lines that name the
//! client and the user while 4xx answers and Rocket's own chatter stay below the default
//! level.

use crate::common;

use common::{add, address, admin, checkout, customer, http, new_product, state, TestApp};
use rocket::http::{Header, Status};
use serde_json::{json, Value};
use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};

async fn scrape(t: &TestApp, token: Option<&str>) -> (Status, String) {
    let mut req = t.client.get("/metrics");
    if let Some(token) = token {
        req = req.header(Header::new("Authorization", format!("Bearer {token}")));
    }
    let res = req.dispatch().await;
    (res.status(), res.into_string().await.unwrap_or_default())
}

/// The value of the series `name` (with its labels) in a scrape.
fn series(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {name} in\n{text}"))
        .parse()
        .unwrap()
}

#[rocket::async_test]
async fn metrics_require_the_token_when_one_is_set() {
    let t = common::app_with(
        |c| c.metrics.token = Some("scrape-secret-123".into()),
        |r| r,
    )
    .await;
    let (status, body) = scrape(&t, None).await;
    assert_eq!(status, Status::Unauthorized);
    assert!(body.contains("detail"), "{body}");
    assert!(!body.contains("shopbox_"), "{body}");
    let (status, _) = scrape(&t, Some("wrong")).await;
    assert_eq!(status, Status::Unauthorized);
    let (status, body) = scrape(&t, Some("scrape-secret-123")).await;
    assert_eq!(status, Status::Ok);
    assert!(body.contains("shopbox_orders_total 0"), "{body}");
    // A user's access token is no metrics token.
    let user = customer(&t, "metrics-user@example.com").await;
    let (status, _) = scrape(&t, Some(&user)).await;
    assert_eq!(status, Status::Unauthorized);

    // Without a token configured, anyone may scrape.
    let open = common::app().await;
    assert_eq!(scrape(&open, None).await.0, Status::Ok);
}

#[rocket::async_test]
async fn every_domain_series_is_exported_from_the_first_scrape_and_moves() {
    let t = common::app().await;
    let (status, text) = scrape(&t, None).await;
    assert_eq!(status, Status::Ok);
    for name in [
        "shopbox_orders_total",
        "shopbox_payments_failed_total",
        "shopbox_stock_outs_total",
        "shopbox_mails_queued_total",
        "shopbox_mails_sent_total",
        "shopbox_mails_failed_total",
        "shopbox_rate_limited_total",
        "shopbox_revenue_total{currency=\"USD\"}",
    ] {
        assert_eq!(series(&text, name), 0.0, "{name}");
        let bare = name.split('{').next().unwrap();
        assert!(
            text.contains(&format!("# TYPE {bare} counter")),
            "{name}: {text}"
        );
    }
    // The size of the data folder's database; PostgreSQL's files are the server's.
    if state(&t).db.sled().is_some() {
        assert!(series(&text, "shopbox_db_size_bytes") > 0.0);
    }
    assert!(series(&text, "shopbox_uptime_seconds") >= 0.0);

    // An order, a stock-out, the mails they write.
    let boss = admin(&t, "boss@example.com").await;
    let ann = customer(&t, "ann@example.com").await; // a verification mail
    let home = address(&t, &ann).await;
    let hat = new_product(&t, &boss, "Hat", 12.5, 1).await;
    assert_eq!(add(&t, &ann, hat, 1).await.0, Status::Created);
    let bob = customer(&t, "bob@example.com").await;
    let bob_home = address(&t, &bob).await;
    // Bob puts the last hat in his cart too, before Ann buys it.
    assert_eq!(add(&t, &bob, hat, 1).await.0, Status::Created);
    let (status, order) = checkout(&t, &ann, json!({"shipping_address_id": home})).await;
    assert_eq!(status, Status::Created, "{order}");
    let (status, refused) = checkout(&t, &bob, json!({"shipping_address_id": bob_home})).await;
    assert_eq!(status, Status::Conflict, "{refused}");
    let (_, text) = scrape(&t, None).await;
    assert_eq!(series(&text, "shopbox_orders_total"), 1.0, "{text}");
    assert_eq!(
        series(&text, "shopbox_revenue_total{currency=\"USD\"}"),
        order["total_price"].as_f64().unwrap()
    );
    assert_eq!(series(&text, "shopbox_stock_outs_total"), 1.0, "{text}");
    // Two verification mails and an order confirmation.
    assert_eq!(series(&text, "shopbox_mails_queued_total"), 3.0, "{text}");
    if state(&t).db.sled().is_some() {
        assert!(state(&t).db.size_on_disk().unwrap() > 0);
    }
}

#[rocket::async_test]
async fn health_reports_the_database_and_the_disk() {
    let t = common::app().await;
    let res = t.client.get("/health").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["disk"], "ok");
    assert!(body["free_disk_mb"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(body["min_free_disk_mb"], 100);

    // A floor above what any disk has: degraded, still 200 (the shop serves).
    let t = common::app_with(|c| c.health.min_free_disk_mb = u64::MAX / 4, |r| r).await;
    let res = t.client.get("/health").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["disk"], "low");

    // The document says so.
    let spec = common::openapi(&t).await;
    let health = &spec["paths"]["/health"]["get"];
    let text = health.to_string();
    assert!(text.contains("degraded"), "{text}");
    assert!(text.contains("min_free_disk_mb"), "{text}");
}

/// A server killed when dropped (a failed assertion leaves none behind).
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The real server with `RUST_LOG` as given (`None`: unset, the default level) and
/// `env` added; its output is read after `stop`.
fn spawn(data: &Path, port: u16, log: Option<&str>, env: &[(&str, &str)]) -> Running {
    let mut cmd = Command::new(common::binary());
    cmd.args(["serve", "--data"])
        .arg(data)
        .args(["--port", &port.to_string()])
        .envs(env.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match log {
        Some(log) => cmd.env("RUST_LOG", log),
        None => cmd.env_remove("RUST_LOG"),
    };
    Running(cmd.spawn().expect("start shopbox"))
}

fn wait_ready(child: &mut Running, port: u16) {
    for _ in 0..600 {
        assert!(child.0.try_wait().unwrap().is_none(), "shopbox exited");
        if let Ok((200, _, _)) = http(port, "GET", "/health", &[], "") {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("shopbox did not become ready");
}

/// Stops the server and answers what it wrote on stderr.
fn stop(mut child: Running) -> String {
    let _ = child.0.kill();
    let _ = child.0.wait();
    let mut err = String::new();
    child
        .0
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    err
}

/// Requests that end in a 404, a 422 from a data guard, a 401, and an authenticated 200
/// through a trusted proxy; answers the user's id.
fn traffic(port: u16) -> u64 {
    let json = ("Content-Type", "application/json");
    assert_eq!(
        http(port, "GET", "/api/nothing-here", &[], "").unwrap().0,
        404
    );
    assert_eq!(http(port, "GET", "/no/such/page", &[], "").unwrap().0, 404);
    let (status, _, _) = http(
        port,
        "POST",
        "/api/account/register",
        &[json],
        r#"{"email": 5}"#,
    )
    .unwrap();
    assert_eq!(status, 422);
    let (status, _, _) = http(port, "GET", "/api/account/me", &[], "").unwrap();
    assert_eq!(status, 401);
    let (status, _, _) = http(
        port,
        "POST",
        "/api/account/register",
        &[json],
        r#"{"email":"logs@example.com","password":"correct horse battery"}"#,
    )
    .unwrap();
    assert_eq!(status, 201);
    let (status, _, body) = http(
        port,
        "POST",
        "/api/account/login",
        &[json],
        r#"{"email":"logs@example.com","password":"correct horse battery"}"#,
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let login: Value = serde_json::from_str(&body).unwrap();
    let token = login["access_token"].as_str().unwrap();
    let auth = format!("Bearer {token}");
    let (status, _, _) = http(
        port,
        "GET",
        "/api/account/me",
        &[
            ("Authorization", auth.as_str()),
            ("X-Forwarded-For", "203.0.113.7"),
        ],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    login["user"]["id"].as_u64().unwrap()
}

#[test]
fn request_lines_name_client_and_user_and_client_errors_stay_below_info() {
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let proxies = [("SHOPBOX_TRUSTED_PROXIES", "127.0.0.1")];
    let mut child = spawn(&dir.path().join("data"), port, None, &proxies);
    wait_ready(&mut child, port);
    let user = traffic(port);
    let log = stop(child);

    // At the default level: no warning or error at all, none of Rocket's own lines.
    for line in log.lines() {
        assert!(
            !line.contains("WARN") && !line.contains("ERROR"),
            "{line}\n{log}"
        );
        assert!(
            !line.contains("Data guard")
                && !line.contains("No matching routes")
                && !line.contains("rocket"),
            "{line}\n{log}"
        );
        assert!(!line.contains("status=404") && !line.contains("status=422"));
    }
    let me = log
        .lines()
        .find(|l| l.contains("path=/api/account/me") && l.contains("status=200"))
        .unwrap_or_else(|| panic!("no request line for /me in\n{log}"));
    assert!(me.contains(" INFO "), "{me}");
    assert!(me.contains("client=203.0.113.7"), "{me}");
    assert!(me.contains(&format!("user={user}")), "{me}");
    let health = log
        .lines()
        .find(|l| l.contains("path=/health"))
        .unwrap_or_else(|| panic!("no request line for /health in\n{log}"));
    assert!(health.contains("client=127.0.0.1") && health.contains("user=-"));

    // At debug they are there, at debug.
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = spawn(&dir.path().join("data"), port, Some("debug"), &proxies);
    wait_ready(&mut child, port);
    traffic(port);
    let log = stop(child);
    for (path, status) in [
        ("/api/nothing-here", 404),
        ("/no/such/page", 404),
        ("/api/account/register", 422),
        ("/api/account/me", 401),
    ] {
        let line = log
            .lines()
            .find(|l| {
                l.contains(&format!("path={path} ")) && l.contains(&format!("status={status}"))
            })
            .unwrap_or_else(|| panic!("no {status} line for {path} in\n{log}"));
        assert!(line.contains("DEBUG"), "{line}");
    }
    assert!(
        !log.contains("Data guard") && !log.contains("No matching routes"),
        "{log}"
    );

    // Rocket's own lines come back when RUST_LOG names rocket.
    let dir = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let mut child = spawn(
        &dir.path().join("data"),
        port,
        Some("info,rocket=info"),
        &[],
    );
    wait_ready(&mut child, port);
    assert_eq!(
        http(port, "GET", "/api/nothing-here", &[], "").unwrap().0,
        404
    );
    let log = stop(child);
    assert!(log.contains("No matching routes"), "{log}");
}

/// Scrapes the real server until `name` reaches `want` (the sender records a delivery just
/// after the SMTP server answers); answers the last value seen.
fn wait_for_series(port: u16, name: &str, want: f64) -> f64 {
    let mut last = -1.0;
    for _ in 0..300 {
        let (_, _, text) = http(port, "GET", "/metrics", &[], "").unwrap();
        last = series(&text, name);
        if last == want {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    last
}

#[test]
fn mails_sent_and_failed_are_counted() {
    use crate::smtp_sink::Sink;
    let register = |port: u16, email: &str| {
        let body = format!(r#"{{"email":"{email}","password":"correct horse battery"}}"#);
        let json = ("Content-Type", "application/json");
        assert_eq!(
            http(port, "POST", "/api/account/register", &[json], &body)
                .unwrap()
                .0,
            201
        );
    };
    let smtp = |port: u16| {
        vec![
            ("SHOPBOX_SMTP__HOST", "127.0.0.1".to_string()),
            ("SHOPBOX_SMTP__PORT", port.to_string()),
            ("SHOPBOX_SMTP__TLS", "none".to_string()),
        ]
    };
    for (sink, series_name) in [
        (Sink::start(), "shopbox_mails_sent_total"),
        (
            Sink::start_on(0, Some("550 5.1.1 No such user here")),
            "shopbox_mails_failed_total",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut server = common::Server::start_with_env(dir.path(), &[], "warn", &smtp(sink.port));
        server.wait_ready();
        register(server.port, "counted@example.com");
        assert_eq!(sink.wait_for_recipients(1, 30), 1);
        assert_eq!(
            wait_for_series(server.port, series_name, 1.0),
            1.0,
            "{series_name}"
        );
        let (_, _, text) = http(server.port, "GET", "/metrics", &[], "").unwrap();
        assert_eq!(series(&text, "shopbox_mails_queued_total"), 1.0);
        let other = if series_name.contains("sent") {
            "shopbox_mails_failed_total"
        } else {
            "shopbox_mails_sent_total"
        };
        assert_eq!(series(&text, other), 0.0, "{text}");
    }
}
