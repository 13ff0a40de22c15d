//! TLS to PostgreSQL (`sslmode` in `database.url`, `database.ca_file`), against the local
//! test server with its certificate (Debian's snakeoil one). The server's TLS is turned on
//! when it is off and the test may (a superuser, the certificate present); else the test
//! says so in one line and returns.

use crate::common::*;
use rocket::http::{Method, Status};
use std::path::PathBuf;

const SNAKEOIL_CERT: &str = "/etc/ssl/certs/ssl-cert-snakeoil.pem";
const SNAKEOIL_KEY: &str = "/etc/ssl/private/ssl-cert-snakeoil.key";

async fn query_one(url: &str, sql: &str) -> Result<String, tokio_postgres::Error> {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls).await?;
    tokio::spawn(conn);
    let rows = client.simple_query(sql).await?;
    Ok(rows
        .iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .unwrap_or_default())
}

/// The certificate file the server presents, once its TLS is on; None (after saying why)
/// when it cannot be.
async fn server_tls_on() -> Option<PathBuf> {
    let base = pg_base_url();
    let show = |what: &'static str| {
        let base = base.clone();
        async move { query_one(&base, &format!("SHOW {what}")).await.unwrap() }
    };
    if show("ssl").await != "on" {
        let turned_on = async {
            let sql = format!(
                "ALTER SYSTEM SET ssl_cert_file = '{SNAKEOIL_CERT}'; \
                 ALTER SYSTEM SET ssl_key_file = '{SNAKEOIL_KEY}'; \
                 ALTER SYSTEM SET ssl = on; SELECT pg_reload_conf()"
            );
            query_one(&base, &sql).await.map_err(|e| e.to_string())?;
            // The reload reaches new sessions a moment later.
            for _ in 0..100 {
                if show("ssl").await == "on" {
                    return Ok(());
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            Err("ssl stayed off after the reload (see the server's log)".to_string())
        };
        if let Err(e) = turned_on.await {
            println!("skipped: the test PostgreSQL server has ssl off and cannot turn it on: {e}");
            return None;
        }
    }
    Some(PathBuf::from(show("ssl_cert_file").await))
}

fn with_sslmode(url: &str, mode: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode={mode}")
}

fn config_on(
    dir: &std::path::Path,
    url: &str,
    ca_file: Option<PathBuf>,
) -> shopbox::config::Config {
    let mut config = test_config(dir);
    config.database.url = Some(url.to_string());
    config.database.ca_file = ca_file;
    config
}

async fn serve(url: &str, ca_file: Option<PathBuf>) -> Result<TestApp, String> {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = config_on(dir.path(), url, ca_file);
    let db = shopbox::open_backend(&config).await.map_err(|e| e.0)?;
    let rocket = shopbox::rocket(config, db).expect("build rocket");
    let client = rocket::local::asynchronous::Client::untracked(rocket)
        .await
        .expect("valid rocket");
    Ok(TestApp {
        client,
        dir,
        pg: None,
    })
}

/// Whether the app's connections to the database are encrypted (asked on one of them).
async fn encrypted(t: &TestApp) -> bool {
    let pg = state(t).db.pg().expect("served from PostgreSQL");
    let client = pg.client().await.unwrap();
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    row.get(0)
}

#[rocket::async_test]
async fn sslmode_require_encrypts_and_verify_full_checks_the_certificate() {
    let Some(cert) = server_tls_on().await else {
        return;
    };
    let schema = PgSchema::new().await;

    // require: encrypted, the certificate taken as it is; the shop serves.
    let t = serve(&with_sslmode(&schema.url, "require"), None)
        .await
        .unwrap();
    assert!(encrypted(&t).await);
    let (status, body) = send(&t, Method::Get, "/api/products", None, None).await;
    assert_eq!(status, Status::Ok, "{body}");
    drop(t);

    // disable: plain, even though the server offers TLS.
    let t = serve(&with_sslmode(&schema.url, "disable"), None)
        .await
        .unwrap();
    assert!(!encrypted(&t).await);
    drop(t);

    // prefer (no sslmode): TLS, since the server offers it.
    let t = serve(&schema.url, None).await.unwrap();
    assert!(encrypted(&t).await);
    drop(t);

    // verify-full: a self-signed certificate no bundled root vouches for is refused, in
    // one line naming the problem.
    let e = serve(&with_sslmode(&schema.url, "verify-full"), None)
        .await
        .err()
        .expect("an untrusted certificate refused");
    assert!(!e.contains('\n'), "{e}");
    assert!(e.contains("invalid peer certificate: UnknownIssuer"), "{e}");
    println!("verify-full refused: {e}");

    // An unsupported mode and a missing ca_file are refused at the start too.
    let e = serve(&with_sslmode(&schema.url, "verify-ca"), None)
        .await
        .err()
        .expect("verify-ca refused");
    assert!(e.contains("sslmode=verify-ca is not supported"), "{e}");
    let missing = PathBuf::from("/nonexistent/ca.pem");
    let e = serve(&with_sslmode(&schema.url, "verify-full"), Some(missing))
        .await
        .err()
        .expect("a missing ca_file refused");
    assert!(
        e.starts_with("cannot read database.ca_file /nonexistent/ca.pem"),
        "{e}"
    );

    // verify-full with the certificate trusted through ca_file, the host as it names it.
    let names_localhost = std::process::Command::new("openssl")
        .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
        .arg(&cert)
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("DNS:localhost"))
        .unwrap_or(false);
    let on_loopback = schema.url.contains("@127.0.0.1:");
    if !(names_localhost && on_loopback) {
        println!(
            "skipped verify-full with ca_file: {} does not name localhost or the server is not \
             at 127.0.0.1",
            cert.display()
        );
        return;
    }
    let url = with_sslmode(&schema.url, "verify-full").replace("@127.0.0.1:", "@localhost:");
    let t = serve(&url, Some(cert.clone())).await.unwrap();
    assert!(encrypted(&t).await);
    let (status, body) = send(&t, Method::Get, "/api/products", None, None).await;
    assert_eq!(status, Status::Ok, "{body}");
    drop(t);

    // The same certificate under another name (127.0.0.1) is refused.
    let url = with_sslmode(&schema.url, "verify-full");
    let e = serve(&url, Some(cert))
        .await
        .err()
        .expect("wrong name refused");
    assert!(
        e.contains("certificate not valid for name \"127.0.0.1\""),
        "{e}"
    );
    drop(schema);
}
