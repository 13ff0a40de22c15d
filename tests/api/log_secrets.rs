//! Secrets in the log: through the real binary at the most talkative level (Rocket's own
//! lines included), a registration, its verification, a password reset and a refresh
//! leave their tokens and passwords in no line but the mail line, and with SMTP
//! configured not even there.

use crate::common;
use crate::smtp_sink::Sink;

use common::http;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;

const OLD_PASSWORD: &str = "first secret phrase";
const NEW_PASSWORD: &str = "second secret phrase";
const LOG: &str = "debug,sled=info,rocket=debug,hyper=info,h2=info";

/// The server, its log lines as they come, and the mail lines' links as they come.
struct Logged {
    child: Child,
    port: u16,
    lines: Arc<Mutex<Vec<String>>>,
    links: mpsc::Receiver<String>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl Logged {
    fn start(data: &Path, env: &[(&str, String)]) -> Logged {
        let port = common::free_port();
        let mut child = Command::new(common::binary())
            .args(["serve", "--data"])
            .arg(data)
            .args(["--port", &port.to_string()])
            .env("RUST_LOG", LOG)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shopbox");
        let stderr = child.stderr.take().unwrap();
        let lines = Arc::new(Mutex::new(Vec::new()));
        let (tx, links) = mpsc::channel();
        let kept = Arc::clone(&lines);
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(link) = line.split(" link=").nth(1) {
                    let _ = tx.send(link.trim().to_string());
                }
                kept.lock().unwrap().push(line);
            }
        });
        let mut server = Logged {
            child,
            port,
            lines,
            links,
            reader: Some(reader),
        };
        server.wait_ready();
        server
    }

    fn wait_ready(&mut self) {
        for _ in 0..600 {
            assert!(self.child.try_wait().unwrap().is_none(), "shopbox exited");
            if let Ok((200, _, _)) = http(self.port, "GET", "/health", &[], "") {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("shopbox did not become ready");
    }

    fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let (status, _, text) = http(
            self.port,
            "POST",
            path,
            &[("Content-Type", "application/json")],
            body,
        )
        .unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// Stops the server and answers every line it logged.
    fn stop(mut self) -> Vec<String> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // The reader ends at the pipe's end.
        if let Some(reader) = self.reader.take() {
            reader.join().unwrap();
        }
        let lines = self.lines.lock().unwrap().clone();
        lines
    }
}

impl Drop for Logged {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .expect("a token")
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric())
        .collect()
}

/// Registers, verifies with `verify_token`'s token, asks for a reset and resets with
/// `reset_token`'s, logs in and refreshes; answers every secret that went by.
fn account_flow(
    server: &Logged,
    email: &str,
    next_token: &mut dyn FnMut() -> String,
) -> Vec<String> {
    let (status, _) = server.post(
        "/api/account/register",
        &format!(r#"{{"email":"{email}","password":"{OLD_PASSWORD}"}}"#),
    );
    assert_eq!(status, 201);
    let verify = next_token();
    let (status, _, body) = http(
        server.port,
        "GET",
        &format!("/api/account/verify?token={verify}"),
        &[],
        "",
    )
    .unwrap();
    assert_eq!(status, 200, "{verify}: {body}");
    // Used: a 400, logged at debug with its query.
    let (status, _, _) = http(
        server.port,
        "GET",
        &format!("/api/account/verify-email?token={verify}"),
        &[],
        "",
    )
    .unwrap();
    assert_eq!(status, 400);

    let (status, _) = server.post(
        "/api/account/forgot-password",
        &format!(r#"{{"email":"{email}"}}"#),
    );
    assert_eq!(status, 202);
    let reset = next_token();
    // A password too short first (a 422), then the real reset.
    let (status, _) = server.post(
        "/api/account/reset-password",
        &format!(r#"{{"token":"{reset}","new_password":"short"}}"#),
    );
    assert_eq!(status, 422);
    let (status, body) = server.post(
        "/api/account/reset-password",
        &format!(r#"{{"token":"{reset}","new_password":"{NEW_PASSWORD}"}}"#),
    );
    assert_eq!(status, 200, "{body}");

    let (status, login) = server.post(
        "/api/account/login",
        &format!(r#"{{"email":"{email}","password":"{NEW_PASSWORD}"}}"#),
    );
    assert_eq!(status, 200, "{login}");
    let access = login["access_token"].as_str().unwrap().to_string();
    let refresh = login["refresh_token"].as_str().unwrap().to_string();
    let (status, _) = server.post(
        "/api/account/refresh",
        &format!(r#"{{"refresh_token":"{refresh}"}}"#),
    );
    assert_eq!(status, 200);
    // A refresh token sent in the query, where it does not belong, is redacted too.
    let (status, _, _) = http(
        server.port,
        "GET",
        &format!(
            "/api/nothing?refresh_token={refresh}&password={}",
            OLD_PASSWORD.replace(' ', "%20")
        ),
        &[],
        "",
    )
    .unwrap();
    assert_eq!(status, 404);
    vec![
        verify,
        reset,
        access,
        refresh,
        OLD_PASSWORD.replace(' ', "%20"),
        NEW_PASSWORD.to_string(),
    ]
}

#[test]
fn without_smtp_tokens_appear_only_in_the_mail_line() {
    for format in ["text", "json"] {
        let dir = tempfile::tempdir().unwrap();
        let env = [("SHOPBOX_LOG__FORMAT", format.to_string())];
        let server = Logged::start(dir.path(), &env);
        let links = &server.links;
        let mut next = || token_of(&links.recv_timeout(Duration::from_secs(30)).unwrap());
        let secrets = account_flow(&server, "nosmtp@example.com", &mut next);
        let lines = server.stop();
        let log = lines.join("\n");

        let mail_lines: Vec<&String> = lines.iter().filter(|l| l.contains(" link=")).collect();
        assert_eq!(mail_lines.len(), 2, "{format}: {log}");
        for (i, secret) in secrets.iter().enumerate() {
            for line in &lines {
                if line.contains(secret.as_str()) {
                    assert!(
                        i < 2 && line.contains("shopbox::mail::link") && line.contains(" link="),
                        "{format}: secret {i} in a line that is not the mail line: {line}"
                    );
                }
            }
        }
        assert!(
            log.contains("path=/api/account/verify?token=[redacted]")
                || log.contains(r#""path":"/api/account/verify?token=[redacted]""#),
            "{format}: {log}"
        );
        // Rocket's own lines were there, and redacted.
        assert!(
            log.contains("verify-email?token=[redacted]"),
            "{format}: {log}"
        );
        assert!(log.contains("rocket::"), "{format}: {log}");
        assert!(log.contains("refresh_token=[redacted]"), "{format}: {log}");
    }
}

#[test]
fn with_smtp_no_line_carries_a_token() {
    let sink = Sink::start();
    let dir = tempfile::tempdir().unwrap();
    let env = [
        ("SHOPBOX_SMTP__HOST", "127.0.0.1".to_string()),
        ("SHOPBOX_SMTP__PORT", sink.port.to_string()),
        ("SHOPBOX_SMTP__TLS", "none".to_string()),
    ];
    let server = Logged::start(dir.path(), &env);
    let mut seen = 0;
    let mut next = || {
        seen += 1;
        let got = sink.wait_for(seen, 30);
        assert_eq!(got.len(), seen, "mail {seen} did not arrive");
        let text = got[seen - 1].text();
        let start = text.find("token=").expect("a link") + "token=".len();
        text[start..]
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric())
            .collect()
    };
    let secrets = account_flow(&server, "smtp@example.com", &mut next);
    let lines = server.stop();
    let log = lines.join("\n");
    assert!(log.contains("mail to=smtp@example.com"), "{log}");
    assert!(!log.contains(" link="), "{log}");
    for (i, secret) in secrets.iter().enumerate() {
        assert!(
            !log.contains(secret.as_str()),
            "secret {i} in the log:\n{log}"
        );
    }
}
