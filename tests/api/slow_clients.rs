//! Slow clients against the real binary on loopback: connections that send half a request
//! head are closed after `limits.header_timeout_secs`, and beyond `limits.max_connections`
//! the server accepts no more connections (they wait in the listen backlog) until one
//! closes; normal requests work again once the flood ends. Nothing here waits a fixed
//! time: each step waits for a socket to close, a reply to come, or the server's own
//! count of open sockets to change, within a generous bound that only catches a hang.

use crate::common;

use common::{http, Server};
use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const HALF_A_HEAD: &[u8] = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: slo";
/// Only a hang takes this long.
const GUARD: Duration = Duration::from_secs(60);

fn slow_client(port: u16) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.write_all(HALF_A_HEAD).expect("send half a head");
    s
}

/// The sockets the server process has open (its listener included).
fn open_sockets(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter(|t| t.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}

/// The TCP connections to `port` that the server process holds (any state but LISTEN,
/// from `/proc/net/tcp*`, matched to its file descriptors): unlike a count of every socket,
/// it does not depend on the server's other sockets. A connection its client closed still
/// counts (CLOSE_WAIT) until the server lets go of it, since until then it holds a place
/// under the cap. Counted by inode: a read of `/proc/net/tcp` is not atomic, and a socket
/// can be listed twice when the table changes during it (a CI run once saw cap + 1).
fn connections(pid: u32, port: u16) -> usize {
    let inodes: std::collections::HashSet<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|d| {
            d.filter_map(Result::ok)
                .filter_map(|e| std::fs::read_link(e.path()).ok())
                .filter_map(|t| {
                    let t = t.to_string_lossy().to_string();
                    t.strip_prefix("socket:[")
                        .and_then(|r| r.strip_suffix(']'))
                        .map(str::to_string)
                })
                .collect()
        })
        .unwrap_or_default();
    let local = format!(":{port:04X}");
    ["/proc/net/tcp", "/proc/net/tcp6"]
        .iter()
        .filter_map(|f| std::fs::read_to_string(f).ok())
        .flat_map(|table| {
            table
                .lines()
                .skip(1)
                .filter_map(|line| {
                    let cols: Vec<&str> = line.split_whitespace().collect();
                    (cols.len() > 9
                        && cols[1].ends_with(&local)
                        && cols[3] != "0A"
                        && inodes.contains(cols[9]))
                    .then(|| cols[9].to_string())
                })
                .collect::<Vec<_>>()
        })
        .collect::<std::collections::HashSet<String>>()
        .len()
}

/// Polls `f` until it holds; panics after `GUARD` (a hang).
fn wait_until(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + GUARD;
    while !f() {
        assert!(Instant::now() < deadline, "still waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Reads until the server closes the connection; whatever it sent first is returned.
fn read_until_closed(s: &mut TcpStream, deadline: Instant) -> Vec<u8> {
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the server kept a slow client's connection open"
        );
        s.set_read_timeout(Some(left)).unwrap();
        match s.read(&mut buf) {
            Ok(0) => return got,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return got,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server kept a slow client's connection open")
            }
            Err(e) => panic!("reading: {e}"),
        }
    }
}

/// A request on a kept-alive connection, answered 200.
fn ask(probe: &mut TcpStream) {
    probe
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    probe.set_read_timeout(Some(GUARD)).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = probe.read(&mut buf).expect("the probe is answered");
        assert!(n > 0, "the probe's connection closed");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let (status, headers) = common::parse_head(head);
            let length: usize = headers
                .iter()
                .find(|(k, _)| k == "content-length")
                .and_then(|(_, v)| v.parse().ok())
                .unwrap_or(0);
            if body.len() >= length {
                assert_eq!(status, 200, "{text}");
                return;
            }
        }
    }
}

fn health_is_ok(port: u16) -> bool {
    matches!(http(port, "GET", "/health", &[], ""), Ok((200, _, _)))
}

#[test]
fn connections_that_send_half_a_head_are_closed_after_the_header_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let env = [("SHOPBOX_LIMITS__HEADER_TIMEOUT_SECS", "1".to_string())];
    let mut server = Server::start_with_env(dir.path(), &[], "error", &env);
    server.wait_ready();
    let port = server.port;
    let pid = server.child.id();
    let idle = open_sockets(pid);

    let mut flood: Vec<TcpStream> = (0..200).map(|_| slow_client(port)).collect();
    // The server still serves others meanwhile ...
    assert!(health_is_ok(port));
    // ... and the timeout closes every one of the slow ones, by itself.
    let deadline = Instant::now() + GUARD;
    for s in &mut flood {
        read_until_closed(s, deadline);
    }
    wait_until("the server to let go of the sockets", || {
        open_sockets(pid) <= idle
    });
    assert!(health_is_ok(port));
    // A keep-alive connection that falls silent after a request is closed the same way.
    let mut kept = TcpStream::connect(("127.0.0.1", port)).unwrap();
    kept.write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .unwrap();
    let reply = read_until_closed(&mut kept, Instant::now() + GUARD);
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
}

#[test]
fn beyond_max_connections_no_connection_is_accepted_until_one_closes() {
    const CAP: usize = 21;
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SHOPBOX_LIMITS__MAX_CONNECTIONS", CAP.to_string()),
        ("SHOPBOX_LIMITS__HEADER_TIMEOUT_SECS", "600".to_string()),
    ];
    let mut server = Server::start_with_env(dir.path(), &[], "error", &env);
    server.wait_ready();
    let port = server.port;
    let pid = server.child.id();
    // The ready check's connection is let go of.
    wait_until("the ready check's connection to close", || {
        connections(pid, port) == 0
    });

    // One kept-alive client that is served, and slow clients up to the cap.
    let mut probe = TcpStream::connect(("127.0.0.1", port)).unwrap();
    ask(&mut probe);
    let mut slow: Vec<TcpStream> = (0..CAP - 1).map(|_| slow_client(port)).collect();
    wait_until("the slow clients to be accepted", || {
        connections(pid, port) == CAP
    });

    // A client beyond the cap that sends a whole request, and more slow ones behind it:
    // the kernel completes their handshakes, the server does not accept them.
    let mut beyond = TcpStream::connect(("127.0.0.1", port)).unwrap();
    beyond
        .write_all(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut more: Vec<TcpStream> = (0..30).map(|_| slow_client(port)).collect();
    for _ in 0..5 {
        ask(&mut probe);
        assert_eq!(connections(pid, port), CAP, "accepted beyond the cap");
    }
    beyond.set_nonblocking(true).unwrap();
    let mut buf = [0u8; 64];
    assert!(
        matches!(beyond.read(&mut buf), Err(e) if e.kind() == ErrorKind::WouldBlock),
        "a connection beyond the cap was served"
    );
    beyond.set_nonblocking(false).unwrap();

    // One slow client leaves: the first one waiting is accepted and answered.
    drop(slow.pop());
    let reply = read_until_closed(&mut beyond, Instant::now() + GUARD);
    assert!(
        reply.starts_with(b"HTTP/1.1 200"),
        "{}",
        String::from_utf8_lossy(&reply)
    );
    assert!(connections(pid, port) <= CAP);

    // The flood ends: everyone is served again.
    drop(slow);
    drop(more.drain(..));
    drop(probe);
    wait_until("the flood's sockets to close", || {
        connections(pid, port) == 0
    });
    for _ in 0..3 {
        assert!(health_is_ok(port));
    }
}
