//! Helpers shared by the integration tests: an in-process app on a temporary data folder,
//! and the real binary on a free port.
#![allow(dead_code)]

use rocket::local::asynchronous::Client;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use shopbox::config::Config;

pub struct TestApp {
    pub client: Client,
    pub dir: tempfile::TempDir,
}

pub fn test_config(dir: &Path) -> Config {
    Config {
        data_dir: dir.to_path_buf(),
        cache_capacity_mb: 8,
        ..Config::default()
    }
}

pub async fn app() -> TestApp {
    app_with(|_| {}, |r| r).await
}

/// An app whose config and Rocket the test may adjust (extra test routes, say).
pub async fn app_with(
    adjust: impl FnOnce(&mut Config),
    extend: impl FnOnce(rocket::Rocket<rocket::Build>) -> rocket::Rocket<rocket::Build>,
) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut config = test_config(dir.path());
    adjust(&mut config);
    let db = shopbox::open_data(&config).expect("open data");
    let rocket = extend(shopbox::rocket(config, db).expect("build rocket"));
    let client = Client::untracked(rocket).await.expect("valid rocket");
    TestApp { client, dir }
}

pub fn binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_shopbox"))
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("free port")
}

/// The real server, killed when dropped.
pub struct Server {
    pub child: Child,
    pub port: u16,
}

impl Server {
    pub fn start(data: &Path, extra: &[&str]) -> Server {
        let port = free_port();
        let child = Command::new(binary())
            .args(["serve", "--data"])
            .arg(data)
            .args(["--port", &port.to_string()])
            .args(extra)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shopbox");
        Server { child, port }
    }

    /// Waits until `/health` answers 200.
    pub fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("shopbox exited early: {status}");
            }
            if let Ok((200, _, _)) = http(self.port, "GET", "/health", &[], "") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("shopbox did not become ready");
    }

    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill();
    }
}

/// `(status, headers with lower-case names, body)`.
pub type HttpReply = (u16, Vec<(String, String)>, String);

/// A plain HTTP/1.1 request over loopback: `(status, headers, body)`.
pub fn http(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> std::io::Result<HttpReply> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\nContent-Length: {}\r\n",
        body.len()
    );
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    Ok((status, headers, body.to_string()))
}
