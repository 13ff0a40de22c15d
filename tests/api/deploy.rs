//! The deployment files in contrib/: the systemd unit passes `systemd-analyze`, and the
//! nginx example, run by Debian's nginx on loopback in front of the real binary, serves
//! HTTPS with the client's address reaching the rate limiter.

use crate::common;

use common::{Server, PASSWORD};
use serde_json::Value;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn contrib(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib")
        .join(name)
}

/// `program` as found on PATH or in /usr/sbin (nginx's home, off a user's PATH).
fn find(program: &str) -> Option<PathBuf> {
    let path = std::env::var("PATH").unwrap_or_default();
    let found = path
        .split(':')
        .chain(["/usr/sbin"])
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file());
    found
}

fn run(program: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

/// `text` with `from` replaced, which must occur: a changed example fails here, not later.
fn replaced(text: &str, from: &str, to: &str) -> String {
    assert!(
        text.contains(from),
        "contrib file no longer contains `{from}`"
    );
    text.replace(from, to)
}

#[test]
fn the_systemd_unit_verifies_and_is_hardened() {
    if find("systemd-analyze").is_none() {
        eprintln!("systemd-analyze is not installed: contrib/shopbox.service not checked");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let unit = dir.path().join("shopbox.service");
    // `verify` checks that ExecStart's program exists, so point it at the one just built.
    let text = std::fs::read_to_string(contrib("shopbox.service")).unwrap();
    let text = replaced(
        &text,
        "ExecStart=/usr/local/bin/shopbox ",
        &format!("ExecStart={} ", common::binary().display()),
    );
    std::fs::write(&unit, text).unwrap();
    let unit = unit.to_str().unwrap();

    // It prints (and still exits 0) for unknown keys and bad values: any output fails.
    let (ok, out) = run("systemd-analyze", &["verify", unit]);
    assert!(ok && out.trim().is_empty(), "{out}");

    let (ok, out) = run("systemd-analyze", &["security", "--offline=true", unit]);
    assert!(ok, "{out}");
    // Left open on purpose: a web server needs the network, sockets and the host's root.
    let accepted = [
        "RootDirectory=/RootImage=",
        "RestrictAddressFamilies=~AF_UNIX",
        "RestrictAddressFamilies=~AF_(INET|INET6)",
        "PrivateNetwork=",
        "IPAddressDeny=",
        "DeviceAllow=",
        // setpriority alone, allowed back for the password-hashing threads.
        "SystemCallFilter=~@resources",
    ];
    let open: Vec<&str> = out
        .lines()
        .filter_map(|l| l.strip_prefix("✗ "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|name| !accepted.contains(name))
        .collect();
    assert!(open.is_empty(), "not hardened: {open:?}\n{out}");
    assert!(
        out.contains("Overall exposure level for shopbox.service: 1."),
        "{out}"
    );
}

/// nginx in the foreground, stopped when dropped.
struct Nginx(Child);

impl Drop for Nginx {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
    len: usize,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|_| panic!("not JSON: {}", self.body))
    }
}

/// The shop as a browser on `source` (a loopback address of its own) reaches it through
/// nginx: `https://shop.example.com:{port}` resolved to 127.0.0.1, the test certificate
/// accepted.
struct Client<'a> {
    source: &'a str,
    port: u16,
    scheme: &'a str,
    scratch: &'a Path,
}

impl Client<'_> {
    fn request(&self, path: &str, args: &[&str]) -> Reply {
        let body_file = self.scratch.join(format!("body-{}", self.source));
        let port = self.port.to_string();
        let out = Command::new("curl")
            .args(["-sS", "-k", "--interface", self.source, "--resolve"])
            .arg(format!("shop.example.com:{port}:127.0.0.1"))
            .args(["-H", "Expect:", "-D", "-", "-o"])
            .arg(&body_file)
            .args(args)
            .arg(format!("{}://shop.example.com:{port}{path}", self.scheme))
            .output()
            .expect("run curl");
        let head = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            out.status.success(),
            "curl {path}: {head}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let last = head
            .rsplit("\r\n\r\n")
            .find(|b| b.starts_with("HTTP/"))
            .unwrap_or("");
        let (status, headers) = common::parse_head(last);
        let bytes = std::fs::read(&body_file).unwrap_or_default();
        let body = String::from_utf8_lossy(&bytes).to_string();
        Reply {
            status,
            headers,
            body,
            len: bytes.len(),
        }
    }

    fn login(&self, extra: &[&str]) -> Reply {
        let body = format!(r#"{{"email":"admin@example.com","password":"{PASSWORD}"}}"#);
        let mut args = vec!["-H", "Content-Type: application/json", "--data-raw", &body];
        args.extend_from_slice(extra);
        self.request("/api/account/login", &args)
    }
}

fn wait_for_port(port: u16, nginx: &mut Nginx, log: &Path) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if let Ok(Some(status)) = nginx.0.try_wait() {
            panic!(
                "nginx exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "nginx did not listen on {port}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The shopbox settings the example names in its comment block (`#   key = value`).
fn settings_from_example(example: &str) -> String {
    let settings: Vec<&str> = example
        .lines()
        .filter_map(|l| l.strip_prefix("#   "))
        .filter(|l| l.contains(" = "))
        .collect();
    assert!(
        settings.iter().any(|s| s.starts_with("public_url = ")),
        "{settings:?}"
    );
    assert!(
        settings.iter().any(|s| s.starts_with("trusted_proxies = ")),
        "{settings:?}"
    );
    settings.join("\n")
}

#[test]
fn nginx_in_front_serves_https_and_passes_the_client_address() {
    for program in ["nginx", "curl", "openssl"] {
        assert!(
            find(program).is_some(),
            "{program} is not installed: run scripts/test.sh, which installs it"
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let tmp = dir.path();
    let data = tmp.join("data");
    let example = std::fs::read_to_string(contrib("nginx.conf")).unwrap();

    let config = tmp.join("config.toml");
    let max_bytes = 5 * 1024 * 1024;
    std::fs::write(
        &config,
        format!(
            "{}\n[uploads]\nmax_bytes = {max_bytes}\n[rate_limit]\nlogin_per_minute = 2\n",
            settings_from_example(&example)
        ),
    )
    .unwrap();
    let created = Command::new(common::binary())
        .args([
            "admin",
            "create",
            "--email",
            "admin@example.com",
            "--password",
            PASSWORD,
            "--data",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(created.status.success(), "{created:?}");
    let mut shop = Server::start(&data, &["--config", config.to_str().unwrap()]);
    shop.wait_ready();

    let (ok, out) = run(
        "openssl",
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=shop.example.com",
            "-keyout",
            tmp.join("key.pem").to_str().unwrap(),
            "-out",
            tmp.join("cert.pem").to_str().unwrap(),
        ],
    );
    assert!(ok, "{out}");

    let http_port = common::free_port();
    let https_port = common::free_port();
    let mut site = replaced(
        &example,
        "server 127.0.0.1:8000;",
        &format!("server 127.0.0.1:{};", shop.port),
    );
    site = replaced(
        &site,
        "listen 80;",
        &format!("listen 127.0.0.1:{http_port};"),
    );
    site = replaced(
        &site,
        "listen 443 ssl http2;",
        &format!("listen 127.0.0.1:{https_port} ssl http2;"),
    );
    site = replaced(&site, "listen [::]:80;", "");
    site = replaced(&site, "listen [::]:443 ssl http2;", "");
    let live = "/etc/letsencrypt/live/shop.example.com";
    site = replaced(
        &site,
        &format!("{live}/fullchain.pem"),
        tmp.join("cert.pem").to_str().unwrap(),
    );
    site = replaced(
        &site,
        &format!("{live}/privkey.pem"),
        tmp.join("key.pem").to_str().unwrap(),
    );
    // One process as the test's own user, everything it writes under the temporary folder.
    let t = tmp.display();
    let main = format!(
        "daemon off;\nmaster_process off;\npid {t}/nginx.pid;\nerror_log {t}/error.log;\n\
         events {{}}\nhttp {{\naccess_log {t}/access.log;\nclient_body_temp_path {t}/body;\n\
         proxy_temp_path {t}/proxy;\nfastcgi_temp_path {t}/fastcgi;\nuwsgi_temp_path {t}/uwsgi;\n\
         scgi_temp_path {t}/scgi;\n{site}\n}}\n"
    );
    let conf = tmp.join("nginx.conf");
    std::fs::write(&conf, main).unwrap();
    let mut nginx = Nginx(
        Command::new(find("nginx").unwrap())
            .arg("-p")
            .arg(tmp)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nginx"),
    );
    wait_for_port(https_port, &mut nginx, &tmp.join("error.log"));
    wait_for_port(http_port, &mut nginx, &tmp.join("error.log"));

    let via = |source, scheme, port| Client {
        source,
        port,
        scheme,
        scratch: tmp,
    };
    let alice = via("127.0.0.2", "https", https_port);
    let bob = via("127.0.0.3", "https", https_port);

    let health = alice.request("/health", &[]);
    assert_eq!(health.status, 200);
    assert!(
        health
            .body
            .starts_with(r#"{"status":"ok","database":"ok","#),
        "{}",
        health.body
    );
    assert!(
        health.header("strict-transport-security").is_some(),
        "{:?}",
        health.headers
    );
    let plain = via("127.0.0.2", "http", http_port).request("/health", &[]);
    assert_eq!(plain.status, 301);
    assert_eq!(
        plain.header("location"),
        Some("https://shop.example.com/health")
    );

    // Login sets both cookies, Secure since public_url is https.
    let first = alice.login(&[]);
    assert_eq!(first.status, 200, "{}", first.body);
    for name in ["access_token", "refresh_token"] {
        let cookie = first
            .headers
            .iter()
            .find(|(k, v)| k == "set-cookie" && v.starts_with(&format!("{name}=")))
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("no {name} cookie in {:?}", first.headers));
        assert!(
            cookie.contains("HttpOnly") && cookie.contains("Secure"),
            "{cookie}"
        );
    }

    // The budget (2 a minute) is per client address as nginx saw it: a forged
    // X-Forwarded-For does not buy a new one, another client has its own.
    assert_eq!(alice.login(&[]).status, 200);
    let limited = alice.login(&["-H", "X-Forwarded-For: 203.0.113.9"]);
    assert_eq!(limited.status, 429, "{}", limited.body);
    assert!(limited.header("retry-after").is_some());
    let admin = bob.login(&[]);
    assert_eq!(admin.status, 200, "{}", admin.body);
    let token = admin.json()["access_token"].as_str().unwrap().to_string();
    let auth = format!("Authorization: Bearer {token}");

    let product = bob.request(
        "/api/products",
        &[
            "-H", &auth, "-H", "Content-Type: application/json", "--data-raw",
            r#"{"title":"Poster","description":"Big","price":9.5,"stock_quantity":3,"category_ids":[]}"#,
        ],
    );
    assert_eq!(product.status, 201, "{}", product.body);
    let id = product.json()["id"].as_u64().unwrap();

    // An image just under uploads.max_bytes passes nginx's client_max_body_size; one
    // byte over is shopbox's own 413, not nginx's.
    let image = |len: usize| {
        let mut png = shopbox::product::images::demo_png(1, 16);
        png.resize(len, 0);
        let path = tmp.join(format!("image-{len}.png"));
        std::fs::write(&path, png).unwrap();
        format!("file=@{};type=image/png", path.display())
    };
    let upload = |len| {
        bob.request(
            &format!("/api/products/{id}/image"),
            &["-H", &auth, "-F", &image(len)],
        )
    };
    let near = upload(max_bytes - 16);
    assert_eq!(near.status, 200, "{}", near.body);
    let url = near.json()["image_url"].as_str().unwrap().to_string();
    let served = bob.request(&url, &[]);
    assert_eq!(served.status, 200);
    assert_eq!(served.len, max_bytes - 16);
    let over = upload(max_bytes + 1);
    assert_eq!(over.status, 413, "{}", over.body);
    assert!(over.json()["detail"].is_string(), "{}", over.body);
}
