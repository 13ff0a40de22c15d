//! The CLI against a running shop: every admin command is carried out by the server that
//! holds the data folder (through `control.sock`, owner-only), prints what it prints
//! offline with the same exit code, and takes effect in the running shop at once. Without
//! a server (or with the socket a killed server left), the CLI opens the folder itself.

use crate::common;
use crate::smtp_sink::Sink;

use common::{http, Server, PASSWORD};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::process::{Command, Stdio};

/// `(exit code, stdout, stderr)` of the binary with `args --data data`, run in `cwd`.
fn cli(args: &[&str], data: &Path, env: &[(&str, String)], cwd: &Path) -> (i32, String, String) {
    let out = Command::new(common::binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .env_remove("SHOPBOX_ADMIN_PASSWORD")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .current_dir(cwd)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn ok(run: (i32, String, String)) -> String {
    assert_eq!(run.0, 0, "stdout: {}\nstderr: {}", run.1, run.2);
    run.1
}

fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SHOPBOX_SMTP__HOST", "127.0.0.1".into()),
        ("SHOPBOX_SMTP__PORT", port.to_string()),
        ("SHOPBOX_SMTP__TLS", "none".into()),
        ("SHOPBOX_SMTP__FROM", "Shop <shop@example.com>".into()),
    ]
}

fn login(port: u16, email: &str, password: &str) -> u16 {
    let body = json!({"email": email, "password": password}).to_string();
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

fn register(port: u16, email: &str) {
    let body = json!({"email": email, "password": PASSWORD}).to_string();
    let (status, _, text) = http(
        port,
        "POST",
        "/api/account/register",
        &[("Content-Type", "application/json")],
        &body,
    )
    .unwrap();
    assert_eq!(status, 201, "{text}");
}

fn product_total(port: u16) -> u64 {
    let (status, _, body) = http(port, "GET", "/api/products?limit=1", &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    serde_json::from_str::<Value>(&body).unwrap()["total"]
        .as_u64()
        .unwrap()
}

/// A PostgreSQL database of its own for the test (dropped at the end), and its URL.
struct PgDb {
    name: String,
    server: String,
}

impl PgDb {
    fn rt() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    fn sql(url: &str, sql: &str) -> i64 {
        Self::rt().block_on(async {
            let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .unwrap_or_else(|e| panic!("PostgreSQL at {url} (set SHOPBOX_TEST_PG_URL): {e}"));
            tokio::spawn(conn);
            match client.query_opt(sql, &[]).await.unwrap() {
                Some(row) if !row.is_empty() => row.get(0),
                _ => 0,
            }
        })
    }

    fn new() -> PgDb {
        let base = std::env::var("SHOPBOX_TEST_PG_URL")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
        let name = format!("shopbox_live_{}", hex::encode(rand::random::<[u8; 6]>()));
        Self::sql(&base, &format!("CREATE DATABASE {name}"));
        let server = base
            .rsplit_once('/')
            .map(|(s, _)| s.to_string())
            .unwrap_or(base);
        PgDb { name, server }
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        Self::sql(
            &format!("{}/postgres", self.server),
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

#[test]
fn every_admin_command_runs_in_the_server_and_prints_what_it_prints_offline() {
    let sink = Sink::start();
    let env = smtp_env(sink.port);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let cwd = dir.path();
    let socket = data.join("control.sock");
    let pg = PgDb::new();
    let mut server = Server::start_with_env(&data, &[], "warn", &env);
    server.wait_ready();
    let port = server.port;
    let run = |args: &[&str]| cli(args, &data, &env, cwd);

    // Owner-only: the socket is the authentication.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    // admin create / promote / demote / reset-password, in effect at once.
    let admin = "admin@example.com";
    let out = ok(run(&[
        "admin",
        "create",
        "--email",
        admin,
        "--password",
        PASSWORD,
    ]));
    assert!(out.starts_with(&format!("created admin {admin}")), "{out}");
    assert_eq!(login(port, admin, PASSWORD), 200);
    let out = ok(run(&["admin", "create", "--email", admin]));
    assert!(out.contains("password is unchanged"), "{out}");
    register(port, "cust@example.com");
    let out = ok(run(&["admin", "promote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is now an admin\n");
    let out = ok(run(&["admin", "demote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is no longer an admin\n");
    let new_password = "a brand new password";
    let out = ok(run(&[
        "admin",
        "reset-password",
        "cust@example.com",
        "--password",
        new_password,
    ]));
    assert!(out.contains("all their sessions have ended"), "{out}");
    assert_eq!(login(port, "cust@example.com", new_password), 200);
    // Failures: the same one line on stderr and exit code 1 (compared offline below).
    let live_unknown = run(&["admin", "promote", "nobody@example.com"]);
    assert_eq!(live_unknown.0, 1);
    assert_eq!(
        live_unknown.2,
        "shopbox: no user with the email nobody@example.com\n"
    );
    // No password and no terminal: the server asks the CLI, which cannot prompt.
    let live_no_password = run(&["admin", "create", "--email", "new@example.com"]);
    assert_eq!(live_no_password.0, 1);
    assert!(
        live_no_password.2.contains("no password given"),
        "{}",
        live_no_password.2
    );

    // users list, outbox, check.
    let live_users = ok(run(&["users", "list"]));
    assert!(live_users.contains(admin) && live_users.contains("cust@example.com"));
    assert!(live_users.trim_end().ends_with("2 user(s)"), "{live_users}");
    let live_outbox = ok(run(&["outbox"]));
    assert!(live_outbox.contains("to cust@example.com"), "{live_outbox}");
    assert!(live_outbox.contains("/verify?token="), "{live_outbox}");
    let live_check = ok(run(&["check"]));
    assert_eq!(live_check, "every index matches its records\n");
    assert_eq!(ok(run(&["check", "--repair"])), live_check);

    // seed: the running shop's catalog shows the products at once.
    assert_eq!(product_total(port), 0);
    let out = ok(run(&["seed", "--demo", "--products", "30"]));
    assert!(out.starts_with("seeded 30 products"), "{out}");
    assert_eq!(product_total(port), 30);
    let live_seed_again = run(&["seed", "--demo", "--products", "5"]);
    assert_eq!(live_seed_again.0, 1, "{}", live_seed_again.1);

    // backup: a relative FILE is the CLI's, not the server's working folder.
    let out = ok(run(&["backup", "live.tar.gz"]));
    assert!(out.starts_with("backed up "), "{out}");
    assert!(cwd.join("live.tar.gz").exists());

    // export-pg: every product there.
    let out = ok(run(&["export-pg", "--url", &pg.url()]));
    assert!(out.starts_with("exported to "), "{out}");
    assert_eq!(PgDb::sql(&pg.url(), "SELECT count(*) FROM products"), 30);
    assert!(
        std::fs::read_dir(&data)
            .unwrap()
            .flatten()
            .all(|e| !e.file_name().to_string_lossy().starts_with(".backup-")),
        "the export's copy is gone"
    );

    // mail test: through the server's SMTP settings.
    let out = ok(run(&["mail", "test", "probe@example.com"]));
    assert!(
        out.starts_with("sent to probe@example.com through 127.0.0.1:"),
        "{out}"
    );
    assert!(sink
        .wait_for(2, 30)
        .iter()
        .any(|m| m.to.iter().any(|t| t == "<probe@example.com>")));

    // Refused clearly: restoring into the folder, importing over it.
    let (code, _, err) = run(&["restore", "live.tar.gz"]);
    assert_eq!(code, 1);
    assert!(
        err.contains("data folder of a running shopbox server"),
        "{err}"
    );
    let (code, _, err) = run(&["import-pg", "--url", &pg.url()]);
    assert_eq!(code, 1);
    assert!(err.contains("stop the server first"), "{err}");
    assert_eq!(login(port, admin, PASSWORD), 200, "the shop is untouched");

    // With the demo customer the seed made.
    let live_users = ok(run(&["users", "list"]));
    assert!(live_users.trim_end().ends_with("3 user(s)"), "{live_users}");

    // A killed server leaves its socket; the CLI opens the folder itself and prints the same.
    server.kill();
    assert!(socket.exists());
    assert_eq!(ok(run(&["users", "list"])), live_users);
    assert_eq!(ok(run(&["check"])), live_check);
    assert_eq!(ok(run(&["check", "--repair"])), live_check);
    let offline_outbox = ok(run(&["outbox"]));
    assert!(
        offline_outbox.contains("/verify?token="),
        "{offline_outbox}"
    );
    assert_eq!(
        run(&["admin", "promote", "nobody@example.com"]),
        live_unknown
    );
    assert_eq!(
        run(&["admin", "create", "--email", "new@example.com"]),
        live_no_password
    );
    assert_eq!(run(&["seed", "--demo", "--products", "5"]), live_seed_again);
    let out = ok(run(&["admin", "promote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is now an admin\n");
    let out = ok(run(&["admin", "demote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is no longer an admin\n");
    let out = ok(run(&[
        "admin",
        "reset-password",
        "cust@example.com",
        "--password",
        PASSWORD,
    ]));
    assert!(out.contains("all their sessions have ended"), "{out}");
    let out = ok(run(&["seed", "--demo", "--products", "5", "--add"]));
    assert!(out.starts_with("seeded 5 products"), "{out}");
    let out = ok(run(&["backup", "offline.tar.gz"]));
    assert!(out.starts_with("backed up "), "{out}");
    let out = ok(run(&["export-pg", "--url", &pg.url(), "--drop-existing"]));
    assert!(out.starts_with("exported to "), "{out}");
    let out = ok(run(&["mail", "test", "probe@example.com"]));
    assert!(out.starts_with("sent to probe@example.com"), "{out}");

    // A server started on the folder replaces the stale socket, and removes it at a stop.
    let mut server = Server::start_with_env(&data, &[], "warn", &env);
    server.wait_ready();
    let users = ok(run(&["users", "list"]));
    assert!(users.contains("3 user(s)"), "{users}");
    assert_eq!(product_total(server.port), 35);
    assert_eq!(login(server.port, "cust@example.com", PASSWORD), 200);
    unsafe { libc::kill(server.child.id() as i32, libc::SIGTERM) };
    let status = server.child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert!(!socket.exists(), "the socket outlived the server");
}

/// Reads the server's events for one request on the socket itself.
fn converse(socket: &Path, hello: Value) -> Vec<Value> {
    let mut stream = UnixStream::connect(socket).unwrap();
    stream.write_all(format!("{hello}\n").as_bytes()).unwrap();
    let mut events = Vec::new();
    for line in BufReader::new(stream).lines() {
        let event: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let done = event.get("done").is_some();
        events.push(event);
        if done {
            break;
        }
    }
    events
}

#[test]
fn the_server_streams_progress_and_answers_every_request_with_an_outcome() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let socket = dir.path().join("control.sock");

    let events = converse(
        &socket,
        json!({"request": {"command": "seed", "products": 700, "add": false}, "progress": true}),
    );
    let bars: Vec<&Value> = events.iter().filter_map(|e| e.get("bar")).collect();
    assert!(!bars.is_empty(), "{events:?}");
    assert!(bars
        .iter()
        .all(|b| b["what"] == "products" && b["len"] == 700));
    let last = bars.last().unwrap();
    assert_eq!(last["done"], true);
    assert_eq!(last["pos"], 700);
    let done = &events.last().unwrap()["done"];
    assert!(
        done["ok"]
            .as_str()
            .unwrap()
            .starts_with("seeded 700 products"),
        "{done}"
    );

    // Without `progress`, only the outcome.
    let events = converse(
        &socket,
        json!({"request": {"command": "users-list"}, "progress": false}),
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(events[0]["done"]["ok"]
        .as_str()
        .unwrap()
        .contains("1 user(s)"));

    // A question for the CLI: the answer is used.
    let mut stream = UnixStream::connect(&socket).unwrap();
    let hello = json!({"request": {"command": "admin-create", "email": "asked@example.com"}, "progress": false});
    stream.write_all(format!("{hello}\n").as_bytes()).unwrap();
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    assert_eq!(
        serde_json::from_str::<Value>(&line).unwrap(),
        json!({"ask": "password"})
    );
    stream
        .write_all(format!("{}\n", json!({"answer": PASSWORD})).as_bytes())
        .unwrap();
    line.clear();
    reader.read_line(&mut line).unwrap();
    let done: Value = serde_json::from_str(&line).unwrap();
    assert!(
        done["done"]["ok"]
            .as_str()
            .unwrap()
            .starts_with("created admin asked@example.com"),
        "{done}"
    );
    assert_eq!(login(server.port, "asked@example.com", PASSWORD), 200);

    // Something else: a one-line refusal, and the server goes on.
    let events = converse(&socket, json!({"request": {"command": "rm-rf"}}));
    assert!(events[0]["done"]["err"].as_str().is_some(), "{events:?}");
    let (status, _, _) = http(server.port, "GET", "/health", &[], "").unwrap();
    assert_eq!(status, 200);
}

/// `(status, JSON body)` of a request with a bearer token.
fn with_token(port: u16, method: &str, path: &str, token: &str) -> (u16, Value) {
    let auth = format!("Bearer {token}");
    let (status, _, body) = http(port, method, path, &[("Authorization", &auth)], "").unwrap();
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Logs in; answers the access token.
fn token(port: u16, email: &str, password: &str) -> String {
    let body = json!({"email": email, "password": password}).to_string();
    let (status, _, text) = http(
        port,
        "POST",
        "/api/account/login",
        &[("Content-Type", "application/json")],
        &body,
    )
    .unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str::<Value>(&text).unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string()
}

/// A fresh schema of the test server (`SHOPBOX_TEST_PG_URL`), dropped at the end.
fn pg_schema() -> common::PgSchema {
    PgDb::rt().block_on(common::PgSchema::new())
}

#[test]
fn admin_commands_act_on_a_shop_served_from_postgresql_while_servers_run_on_it() {
    let schema = pg_schema();
    let dir = tempfile::tempdir().unwrap();
    let (data, cwd) = (dir.path().join("data"), dir.path());
    let env = vec![("SHOPBOX_DATABASE__URL", schema.url.clone())];
    let run = |args: &[&str]| cli(args, &data, &env, cwd);
    // The same commands with the URL as a flag instead of the environment.
    let flagged = |args: &[&str]| {
        let mut args = args.to_vec();
        args.extend(["--database", &schema.url]);
        cli(&args, &data, &[], cwd)
    };

    // The first admin, before any server: the empty schema gets the shop's tables.
    let boss = "boss@example.com";
    let out = ok(run(&[
        "admin",
        "create",
        "--email",
        boss,
        "--password",
        PASSWORD,
    ]));
    assert!(out.starts_with(&format!("created admin {boss}")), "{out}");
    assert!(!data.exists(), "the data folder is not used");

    // Two servers on the database, with data folders of their own.
    let (one_dir, two_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut one = Server::start_with_env(one_dir.path(), &[], "warn", &env);
    let mut two = Server::start_with_env(two_dir.path(), &[], "warn", &env);
    one.wait_ready();
    two.wait_ready();
    let boss_token = token(one.port, boss, PASSWORD);
    for port in [one.port, two.port] {
        assert_eq!(
            with_token(port, "GET", "/api/admin/summary", &boss_token).0,
            200
        );
    }

    // While they serve: promote, in effect on both at once.
    register(two.port, "cust@example.com");
    let out = ok(flagged(&["admin", "promote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is now an admin\n");
    let cust_token = token(one.port, "cust@example.com", PASSWORD);
    for port in [one.port, two.port] {
        assert_eq!(
            with_token(port, "GET", "/api/admin/summary", &cust_token).0,
            200
        );
    }

    // Demote: the token in hand no longer reaches an admin route, on either server, at
    // once; as on a data folder, the login itself stays (a customer's routes answer).
    let out = ok(run(&["admin", "demote", "cust@example.com"]));
    assert_eq!(out, "cust@example.com is no longer an admin\n");
    for port in [one.port, two.port] {
        let (status, body) = with_token(port, "GET", "/api/admin/summary", &cust_token);
        assert_eq!(status, 403, "{body}");
        let (status, me) = with_token(port, "GET", "/api/account/me", &cust_token);
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["is_admin"], json!(false), "{me}");
    }

    // Reset a password: every session ends at once, the new password logs in.
    let new_password = "a brand new password";
    let out = ok(flagged(&[
        "admin",
        "reset-password",
        "cust@example.com",
        "--password",
        new_password,
    ]));
    assert!(out.contains("all their sessions have ended"), "{out}");
    for port in [one.port, two.port] {
        assert_eq!(
            with_token(port, "GET", "/api/account/me", &cust_token).0,
            401
        );
    }
    assert_eq!(login(two.port, "cust@example.com", PASSWORD), 401);
    assert_eq!(login(two.port, "cust@example.com", new_password), 200);

    // An existing user made admin by `admin create`, with a new password.
    let out = ok(run(&[
        "admin",
        "create",
        "--email",
        "cust@example.com",
        "--password",
        PASSWORD,
    ]));
    assert!(out.contains("existed already and is now an admin"), "{out}");
    let cust_token = token(two.port, "cust@example.com", PASSWORD);
    assert_eq!(
        with_token(one.port, "GET", "/api/admin/summary", &cust_token).0,
        200
    );

    // users list and outbox read the database (the registration's mail is there).
    let users = ok(flagged(&["users", "list"]));
    assert!(
        users.contains(boss) && users.contains("cust@example.com"),
        "{users}"
    );
    assert!(users.trim_end().ends_with("2 user(s)"), "{users}");
    let outbox = ok(run(&["outbox", "--to", "cust@example.com"]));
    assert!(outbox.contains("to cust@example.com"), "{outbox}");
    assert!(outbox.contains("/verify?token="), "{outbox}");

    // Failures: the one line and exit code of a data folder's.
    let (code, _, err) = run(&["admin", "promote", "nobody@example.com"]);
    assert_eq!(
        (code, err.as_str()),
        (1, "shopbox: no user with the email nobody@example.com\n")
    );
    let (code, _, err) = run(&["admin", "create", "--email", "new@example.com"]);
    assert_eq!(code, 1);
    assert!(err.contains("no password given"), "{err}");

    // What acts on a data folder only is refused, saying what to do instead.
    let (code, _, err) = run(&["backup", "shop.tar.gz"]);
    assert_eq!(code, 1);
    assert!(err.contains("pg_dump") && err.contains("media"), "{err}");
    assert!(!cwd.join("shop.tar.gz").exists());
    let (code, _, err) = run(&["check"]);
    assert_eq!(code, 1);
    assert!(err.contains("PostgreSQL keeps"), "{err}");
    let (code, _, err) = run(&["seed", "--demo", "--products", "5"]);
    assert_eq!(code, 1);
    assert!(err.contains("export-pg"), "{err}");
    assert!(!data.exists(), "no refusal made a data folder");

    // The servers never stopped serving the admins the command line made.
    assert_eq!(login(one.port, boss, PASSWORD), 200);
    one.kill();
    two.kill();
}

#[test]
fn admin_commands_refuse_a_database_that_is_not_a_shops() {
    let schema = pg_schema();
    PgDb::sql(&schema.url, "CREATE TABLE invoices (id BIGINT PRIMARY KEY)");
    let tables = "SELECT count(*) FROM information_schema.tables \
                  WHERE table_schema = current_schema()";
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (code, _, err) = cli(
        &[
            "admin",
            "create",
            "--email",
            "boss@example.com",
            "--password",
            PASSWORD,
            "--database",
            &schema.url,
        ],
        &data,
        &[],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(err.contains("no shopbox shop"), "{err}");
    assert_eq!(PgDb::sql(&schema.url, tables), 1, "nothing was created");

    // A URL that is not PostgreSQL's: the configuration's refusal, as `serve`'s.
    let (code, _, err) = cli(
        &["users", "list", "--database", "mysql://shop@db.local/shop"],
        &data,
        &[],
        dir.path(),
    );
    assert_eq!(code, 1);
    assert!(
        err.contains("`database.url` must be a PostgreSQL URL"),
        "{err}"
    );
}
