//! A small SMTP server for the tests: it speaks enough SMTP for a client (EHLO, MAIL
//! FROM, RCPT TO, DATA, RSET, NOOP, QUIT) and keeps every message it accepted.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct Received {
    pub from: String,
    pub to: Vec<String>,
    /// The message as sent, headers and body, dot-stuffing undone.
    pub data: String,
}

impl Received {
    /// The body with quoted-printable soft breaks and escapes undone.
    pub fn text(&self) -> String {
        let joined = self.data.replace("=\r\n", "");
        let bytes = joined.as_bytes();
        let mut out = Vec::new();
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'=', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (c, _) => {
                    out.push(c);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).to_string()
    }
}

/// What the sink answers to the end of DATA: `None` accepts, `Some(line)` answers it.
pub struct Sink {
    pub port: u16,
    received: Arc<Mutex<Vec<Received>>>,
    stop: Arc<AtomicBool>,
    /// RCPT TO commands seen so far: one per delivery attempt of a one-recipient mail.
    pub recipients: Arc<AtomicUsize>,
}

impl Sink {
    pub fn start() -> Sink {
        Self::start_on(0, None)
    }

    /// A sink on `port` (0: any free port) answering `refuse` (e.g. `"550 5.1.1 no such
    /// user"`) to every RCPT TO when given.
    pub fn start_on(port: u16, refuse: Option<&'static str>) -> Sink {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("bind the SMTP sink");
        let port = listener.local_addr().unwrap().port();
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let recipients = Arc::new(AtomicUsize::new(0));
        let (r, s, c) = (
            Arc::clone(&received),
            Arc::clone(&stop),
            Arc::clone(&recipients),
        );
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    return;
                }
                let Ok(stream) = stream else { continue };
                let (r, c) = (Arc::clone(&r), Arc::clone(&c));
                std::thread::spawn(move || {
                    let _ = converse(stream, &r, &c, refuse);
                });
            }
        });
        Sink {
            port,
            received,
            stop,
            recipients,
        }
    }

    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits (at most `secs` seconds) until `n` messages arrived; answers them.
    pub fn wait_for(&self, n: usize, secs: u64) -> Vec<Received> {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.received();
            if got.len() >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Waits (at most `secs` seconds) until `n` RCPT TO commands came.
    pub fn wait_for_recipients(&self, n: usize, secs: u64) -> usize {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let got = self.recipients.load(Ordering::SeqCst);
            if got >= n || Instant::now() > deadline {
                return got;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so that it sees `stop` and lets the port go.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn converse(
    stream: TcpStream,
    received: &Mutex<Vec<Received>>,
    recipients: &AtomicUsize,
    refuse: Option<&str>,
) -> std::io::Result<()> {
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut out = stream;
    out.write_all(b"220 sink ESMTP ready\r\n")?;
    let (mut from, mut to) = (String::new(), Vec::new());
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let upper = line.to_ascii_uppercase();
        let reply: String = if upper.starts_with("EHLO") {
            "250-sink\r\n250-8BITMIME\r\n250 SMTPUTF8".into()
        } else if upper.starts_with("HELO") {
            "250 sink".into()
        } else if upper.starts_with("MAIL FROM:") {
            from = line[10..].trim().to_string();
            to.clear();
            "250 2.1.0 Ok".into()
        } else if upper.starts_with("RCPT TO:") {
            recipients.fetch_add(1, Ordering::SeqCst);
            match refuse {
                Some(answer) => answer.into(),
                None => {
                    to.push(line[8..].trim().to_string());
                    "250 2.1.5 Ok".into()
                }
            }
        } else if upper.starts_with("DATA") {
            out.write_all(b"354 End data with <CR><LF>.<CR><LF>\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                if reader.read_line(&mut l)? == 0 {
                    return Ok(());
                }
                if l == ".\r\n" {
                    break;
                }
                data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let mut all = received.lock().unwrap();
            all.push(Received {
                from: from.clone(),
                to: to.clone(),
                data,
            });
            format!("250 2.0.0 Ok: queued as {}", all.len())
        } else if upper.starts_with("RSET") || upper.starts_with("NOOP") {
            "250 2.0.0 Ok".into()
        } else if upper.starts_with("QUIT") {
            out.write_all(b"221 2.0.0 Bye\r\n")?;
            return Ok(());
        } else {
            "502 5.5.2 Command not recognised".into()
        };
        out.write_all(format!("{reply}\r\n").as_bytes())?;
    }
}
