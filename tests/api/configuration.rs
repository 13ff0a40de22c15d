//! Configuration you can trust, through the real executable: unknown keys and variables
//! stop the start naming the closest known key, `shopbox config` tells what is in force
//! and where it came from, the data folder is owner-only whatever its mode was, and a
//! port in use is named.

use crate::common;

use common::{http, Server};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

/// Runs the binary in `dir` (where it finds `config.toml`) with `env` added.
fn run_in(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(common::binary())
        .current_dir(dir)
        .args(args)
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .expect("run shopbox")
}

/// The one line a refused start prints on stderr.
fn refusal(out: &Output) -> String {
    assert!(!out.status.success(), "started: {out:?}");
    let err = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(!err.contains("panicked"), "{err}");
    err
}

#[test]
fn an_unknown_key_in_the_file_stops_the_start_with_the_closest_key() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    std::fs::write(dir.path().join("config.toml"), "prot = 9000\n").unwrap();
    let err = refusal(&run_in(dir.path(), &["serve", "--data", data], &[]));
    assert_eq!(
        err,
        "shopbox: unknown key `prot` in config.toml: did you mean `port`?"
    );
    assert!(
        !Path::new(data).exists(),
        "nothing is created before the check"
    );

    // In a section, and with every command, not only serve.
    std::fs::write(
        dir.path().join("config.toml"),
        "port = 9000\n[smtp]\nhots = \"mail.example.com\"\n",
    )
    .unwrap();
    let err = refusal(&run_in(dir.path(), &["users", "list", "--data", data], &[]));
    assert!(
        err.ends_with("unknown key `smtp.hots` in config.toml: did you mean `smtp.host`?"),
        "{err}"
    );
    // A section name used as a key is unknown too.
    std::fs::write(dir.path().join("config.toml"), "smtp = 25\n").unwrap();
    let err = refusal(&run_in(dir.path(), &["--data", data], &[]));
    assert!(err.contains("unknown key `smtp`"), "{err}");

    // An explicitly named file is checked the same way.
    let named = dir.path().join("shop.toml");
    std::fs::write(&named, "[rate_limit]\nlogin_per_minut = 5\n").unwrap();
    let err = refusal(&run_in(
        dir.path(),
        &["--config", named.to_str().unwrap(), "--data", data],
        &[],
    ));
    assert!(
        err.contains("`rate_limit.login_per_minut`")
            && err.contains("did you mean `rate_limit.login_per_minute`?"),
        "{err}"
    );
}

#[test]
fn an_unknown_environment_variable_stops_the_start_with_the_closest_one() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let data = data.to_str().unwrap();
    let err = refusal(&run_in(
        dir.path(),
        &["serve", "--data", data],
        &[("SHOPBOX_PROT", "9000")],
    ));
    assert_eq!(
        err,
        "shopbox: unknown environment variable SHOPBOX_PROT: did you mean SHOPBOX_PORT?"
    );
    let err = refusal(&run_in(
        dir.path(),
        &["--data", data],
        &[("SHOPBOX_SMTP__HOTS", "mail.example.com")],
    ));
    assert!(
        err.ends_with("SHOPBOX_SMTP__HOTS: did you mean SHOPBOX_SMTP__HOST?"),
        "{err}"
    );
    // A single underscore where two belong.
    let err = refusal(&run_in(
        dir.path(),
        &["--data", data],
        &[("SHOPBOX_RATE_LIMIT_ENABLED", "false")],
    ));
    assert!(err.contains("SHOPBOX_RATE_LIMIT__ENABLED"), "{err}");

    // The variables of commands and of the tests are not configuration keys, and are fine.
    let out = run_in(
        dir.path(),
        &["config", "--data", data],
        &[
            ("SHOPBOX_ADMIN_PASSWORD", "not a key"),
            ("SHOPBOX_TEST_ANYTHING", "1"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn config_command_prints_values_in_force_with_sources_and_masked_secrets() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("config.toml"),
        "port = 9100\njwt_secret = \"jwt-secret-jwt-secret-jwt-secret-0123\"\n\
         [smtp]\nhost = \"mail.example.com\"\nusername = \"shop\"\npassword = \"smtp-pass-9876\"\n",
    )
    .unwrap();
    let out = run_in(
        dir.path(),
        &["config", "--data", "/srv/shop"],
        &[
            ("SHOPBOX_SHOP_NAME", "Env Shop"),
            ("SHOPBOX_METRICS__TOKEN", "metrics-token-5555"),
            (
                "SHOPBOX_PG_URL",
                "postgres://shop:pg-pass-4444@db.local:5432/shop",
            ),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(line("port"), "port = 9100 # file config.toml");
    assert_eq!(
        line("shop_name"),
        "shop_name = \"Env Shop\" # environment SHOPBOX_SHOP_NAME"
    );
    assert_eq!(line("currency"), "currency = \"USD\" # default");
    assert_eq!(
        line("data_dir"),
        "data_dir = \"/srv/shop\" # command line --data"
    );
    assert_eq!(
        line("smtp.host"),
        "smtp.host = \"mail.example.com\" # file config.toml"
    );
    assert_eq!(
        line("smtp.password"),
        "smtp.password = \"********\" # file config.toml"
    );
    assert_eq!(
        line("jwt_secret"),
        "jwt_secret = \"********\" # file config.toml"
    );
    assert_eq!(
        line("metrics.token"),
        "metrics.token = \"********\" # environment SHOPBOX_METRICS__TOKEN"
    );
    assert_eq!(line("public_url"), "public_url = (unset) # default");
    assert!(
        text.contains("(SHOPBOX_PG_URL = postgres://shop:********@db.local:5432/shop)"),
        "{text}"
    );
    for secret in [
        "jwt-secret-jwt-secret",
        "smtp-pass-9876",
        "metrics-token-5555",
        "pg-pass-4444",
    ] {
        assert!(!text.contains(secret), "{secret} shown in\n{text}");
    }
    // Every key of the defaults is listed, each with a source.
    assert!(text.lines().count() > 35, "{text}");
    assert!(text
        .lines()
        .all(|l| l.contains(" = ") && l.contains("  # ")));
}

#[test]
fn lists_from_the_environment_may_be_comma_separated() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["config", "--data", "x"],
        &[
            ("SHOPBOX_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
            ("SHOPBOX_CORS__ALLOWED_ORIGINS", r#"["https://a.example"]"#),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(r#"trusted_proxies = ["10.0.0.0/8","192.168.1.1"]"#),
        "{text}"
    );
    assert!(
        text.contains(r#"cors.allowed_origins = ["https://a.example"]"#),
        "{text}"
    );
    // A bad item is named by its place in the list.
    let err = refusal(&run_in(
        dir.path(),
        &["config"],
        &[("SHOPBOX_TRUSTED_PROXIES", "10.0.0.0/8,nope")],
    ));
    assert!(err.contains("`trusted_proxies[1]`"), "{err}");
}

#[test]
fn a_trusted_proxy_from_a_comma_list_is_believed() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(
        dir.path(),
        &[],
        "warn",
        &[
            ("SHOPBOX_TRUSTED_PROXIES", "10.9.9.9,127.0.0.1".into()),
            ("SHOPBOX_RATE_LIMIT__LOGIN_PER_MINUTE", "1".into()),
        ],
    );
    server.wait_ready();
    let login = |ip: &str| {
        http(
            server.port,
            "POST",
            "/api/account/login",
            &[
                ("Content-Type", "application/json"),
                ("X-Forwarded-For", ip),
            ],
            r#"{"email":"nobody@example.com","password":"wrong-password"}"#,
        )
        .unwrap()
        .0
    };
    assert_eq!(login("203.0.113.1"), 401);
    assert_eq!(login("203.0.113.1"), 429);
    // Another client behind the same proxy has its own limit.
    assert_eq!(login("203.0.113.2"), 401);
}

#[test]
fn the_data_folder_becomes_owner_only_whatever_its_mode_was() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A shop's folder as a checkout or a copy may leave it: readable by everyone.
    {
        let mut server = Server::start(&data, &[]);
        server.wait_ready();
    }
    let mode = |p: &Path| std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777;
    let mut entries = Vec::new();
    walk(&data, &mut entries);
    assert!(entries.len() > 4, "{entries:?}");
    for path in &entries {
        let open = if path.is_dir() { 0o755 } else { 0o644 };
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(open)).unwrap();
    }
    std::fs::write(data.join("media/old.png"), b"png").unwrap();
    std::fs::set_permissions(
        data.join("media/old.png"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();

    let mut server = Server::start(&data, &[]);
    server.wait_ready();
    let mut entries = Vec::new();
    walk(&data, &mut entries);
    assert_eq!(mode(&data), 0o700);
    for path in &entries {
        let want = if path.is_dir() { 0o700 } else { 0o600 };
        assert_eq!(mode(path), want, "{}", path.display());
    }
    // What the server writes from now on is owner-only too.
    let (status, _, _) = http(
        server.port,
        "POST",
        "/api/account/register",
        &[("Content-Type", "application/json")],
        r#"{"email":"perm@example.com","password":"correct horse battery","name":"P"}"#,
    )
    .unwrap();
    assert_eq!(status, 201);
    server.kill();
    let mut entries = Vec::new();
    walk(&data, &mut entries);
    for path in &entries {
        assert_eq!(mode(path) & 0o077, 0, "{}", path.display());
    }
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            walk(&path, out);
        }
        out.push(path);
    }
}

#[test]
fn a_port_in_use_is_named_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let data = dir.path().join("data");
    let out = run_in(
        dir.path(),
        &["serve", "--data", data.to_str().unwrap(), "--port", &port],
        &[],
    );
    let err = refusal(&out);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")) && err.contains("in use"),
        "{err}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn the_database_url_comes_from_the_environment_masked_and_a_bad_one_stops_the_start() {
    let dir = tempfile::tempdir().unwrap();
    let out = run_in(
        dir.path(),
        &["config"],
        &[
            (
                "SHOPBOX_DATABASE__URL",
                "postgres://shop:db-pass-5555@db.local:5432/shop",
            ),
            ("SHOPBOX_DATABASE__POOL_SIZE", "4"),
        ],
    );
    assert!(out.status.success(), "{out:?}");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!text.contains("db-pass-5555"), "{text}");
    let line = |key: &str| -> String {
        text.lines()
            .find(|l| l.starts_with(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("no line for {key} in\n{text}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        line("database.url"),
        "database.url = \"postgres://shop:********@db.local:5432/shop\" # environment SHOPBOX_DATABASE__URL"
    );
    assert_eq!(
        line("database.pool_size"),
        "database.pool_size = 4 # environment SHOPBOX_DATABASE__POOL_SIZE"
    );
    assert_eq!(
        line("database.statement_timeout_ms"),
        "database.statement_timeout_ms = 30000 # default"
    );

    let data = dir.path().join("data");
    let out = run_in(
        dir.path(),
        &[
            "serve",
            "--data",
            data.to_str().unwrap(),
            "--database",
            "mysql://shop@db.local/shop",
        ],
        &[],
    );
    assert_eq!(
        refusal(&out),
        "shopbox: invalid configuration: `database.url` must be a PostgreSQL URL such as postgres://user@host:5432/shop"
    );
    let out = run_in(
        dir.path(),
        &["serve", "--data", data.to_str().unwrap()],
        &[("SHOPBOX_DATABASE__POOL_SIZ", "4")],
    );
    assert_eq!(
        refusal(&out),
        "shopbox: unknown environment variable SHOPBOX_DATABASE__POOL_SIZ: did you mean SHOPBOX_DATABASE__POOL_SIZE?"
    );
}
