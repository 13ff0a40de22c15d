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

/// The connections (and customers) of each scenario.
pub const CONNECTIONS: usize = 64;

/// The password of every account the benches make.
pub const PASSWORD: &str = "bench password 1";

/// The resident memory of process `pid`, in MB.
pub fn rss_mb(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// A free TCP port on loopback.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

/// What one scenario measured.
#[derive(Clone, Copy, Default)]
pub struct Measured {
    pub rate: f64,
    pub p50: f64,
    pub p99: f64,
    pub failures: usize,
}

/// Gathers the latencies and failures of the tasks of one scenario that ran `secs`.
async fn gather(
    tasks: Vec<tokio::task::JoinHandle<(Vec<Duration>, usize)>>,
    secs: f64,
) -> Measured {
    let mut all = Vec::new();
    let mut failures = 0;
    for t in tasks {
        let (l, f) = t.await.expect("a load task");
        all.extend(l);
        failures += f;
    }
    all.sort();
    Measured {
        rate: all.len() as f64 / secs,
        p50: percentile(&all, 0.5),
        p99: percentile(&all, 0.99),
        failures,
    }
}

/// A URL of a scenario, drawn with the connection's own random numbers.
pub type PathOf = std::sync::Arc<dyn Fn(&mut rand::rngs::StdRng) -> String + Send + Sync>;

/// `CONNECTIONS` connections, each asking for `path(rng)` in a loop for `secs`; a
/// failure is an answer other than 200.
pub async fn load(port: u16, secs: f64, path: PathOf) -> Measured {
    use rand::SeedableRng;
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut tasks = Vec::new();
    for c in 0..CONNECTIONS {
        let path = path.clone();
        tasks.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64 + 1);
            let mut conn = Conn::open(port).await;
            let mut latencies = Vec::new();
            let mut failures = 0;
            while Instant::now() < deadline {
                let p = path(&mut rng);
                let start = Instant::now();
                let (status, _) = conn.get(&p).await;
                latencies.push(start.elapsed());
                if status != 200 {
                    failures += 1;
                }
            }
            (latencies, failures)
        }));
    }
    gather(tasks, secs).await
}

/// Appends 4 KiB and fsyncs, as one writer, for `secs`: this disk's fsyncs per second.
pub fn fsyncs_per_second(dir: &std::path::Path, secs: f64) -> f64 {
    use std::io::Write;
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).expect("probe file");
    let block = [7u8; 4096];
    let start = Instant::now();
    let mut n = 0u64;
    while start.elapsed().as_secs_f64() < secs {
        file.write_all(&block).expect("write");
        file.sync_all().expect("fsync");
        n += 1;
    }
    let _ = std::fs::remove_file(&path);
    n as f64 / start.elapsed().as_secs_f64()
}

/// `GET /api/products/{id}` of random ids of the `n` products.
pub fn random_ids(n: u64) -> PathOf {
    use rand::Rng;
    std::sync::Arc::new(move |r| format!("/api/products/{}", r.gen_range(1..=n)))
}

/// The listing sorts, the default first.
pub const SORTS: [&str; 5] = ["newest", "price_asc", "price_desc", "title", "rating"];

/// A random page (of 20) of the `n` products in `sort`.
pub fn random_pages(n: u64, sort: &'static str) -> PathOf {
    use rand::Rng;
    let pages = n.div_ceil(20);
    std::sync::Arc::new(move |r| {
        format!(
            "/api/products?limit=20&sort={sort}&page={}",
            r.gen_range(1..=pages)
        )
    })
}

/// Words of the demo catalog by the share of products they match: a noun ~1%, an
/// adjective ~5%, a word of one description phrase ~23%.
const NOUNS: &[&str] = &[
    "teapot", "mug", "lamp", "notebook", "speaker", "kettle", "scarf", "wallet", "puzzle",
    "lantern", "journal", "basket", "sandals", "beanie", "satchel", "teacup", "saucer", "platter",
    "skillet", "whisk", "ladle", "apron", "trowel", "rake", "novel", "atlas", "kite", "robot",
    "candle", "tent",
];
const ADJECTIVES: &[&str] = &[
    "red", "blue", "green", "classic", "vintage", "compact", "deluxe", "handmade", "organic",
    "smart",
];
const PHRASES: &[&str] = &[
    "workshop",
    "regulars",
    "anywhere",
    "clean",
    "gift",
    "collection",
    "ships",
    "years",
];

/// The two-word searches, by how many products their words match: (name, first words,
/// second words).
pub const SEARCHES: [(&str, &[&str], &[&str]); 3] = [
    ("~1% word + ~5% word", NOUNS, ADJECTIVES),
    ("~5% word + ~20% word", ADJECTIVES, PHRASES),
    ("~20% word + ~20% word", PHRASES, PHRASES),
];

/// A search of a random word of `first` and one of `second`, random page 1 to 5; a limit
/// of 16 to 24 makes most URLs new to the response cache.
pub fn random_search(first: &'static [&'static str], second: &'static [&'static str]) -> PathOf {
    use rand::Rng;
    std::sync::Arc::new(move |r| {
        format!(
            "/api/products/search?q={}+{}&page={}&limit={}",
            first[r.gen_range(0..first.len())],
            second[r.gen_range(0..second.len())],
            r.gen_range(1..=5),
            r.gen_range(16..=24)
        )
    })
}

/// The hits of one search of the pair, for the report.
pub async fn search_total(conn: &mut Conn, first: &[&str], second: &[&str]) -> String {
    let (_, body) = conn
        .get(&format!(
            "/api/products/search?q={}+{}&limit=1",
            first[0], second[1]
        ))
        .await;
    field(&body, "total")
}

fn login_body(email: &str) -> String {
    format!(r#"{{"email":"{email}","password":"{PASSWORD}"}}"#)
}

/// How many products the spread checkouts choose from.
pub const BEST_SELLERS: usize = 64;

/// What checkouts need: `BEST_SELLERS` products with ample stock (made by `admin_email`,
/// whose password is `PASSWORD`) and `CONNECTIONS` customers, each logged in with an
/// address.
pub struct Buyers {
    /// The products' ids; the first is the one every customer buys when not spread.
    pub products: Vec<String>,
    /// (access token, address id) of each customer.
    pub customers: Vec<(String, String)>,
}

impl Buyers {
    pub async fn make(conn: &mut Conn, admin_email: &str) -> Buyers {
        let (_, body) = conn
            .call_with(
                "POST",
                "/api/account/login",
                None,
                "",
                &login_body(admin_email),
            )
            .await;
        let admin = field(&body, "access_token");
        let mut products = Vec::new();
        for i in 0..BEST_SELLERS {
            let (_, body) = conn
                .call_with(
                    "POST",
                    "/api/products",
                    Some(&admin),
                    "",
                    &format!(
                        r#"{{"title":"Bench Lamp {i}","price":9.99,"stock_quantity":1000000000}}"#
                    ),
                )
                .await;
            products.push(field(&body, "id"));
        }
        let mut customers = Vec::new();
        for i in 0..CONNECTIONS {
            let email = format!("c{i}@bench.test");
            conn.call_with(
                "POST",
                "/api/account/register",
                None,
                "",
                &login_body(&email),
            )
            .await;
            let (_, body) = conn
                .call_with("POST", "/api/account/login", None, "", &login_body(&email))
                .await;
            let token = field(&body, "access_token");
            let (_, body) = conn
                .call_with(
                    "POST",
                    "/api/shippings/addresses",
                    Some(&token),
                    "",
                    r#"{"address_line1":"1 Way","city":"C","state":"S","postal_code":"1","country":"US"}"#,
                )
                .await;
            customers.push((token, field(&body, "id")));
        }
        Buyers {
            products,
            customers,
        }
    }

    /// Every customer adds a product to the cart and checks out (with an
    /// `Idempotency-Key` unique to `run`), in a loop for `secs`; customer `c` talks to
    /// `ports[c % ports.len()]`. The product is the first one, which every customer buys
    /// (the worst case: every order takes the stock of one product), or with `spread` one
    /// drawn at random from the `BEST_SELLERS` for each order. With a `rate`, the
    /// customers together order at that pace (each every `CONNECTIONS / rate` s,
    /// staggered); without, as fast as answered. The latencies are the checkouts'; a
    /// failure is a checkout answer other than 201.
    pub async fn checkouts(
        &self,
        ports: &[u16],
        run: &str,
        rate: Option<f64>,
        secs: f64,
        spread: bool,
    ) -> Measured {
        use rand::{Rng, SeedableRng};
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let mut tasks = Vec::new();
        for (c, (token, address)) in self.customers.iter().cloned().enumerate() {
            let port = ports[c % ports.len()];
            let products = if spread {
                self.products.clone()
            } else {
                self.products[..1].to_vec()
            };
            let checkout = format!(r#"{{"shipping_address_id":{address}}}"#);
            let run = run.to_string();
            tasks.push(tokio::spawn(async move {
                let mut conn = Conn::open(port).await;
                let mut latencies = Vec::new();
                let mut failures = 0;
                let mut n = 0u64;
                let mut rng = rand::rngs::StdRng::seed_from_u64(c as u64 + 1);
                let every = rate.map(|r| Duration::from_secs_f64(CONNECTIONS as f64 / r));
                let begin = Instant::now()
                    + every
                        .map(|e| e.mul_f64(c as f64 / CONNECTIONS as f64))
                        .unwrap_or_default();
                while Instant::now() < deadline {
                    if let Some(every) = every {
                        let at = begin + every * n as u32;
                        if at > deadline {
                            break;
                        }
                        tokio::time::sleep_until(at.into()).await;
                    }
                    n += 1;
                    let product = &products[rng.gen_range(0..products.len())];
                    let add = format!(r#"{{"product_id":{product},"quantity":1}}"#);
                    conn.call_with("POST", "/api/carts/add", Some(&token), "", &add)
                        .await;
                    let key = format!("Idempotency-Key: b{c}-{n}-{run}\r\n");
                    let start = Instant::now();
                    let (status, _) = conn
                        .call_with(
                            "POST",
                            "/api/orders/checkout",
                            Some(&token),
                            &key,
                            &checkout,
                        )
                        .await;
                    latencies.push(start.elapsed());
                    if status != 201 {
                        failures += 1;
                    }
                }
                (latencies, failures)
            }));
        }
        gather(tasks, secs).await
    }
}

/// A `shopbox serve` on its own port, stopped when dropped.
pub struct Server {
    child: std::process::Child,
    pub port: u16,
}

impl Server {
    /// Serves the data folder `data` with rate limits off and only errors logged, plus
    /// the environment `env`.
    pub fn start(data: &std::path::Path, env: &[(&str, &str)]) -> Server {
        let port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_shopbox"))
            .args(["serve", "--port", &port.to_string(), "--data"])
            .arg(data)
            .env("SHOPBOX_RATE_LIMIT__ENABLED", "false")
            .env("RUST_LOG", "error")
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("serve");
        Server { child, port }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A connection once `/health` answers 200.
    pub async fn ready(&self) -> Conn {
        let mut conn = Conn::when_listening(self.port).await;
        while conn.get("/health").await.0 != 200 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        conn
    }

    pub fn rss_mb(&self) -> f64 {
        rss_mb(self.pid())
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `shopbox ARGS` to its end; panics with its error output if it fails.
pub fn shopbox(args: &[&str]) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_shopbox"))
        .args(args)
        .output()
        .expect("run shopbox");
    assert!(
        out.status.success(),
        "shopbox {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A fresh data folder (in the returned temporary directory, under `data`) seeded with
/// `products` demo products and an admin (`admin@bench.test`, `PASSWORD`); prints how long
/// the seeding took.
pub fn seeded_shop(products: u64) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let data = dir.path().join("data");
    let data_arg = data.to_string_lossy().to_string();
    let started = Instant::now();
    shopbox(&[
        "seed",
        "--demo",
        "--products",
        &products.to_string(),
        "--data",
        &data_arg,
    ]);
    println!(
        "seeded {products} demo products in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    shopbox(&[
        "admin",
        "create",
        "--email",
        "admin@bench.test",
        "--password",
        PASSWORD,
        "--data",
        &data_arg,
    ]);
    (dir, data)
}
