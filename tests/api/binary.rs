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

    // Transparent huge pages are off for the server (one small allocation would make
    // 2 MiB resident: src/main.rs `no_huge_pages`). Kernels before 6.4 do not show it.
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.child.id())).unwrap();
    if let Some(line) = status.lines().find(|l| l.starts_with("THP_enabled:")) {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }

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
    // The URLs the README promises.
    assert!(out.contains(&format!("{url}openapi.json")), "{out}");
    assert!(out.contains(&format!("{url}health")), "{out}");
    assert!(out.contains(&format!("{url}metrics")), "{out}");
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

fn help(args: &[&str]) -> String {
    let out = Command::new(common::binary())
        .args(args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn help_explains_every_command() {
    let text = help(&[]);
    assert!(text.contains("serve"));
    let commands = [
        vec!["serve"],
        vec!["admin", "create"],
        vec!["admin", "promote"],
        vec!["admin", "demote"],
        vec!["admin", "reset-password"],
        vec!["users", "list"],
        vec!["seed"],
        vec!["check"],
        vec!["export-pg"],
        vec!["import-pg"],
        vec!["backup"],
        vec!["restore"],
        vec!["mail", "test"],
        vec!["outbox"],
    ];
    for command in commands {
        let text = help(&command);
        // SPEC.md is not shipped: help says what it means in place.
        assert!(!text.contains("SPEC"), "{command:?}:\n{text}");
        // Every option and argument has a description after its name.
        let mut section = "";
        for line in text.lines() {
            if line.ends_with(':') && !line.starts_with(' ') {
                section = line;
                continue;
            }
            if (section == "Options:" || section == "Arguments:") && line.starts_with("  ") {
                let described = line
                    .trim()
                    .split("  ")
                    .filter(|p| !p.trim().is_empty())
                    .count()
                    > 1;
                assert!(
                    described,
                    "{command:?}: no help for `{}`:\n{text}",
                    line.trim()
                );
                // A description is not cut short (clap drops a final period, so a line
                // ending in an apostrophe reads as cut off).
                assert!(!line.trim_end().ends_with('\''), "{command:?}: {line}");
            }
        }
    }
}

/// Runs the binary with its standard output on a pipe whose reader is gone.
fn with_closed_stdout(args: &[&str], data: &std::path::Path) -> std::process::Output {
    use std::os::fd::{FromRawFd, OwnedFd};
    let mut fds = [0; 2];
    assert_eq!(unsafe { libc::pipe(fds.as_mut_ptr()) }, 0);
    let (reader, writer) = unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
    drop(reader);
    Command::new(common::binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .stdout(std::process::Stdio::from(writer))
        .output()
        .unwrap()
}

#[test]
fn a_reader_that_went_away_ends_a_command_quietly() {
    let dir = tempfile::tempdir().unwrap();
    for args in [&["users", "list"][..], &["outbox"], &["check"]] {
        let out = with_closed_stdout(args, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{args:?}: {:?} {err}", out.status);
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

fn cli(args: &[&str], data: &std::path::Path) -> (bool, String, String) {
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

fn login(port: u16, email: &str, password: &str) -> u16 {
    let body = serde_json::json!({"email": email, "password": password}).to_string();
    http(
        port,
        "POST",
        "/api/account/login",
        &[("Content-Type", "application/json")],
        &body,
    )
    .unwrap()
    .0
}

#[test]
fn admin_create_on_an_existing_user_says_what_happens_to_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let email = "owner@example.com";
    let first = "first password 1";
    let (ok, out, err) = cli(
        &["admin", "create", "--email", email, "--password", first],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("created admin"), "{out}");

    // Again without a password: it stays, and the output says so.
    let (ok, out, err) = cli(&["admin", "create", "--email", email], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("is now an admin"), "{out}");
    assert!(out.contains("password is unchanged"), "{out}");

    // With one: it is replaced, and the output says so.
    let second = "second password 2";
    let (ok, out, err) = cli(
        &["admin", "create", "--email", email, "--password", second],
        dir.path(),
    );
    assert!(ok, "{err}");
    assert!(out.contains("password was replaced"), "{out}");

    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready();
    assert_eq!(login(server.port, email, first), 401);
    assert_eq!(login(server.port, email, second), 200);
}

#[test]
fn seeding_a_shop_that_has_products_needs_add() {
    let dir = tempfile::tempdir().unwrap();
    let media = |dir: &std::path::Path| std::fs::read_dir(dir.join("media")).unwrap().count();
    let (ok, out, err) = cli(&["seed", "--demo", "--products", "10"], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("seeded 10 products"), "{out}");
    assert_eq!(media(dir.path()), 10);

    let (ok, out, err) = cli(&["seed", "--demo", "--products", "10"], dir.path());
    assert!(!ok, "seeded twice: {out}");
    assert!(
        err.contains("10 product(s) already") && err.contains("--add"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(media(dir.path()), 10, "nothing was added");

    let (ok, out, err) = cli(&["seed", "--demo", "--products", "10", "--add"], dir.path());
    assert!(ok, "{err}");
    assert!(out.contains("seeded 10 products"), "{out}");
    assert_eq!(media(dir.path()), 20);
}
