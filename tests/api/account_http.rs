//! Accounts over real HTTP against the binary: cookie scoping, CSRF, the mail log line,
//! and the admin CLI around a stopped and a running server.

use crate::common;

use common::{http, Server, PASSWORD};
use std::io::Read;
use std::process::Command;

fn cookie_header<'a>(headers: &'a [(String, String)], name: &str) -> &'a str {
    headers
        .iter()
        .find(|(k, v)| k == "set-cookie" && v.starts_with(&format!("{name}=")))
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("no {name} cookie in {headers:?}"))
}

fn cookie_value(set_cookie: &str) -> &str {
    set_cookie
        .split(';')
        .next()
        .unwrap()
        .split_once('=')
        .unwrap()
        .1
}

#[test]
fn cookies_are_scoped_and_cookie_writes_check_the_origin() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_logging(dir.path(), &[], "info");
    server.wait_ready();
    let port = server.port;
    let json = [("Content-Type", "application/json")];
    let body = format!(r#"{{"email":"h@example.com","password":"{PASSWORD}"}}"#);
    let (status, _, _) = http(port, "POST", "/api/account/register", &json, &body).unwrap();
    assert_eq!(status, 201);
    let (status, headers, _) = http(port, "POST", "/api/account/login", &json, &body).unwrap();
    assert_eq!(status, 200);

    let access = cookie_header(&headers, "access_token");
    let refresh = cookie_header(&headers, "refresh_token");
    for c in [access, refresh] {
        assert!(c.contains("HttpOnly"), "{c}");
        assert!(c.contains("SameSite=Lax"), "{c}");
        assert!(!c.contains("Secure"), "{c}");
    }
    assert!(
        access.contains("Path=/;") || access.ends_with("Path=/"),
        "{access}"
    );
    assert!(refresh.contains("Path=/api/account"), "{refresh}");
    let access_cookie = format!("access_token={}", cookie_value(access));
    let refresh_cookie = format!("refresh_token={}", cookie_value(refresh));

    let (status, _, me) = http(
        port,
        "GET",
        "/api/account/me",
        &[("Cookie", &access_cookie)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(me.contains("h@example.com"));

    let patch = r#"{"name":"H"}"#;
    let foreign = [
        ("Cookie", access_cookie.as_str()),
        ("Origin", "http://evil.example"),
        ("Content-Type", "application/json"),
    ];
    let (status, _, _) = http(port, "PATCH", "/api/account/me", &foreign, patch).unwrap();
    assert_eq!(status, 403);
    let own_origin = format!("http://127.0.0.1:{port}");
    let own = [
        ("Cookie", access_cookie.as_str()),
        ("Origin", own_origin.as_str()),
        ("Content-Type", "application/json"),
    ];
    let (status, _, _) = http(port, "PATCH", "/api/account/me", &own, patch).unwrap();
    assert_eq!(status, 200);

    // The refresh cookie alone, where its Path sends it, refreshes.
    let (status, headers, _) = http(
        port,
        "POST",
        "/api/account/refresh",
        &[("Cookie", &refresh_cookie)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(cookie_header(&headers, "refresh_token").contains("Path=/api/account"));

    // Without SMTP the mail log line carries the link; no password is ever logged.
    server.kill();
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("mail to=h@example.com"))
        .expect("mail line");
    assert!(line.contains(&format!("subject=\"Confirm your email for shopbox\" link=http://127.0.0.1:{port}/api/account/verify?token=")), "{line}");
    assert!(!log.contains(PASSWORD));
    assert!(!log.contains(cookie_value(access)));
}

fn shopbox(args: &[&str], data: &std::path::Path) -> (bool, String, String) {
    let out = Command::new(common::binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("SHOPBOX_ADMIN_PASSWORD")
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn admin_cli_creates_an_admin_who_can_use_admin_routes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    let (ok, out, err) = shopbox(
        &[
            "admin",
            "create",
            "--email",
            "boss@example.com",
            "--password",
            PASSWORD,
        ],
        data,
    );
    assert!(ok, "{err}");
    assert!(out.contains("created admin boss@example.com"));
    // Without a password and without a terminal it says so.
    let (ok, _, err) = shopbox(&["admin", "create", "--email", "new@example.com"], data);
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    let (ok, _, err) = shopbox(&["admin", "promote", "ghost@example.com"], data);
    assert!(!ok);
    assert!(err.contains("no user"), "{err}");

    let mut server = Server::start(data, &[]);
    server.wait_ready();
    let port = server.port;
    // While the server holds the folder, it carries the CLI's commands out.
    let (ok, out, err) = shopbox(&["users", "list"], data);
    assert!(ok, "{err}");
    assert!(out.contains("boss@example.com"), "{out}");

    let json = [("Content-Type", "application/json")];
    let login = |email: &str| {
        let body = format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#);
        let (status, _, reply) = http(port, "POST", "/api/account/login", &json, &body).unwrap();
        assert_eq!(status, 200, "{reply}");
        let v: serde_json::Value = serde_json::from_str(&reply).unwrap();
        format!("Bearer {}", v["access_token"].as_str().unwrap())
    };
    let admin = login("boss@example.com");
    let (status, _, users) = http(
        port,
        "GET",
        "/api/account/users",
        &[("Authorization", &admin)],
        "",
    )
    .unwrap();
    assert_eq!(status, 200);
    assert!(users.contains("boss@example.com"));

    let body = format!(r#"{{"email":"cust@example.com","password":"{PASSWORD}"}}"#);
    http(port, "POST", "/api/account/register", &json, &body).unwrap();
    let customer = login("cust@example.com");
    let (status, _, _) = http(
        port,
        "GET",
        "/api/account/users",
        &[("Authorization", &customer)],
        "",
    )
    .unwrap();
    assert_eq!(status, 403);
    server.kill();

    let (ok, out, _) = shopbox(&["users", "list"], data);
    assert!(ok);
    assert!(out.contains("boss@example.com") && out.contains("cust@example.com"));
    let (ok, out, _) = shopbox(&["admin", "demote", "boss@example.com"], data);
    assert!(ok, "{out}");
    let (ok, out, _) = shopbox(&["outbox", "--to", "cust@example.com"], data);
    assert!(ok);
    assert!(out.contains("/api/account/verify?token="), "{out}");
    let (ok, out, err) = shopbox(
        &[
            "admin",
            "reset-password",
            "cust@example.com",
            "--password",
            "a new password",
        ],
        data,
    );
    assert!(ok, "{err}");
    assert!(out.contains("sessions"), "{out}");
}
