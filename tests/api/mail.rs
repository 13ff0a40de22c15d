//! Mail that leaves: the real binary delivers the outbox through SMTP to a sink the test
//! runs, retries while the server is down, records each outcome, and `mail test` reports
//! the server's answer.

use crate::common;
use crate::smtp_sink::Sink;

use common::{http, Server, PASSWORD};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// The server's and the mail lines at info, no request lines (the pipe is read only at the end).
const LOG: &str = "warn,shopbox::server=info,shopbox::mail=info";

fn smtp_env(port: u16) -> Vec<(&'static str, String)> {
    vec![
        ("SHOPBOX_SMTP__HOST", "127.0.0.1".into()),
        ("SHOPBOX_SMTP__PORT", port.to_string()),
        ("SHOPBOX_SMTP__TLS", "none".into()),
        ("SHOPBOX_SMTP__FROM", "Shop <shop@example.com>".into()),
        ("SHOPBOX_SMTP__RETRY_MIN_SECS", "1".into()),
        ("SHOPBOX_SMTP__RETRY_MAX_SECS", "1".into()),
    ]
}

fn register(port: u16, email: &str) {
    let body = format!(r#"{{"email": "{email}", "password": "{PASSWORD}"}}"#);
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

/// Stops the server and answers what it logged.
fn stop(mut server: Server) -> String {
    server.kill();
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    log
}

fn shopbox(args: &[&str], data: &Path, env: &[(&str, String)]) -> (bool, String, String) {
    let out = Command::new(common::binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .envs(env.iter().map(|(k, v)| (k, v)))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn a_registration_mail_arrives_with_a_link_that_works() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(dir.path(), &[], LOG, &smtp_env(sink.port));
    server.wait_ready();
    register(server.port, "new@example.com");

    let got = sink.wait_for(1, 30);
    assert_eq!(got.len(), 1, "no mail arrived");
    let mail = &got[0];
    assert_eq!(mail.from, "<shop@example.com>");
    assert_eq!(mail.to, ["<new@example.com>"]);
    let text = mail.text();
    assert!(text.contains("Subject: Confirm your email"), "{text}");
    assert!(text.contains("Message-ID: <shopbox.1."), "{text}");
    let prefix = format!("http://127.0.0.1:{}/api/account/verify?token=", server.port);
    let start = text.find(&prefix).expect("the verification link");
    let link: String = text[start..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let path = &link[format!("http://127.0.0.1:{}", server.port).len()..];
    let (status, _, body) = http(server.port, "GET", path, &[], "").unwrap();
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(r#""is_verified":true"#), "{body}");

    wait_until_sent(dir.path(), "new@example.com");
    let log = stop(server);
    // With SMTP the mail's log line leaves the token out.
    assert!(log.contains("mail to=new@example.com"), "{log}");
    assert!(!log.contains("token="), "{log}");
    assert!(log.contains("SMTP server 127.0.0.1"), "{log}");

    let (ok, out, err) = shopbox(&["outbox"], dir.path(), &smtp_env(sink.port));
    assert!(ok, "{err}");
    assert!(out.contains("to new@example.com  sent "), "{out}");
    assert!(out.contains("250 2.0.0 Ok: queued as 1"), "{out}");
    assert_eq!(sink.received().len(), 1, "sent more than once");
}

/// A server that is "down": it answers every connection with 421 and hangs up.
fn unavailable(port: u16) -> (Arc<AtomicUsize>, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let handle = std::thread::spawn(move || {
        // Three connections: the start-up check and two delivery attempts.
        for mut stream in listener.incoming().take(3).flatten() {
            let _ = stream.write_all(b"421 4.3.2 Service not available\r\n");
            seen.fetch_add(1, Ordering::SeqCst);
        }
    });
    (count, handle)
}

/// The server records a delivery once the SMTP server has answered, a moment after the
/// sink holds the mail: waits for that record (asked of the running server through
/// `shopbox outbox`) so that stopping the server cannot come between the two.
fn wait_until_sent(data: &Path, to: &str) {
    let sent = format!("to {to}  sent ");
    let mut out = String::new();
    for _ in 0..600 {
        let (ok, listed, err) = shopbox(&["outbox"], data, &[]);
        assert!(ok, "{err}");
        out = listed;
        if out.contains(&sent) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("the delivery to {to} was never recorded: {out}");
}

#[test]
fn a_sink_that_is_down_at_first_receives_the_mail_once_it_is_up() {
    let port = common::free_port();
    let (refused, down) = unavailable(port);
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(dir.path(), &[], LOG, &smtp_env(port));
    server.wait_ready();
    register(server.port, "early@example.com");
    // The listener ends (and frees the port) after refusing delivery twice.
    down.join().unwrap();
    assert_eq!(refused.load(Ordering::SeqCst), 3);

    let sink = Sink::start_on(port, None);
    let got = sink.wait_for(1, 30);
    assert_eq!(
        got.len(),
        1,
        "the mail did not arrive once the server was up"
    );
    assert!(got[0].text().contains("Confirm your email"));
    wait_until_sent(dir.path(), "early@example.com");

    let log = stop(server);
    assert!(
        log.contains(&format!(
            "SMTP server 127.0.0.1:{port} (no TLS) does not answer"
        )),
        "{log}"
    );
    assert!(log.contains("attempt 1 failed"), "{log}");
    assert_eq!(sink.received().len(), 1);
}

#[test]
fn a_refused_address_fails_at_once_and_is_not_retried() {
    let sink = Sink::start_on(0, Some("550 5.1.1 No such user here"));
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_with_env(dir.path(), &[], LOG, &smtp_env(sink.port));
    server.wait_ready();
    register(server.port, "nobody@example.com");
    // The retry delay is 1 s: a retry would come within the second wait.
    assert_eq!(sink.wait_for_recipients(1, 30), 1);
    assert_eq!(
        sink.wait_for_recipients(2, 3),
        1,
        "a refused mail was retried"
    );
    stop(server);
    let (ok, out, err) = shopbox(&["outbox"], dir.path(), &[]);
    assert!(ok, "{err}");
    assert!(out.contains("to nobody@example.com  failed "), "{out}");
    assert!(out.contains("550"), "{out}");
}

#[test]
fn mail_test_prints_the_servers_answer() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let (ok, out, err) = shopbox(
        &["mail", "test", "owner@example.com"],
        dir.path(),
        &smtp_env(sink.port),
    );
    assert!(ok, "{err}");
    assert!(
        out.contains("the server answered: 250 2.0.0 Ok: queued as 1"),
        "{out}"
    );
    let got = sink.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].to, ["<owner@example.com>"]);

    drop(sink);
    let closed = common::free_port();
    let (ok, _, err) = shopbox(
        &["mail", "test", "owner@example.com"],
        dir.path(),
        &smtp_env(closed),
    );
    assert!(!ok);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains(&format!("not sent through 127.0.0.1:{closed}")),
        "{err}"
    );

    let (ok, _, err) = shopbox(&["mail", "test", "owner@example.com"], dir.path(), &[]);
    assert!(!ok);
    assert!(err.contains("smtp.host"), "{err}");
}

#[test]
fn without_smtp_mail_is_queued_and_logged_with_its_link() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start_logging(dir.path(), &[], LOG);
    server.wait_ready();
    register(server.port, "plain@example.com");
    let log = stop(server);
    assert!(log.contains("link=http://"), "{log}");
    let (ok, out, err) = shopbox(&["outbox"], dir.path(), &[]);
    assert!(ok, "{err}");
    assert!(
        out.contains("to plain@example.com  queued (no SMTP server configured)"),
        "{out}"
    );
}

#[test]
fn outbox_records_of_schema_3_migrate_to_queued() {
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    drop(shopbox::open_data(&config).unwrap());
    {
        let sled = common::reopen_sled(dir.path());
        let outbox = sled.open_tree("outbox").unwrap();
        let old = (
            7u64,
            "old@example.com".to_string(),
            "Old subject".to_string(),
            "Old body".to_string(),
            None::<String>,
            1_000_000i64,
        );
        let mut bytes = vec![1u8];
        bincode::serde::encode_into_std_write(&old, &mut bytes, bincode::config::standard())
            .unwrap();
        outbox.insert(7u64.to_be_bytes(), bytes).unwrap();
        let meta = sled.open_tree("meta").unwrap();
        meta.insert("schema_version", &3u32.to_be_bytes()).unwrap();
        sled.flush().unwrap();
    }
    let db = shopbox::open_data(&config).unwrap();
    let mails = shopbox::mail::store::sled::latest(&db, None, 10).unwrap();
    assert_eq!(mails.len(), 1);
    assert_eq!(mails[0].subject, "Old subject");
    assert_eq!(
        mails[0].delivery,
        shopbox::mail::model::Delivery::queued(1_000_000)
    );
    let due = shopbox::mail::store::sled::due(&db, 2_000_000, 10).unwrap();
    assert_eq!(due.len(), 1);
    assert!(shopbox::mail::store::sled::due(&db, 999_999, 10)
        .unwrap()
        .is_empty());
}
