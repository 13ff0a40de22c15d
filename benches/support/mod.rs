//! What the benchmarks share: a keep-alive HTTP/1.1 client over loopback and the small
//! readers of its answers. Each bench uses part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A keep-alive HTTP/1.1 connection. Like any HTTP client, it opens a new one when this
/// one sat idle longer than the server keeps idle connections (Rocket: 5 s).
pub struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    port: u16,
    used: Instant,
}

/// Idle longer than this, a connection is replaced before the next request.
const IDLE: Duration = Duration::from_secs(2);

impl Conn {
    pub async fn open(port: u16) -> Conn {
        let stream = TcpStream::connect(("127.0.0.1", port))
            .await
            .expect("connect");
        stream.set_nodelay(true).ok();
        Conn {
            stream,
            buf: Vec::new(),
            port,
            used: Instant::now(),
        }
    }

    pub async fn call(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &str,
    ) -> (u16, String) {
        self.call_with(method, path, token, "", body).await
    }

    /// A connection once the server at `port` listens (it may still be starting).
    pub async fn when_listening(port: u16) -> Conn {
        loop {
            if let Ok(s) = TcpStream::connect(("127.0.0.1", port)).await {
                drop(s);
                return Conn::open(port).await;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `GET path` without a login.
    pub async fn get(&mut self, path: &str) -> (u16, String) {
        self.call("GET", path, None, "").await
    }

    /// `call` with extra header lines (each ending in `\r\n`).
    pub async fn call_with(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        headers: &str,
        body: &str,
    ) -> (u16, String) {
        let auth = token
            .map(|t| format!("Authorization: Bearer {t}\r\n"))
            .unwrap_or_default();
        let req = format!(
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}{headers}Content-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if self.used.elapsed() > IDLE {
            *self = Conn::open(self.port).await;
        }
        self.stream.write_all(req.as_bytes()).await.expect("write");
        let answer = self.read_answer().await;
        self.used = Instant::now();
        answer
    }

    async fn read_answer(&mut self) -> (u16, String) {
        loop {
            if let Some(end) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buf[..end]).to_string();
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                let len: usize = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse().unwrap_or(0))
                    })
                    .unwrap_or(0);
                while self.buf.len() < end + 4 + len {
                    self.read_more().await;
                }
                let body = String::from_utf8_lossy(&self.buf[end + 4..end + 4 + len]).to_string();
                self.buf.drain(..end + 4 + len);
                return (status, body);
            }
            self.read_more().await;
        }
    }

    async fn read_more(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).await.expect("read");
        assert!(n > 0, "server closed the connection");
        self.buf.extend_from_slice(&chunk[..n]);
    }
}

pub fn field(body: &str, name: &str) -> String {
    let v: serde_json::Value = serde_json::from_str(body).unwrap_or_default();
    match &v[name] {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// A counter's value in the Prometheus text of `/metrics`.
pub fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0)
}

pub fn percentile(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    sorted[((sorted.len() as f64 * p) as usize).min(sorted.len() - 1)].as_secs_f64() * 1000.0
}
