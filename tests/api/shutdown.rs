//! Graceful stop of the real binary: SIGTERM under a checkout load loses no acknowledged
//! order and answers nothing it should not, and an upload in flight completes; the
//! server exits 0 with one line saying what it finished.

use crate::common;
use crate::load::{self, call, Load};

use common::Server;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

const LOG: &str = "warn,shopbox::server=info";

fn sigterm(child: &Child) {
    // SAFETY: sends a signal to the child this test started; no memory is involved.
    let done = unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert_eq!(done, 0);
}

/// Waits (bounded) for the server to exit after SIGTERM; answers whether it exited 0 and
/// what it logged.
fn wait_exit(server: &mut Server) -> (bool, String) {
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "the server did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut log = String::new();
    server
        .child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut log)
        .unwrap();
    (status.success(), log)
}

#[test]
fn sigterm_under_checkout_load_loses_no_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    load::create_admin(dir.path());
    let mut server = Server::start_logging(dir.path(), &[], LOG);
    server.wait_ready();
    let shop = load::stock(server.port, 3, 1_000_000, 8);
    let running = Load::start(server.port, &shop);
    let deadline = Instant::now() + Duration::from_secs(30);
    while running.orders() < 30 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    sigterm(&server.child);
    let (exited_ok, log) = wait_exit(&mut server);
    let (acknowledged, answers) = running.finish();
    assert!(exited_ok, "{log}");
    let stops: Vec<&str> = log.lines().filter(|l| l.contains("stopped:")).collect();
    assert_eq!(stops.len(), 1, "{log}");
    assert!(
        stops[0].contains("request(s) finished during shutdown"),
        "{log}"
    );
    assert!(stops[0].contains("database flushed"), "{log}");
    assert!(!stops[0].contains("cut off"), "{log}");
    // Every answer was earned: a 201, never a 5xx or a 4xx that the request did not
    // deserve (a refused or reset connection after the stop is fine).
    for (what, status) in &answers {
        assert_eq!(*status, 201, "{what} answered {status}");
    }

    let mut server = Server::start_logging(dir.path(), &[], "error");
    server.wait_ready();
    let admin = load::login(server.port, load::ADMIN);
    for (id, _) in &acknowledged {
        let (status, order) = call(
            server.port,
            "GET",
            &format!("/api/orders/{id}"),
            Some(&admin),
            None,
        )
        .unwrap();
        assert_eq!(status, 200, "order {id} was answered 201 but is gone");
        assert_eq!(order["status"], "confirmed");
    }
    eprintln!(
        "{} orders acknowledged before SIGTERM, all present; {}",
        acknowledged.len(),
        stops[0]
    );
}

#[test]
fn an_upload_in_flight_completes_after_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    load::create_admin(dir.path());
    let mut server = Server::start_logging(dir.path(), &[], LOG);
    server.wait_ready();
    let port = server.port;
    let admin = load::login(port, load::ADMIN);
    let (status, product) = call(
        port,
        "POST",
        "/api/products",
        Some(&admin),
        Some(serde_json::json!({"title": "Slow", "price": 1, "stock_quantity": 1})),
    )
    .unwrap();
    assert_eq!(status, 201);

    let png = shopbox::product::images::demo_png(7, 64);
    let boundary = "slowuploadboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.png\"\r\nContent-Type: image/png\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let head = format!(
        "POST /api/products/{}/image HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {admin}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        product["id"],
        body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(60)))
        .unwrap();
    stream.write_all(head.as_bytes()).unwrap();
    // The body takes about 2 s; the stop comes after its first part.
    let chunks: Vec<&[u8]> = body.chunks(body.len().div_ceil(20)).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        stream.write_all(chunk).unwrap();
        if i == 1 {
            std::thread::sleep(Duration::from_millis(100));
            sigterm(&server.child);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    let (status, _) = common::parse_head(reply.split("\r\n\r\n").next().unwrap());
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains(r#""image_url":"/media/"#), "{reply}");

    let (exited_ok, log) = wait_exit(&mut server);
    assert!(exited_ok, "{log}");
    assert!(
        log.contains("stopped: 1 request(s) finished during shutdown; database flushed"),
        "{log}"
    );
}
