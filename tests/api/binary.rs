//! The real executable: starts with no setup, answers, fails with one-line reasons.

use crate::common;

use common::{http, Server};
use std::process::Command;

#[test]
fn serves_health_on_a_fresh_data_folder_and_prints_urls() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut server = Server::start(&data, &[]);
    server.wait_ready();
    let (status, headers, body) = http(server.port, "GET", "/health", &[], "").unwrap();
    assert_eq!(status, 200);
    let health: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(
        (&health["status"], &health["database"], &health["disk"]),
        (&"ok".into(), &"ok".into(), &"ok".into()),
        "{body}"
    );
    assert!(headers.iter().any(|(k, _)| k == "x-request-id"));
    let (status, _, body) = http(server.port, "GET", "/openapi.json", &[], "").unwrap();
    assert_eq!(status, 200);
    assert!(body.contains("/api/shop"));

    // The folder and its secret are owner-only.
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    assert_eq!(mode(&data.join("jwt_secret")), 0o600);

    server.kill();
    let mut out = String::new();
    use std::io::Read;
    server
        .child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let url = format!("http://127.0.0.1:{}/", server.port);
    assert!(out.contains(&url), "{out}");
    assert!(out.contains(&format!("{url}docs/")), "{out}");
}

#[test]
fn a_second_server_on_the_same_folder_fails_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let mut first = Server::start(dir.path(), &[]);
    first.wait_ready();
    let out = Command::new(common::binary())
        .args(["serve", "--data"])
        .arg(dir.path())
        .args(["--port", &common::free_port().to_string()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("in use by another process"), "{err}");
}

#[test]
fn a_bad_configuration_value_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(common::binary())
        .current_dir(dir.path())
        .env("SHOPBOX_PAYMENTS__FAILURE_RATE", "3")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("payments.failure_rate"), "{err}");
    assert!(!err.contains("panicked"));

    std::fs::write(dir.path().join("config.toml"), "port = \"eighty\"\n").unwrap();
    let out = Command::new(common::binary())
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("`port`"), "{err}");

    let out = Command::new(common::binary())
        .args(["serve", "--config", "/nonexistent/shop.toml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}

#[test]
fn help_explains_every_command() {
    let out = Command::new(common::binary())
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("serve"));
}
