//! Backups: the server's scheduled backups taken while customers check out restore into
//! a shop that holds every order acknowledged before the backup, consistent to one
//! instant; the CLI's backup and restore round-trip a shop with its images and secret,
//! refuse a folder that is not empty, and detect a damaged archive.

use crate::common;
use crate::load::{self, Load};

use common::Server;
use shopbox::db::KeyOrder;
use shopbox::order::model::{Order, OrderStatus};
use shopbox::product::model::Product;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

const STOCK: i64 = 1_000_000;

fn shopbox(args: &[&str], data: &Path) -> (bool, String, String) {
    let out = Command::new(common::binary())
        .args(args)
        .arg("--data")
        .arg(data)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn backups(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    files.retain(|p| p.to_string_lossy().ends_with("Z.tar.gz"));
    files.sort();
    files
}

/// The manifest's `taken_at` of a backup.
fn taken_at(file: &Path) -> SystemTime {
    let reader = flate2::read::GzDecoder::new(std::fs::File::open(file).unwrap());
    let mut archive = tar::Archive::new(reader);
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        if entry.path().unwrap().to_string_lossy() == "manifest.json" {
            let manifest: serde_json::Value = serde_json::from_reader(entry).unwrap();
            let text = manifest["taken_at"].as_str().unwrap();
            let at =
                time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
                    .unwrap();
            return SystemTime::UNIX_EPOCH + Duration::from_nanos(at.unix_timestamp_nanos() as u64);
        }
    }
    panic!("no manifest in {}", file.display());
}

#[test]
fn a_scheduled_backup_under_checkout_load_restores_every_acknowledged_order() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let kept = dir.path().join("backups");
    load::create_admin(&data);
    let env = [
        // About every 1.1 s.
        ("SHOPBOX_BACKUP__INTERVAL_HOURS", "0.0003".to_string()),
        ("SHOPBOX_BACKUP__DIR", kept.to_string_lossy().to_string()),
        ("SHOPBOX_BACKUP__KEEP", "2".to_string()),
    ];
    let mut server = Server::start_with_env(&data, &[], "warn,shopbox::server=info", &env);
    server.wait_ready();
    let shop = load::stock(server.port, 3, STOCK, 8);
    let running = Load::start(server.port, &shop);

    // A backup taken after some orders were acknowledged, while more are.
    let deadline = Instant::now() + Duration::from_secs(60);
    let (first, original) = 'found: loop {
        assert!(Instant::now() < deadline, "no backup was taken under load");
        let first_ack = running
            .acknowledged
            .lock()
            .unwrap()
            .first()
            .map(|(_, at)| *at);
        if let Some(first_ack) = first_ack {
            for file in backups(&kept) {
                let copy = dir.path().join("under-load.tar.gz");
                if std::fs::copy(&file, &copy).is_ok() && taken_at(&copy) > first_ack {
                    break 'found (copy, file);
                }
            }
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // Two more backups, and the first is deleted (keep = 2).
    let deadline = Instant::now() + Duration::from_secs(60);
    while backups(&kept).contains(&original) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    server.kill();
    let (acknowledged, answers) = running.finish();
    let mut log = String::new();
    std::io::Read::read_to_string(&mut server.child.stderr.take().unwrap(), &mut log).unwrap();
    assert!(
        !backups(&kept).contains(&original),
        "the oldest backup was not deleted: {log}"
    );
    // The backup that deleted the oldest may be killed before it logs.
    let taken = log.lines().filter(|l| l.contains("backed up ")).count();
    assert!(taken >= 2, "{log}");
    assert_eq!(backups(&kept).len(), 2, "keep = 2: {:?}", backups(&kept));
    assert!(answers.iter().all(|(_, status)| *status == 201));

    let restored = dir.path().join("restored");
    let (ok, out, err) = shopbox(&["restore", first.to_str().unwrap()], &restored);
    assert!(ok, "{err}");
    assert!(out.contains("checksum verified"), "{out}");
    assert!(
        out.contains("check: every index matches its records"),
        "{out}"
    );

    let before = taken_at(&first);
    let config = common::test_config(&restored);
    let db = shopbox::open_data(&config).unwrap();
    let orders: Vec<Order> = db.scan(KeyOrder::Ascending).unwrap();
    let present: HashMap<u64, &Order> = orders.iter().map(|o| (o.id, o)).collect();
    let mut expected = 0;
    for (id, at) in &acknowledged {
        if *at < before {
            expected += 1;
            let order = present.get(id).unwrap_or_else(|| {
                panic!("order {id} was acknowledged before the backup but is not in it")
            });
            assert_eq!(order.status, OrderStatus::Confirmed);
        }
    }
    assert!(expected > 0, "no order was acknowledged before the backup");
    // One instant: for every product, the stock left plus what confirmed orders took is
    // the stock it started with.
    let mut taken_by_orders: HashMap<u64, i64> = HashMap::new();
    for order in orders.iter().filter(|o| o.status == OrderStatus::Confirmed) {
        for item in &order.items {
            *taken_by_orders.entry(item.product_id).or_default() += item.quantity;
        }
    }
    let products: Vec<Product> = db.scan(KeyOrder::Ascending).unwrap();
    for p in &products {
        assert_eq!(
            p.stock_quantity + taken_by_orders.get(&p.id).copied().unwrap_or(0),
            STOCK,
            "product {}",
            p.id
        );
    }
    eprintln!(
        "{expected} orders acknowledged before the backup, all restored ({} in the backup); {}",
        orders.len(),
        log.lines()
            .find(|l| l.contains("backed up "))
            .unwrap_or_default()
    );
}

#[test]
fn backup_and_restore_round_trip_a_shop_with_images() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (ok, _, err) = shopbox(&["seed", "--demo", "--products", "20"], &data);
    assert!(ok, "{err}");
    // A server run generates the JWT secret; a login there must work after a restore.
    let mut server = Server::start(&data, &[]);
    server.wait_ready();
    let (status, body) = load::call(
        server.port,
        "POST",
        "/api/account/login",
        None,
        Some(serde_json::json!({"email": "customer@example.com", "password": "customer password"})),
    )
    .unwrap();
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    // The running server takes the backup for the CLI; a file it cannot write is named.
    let (ok, _, err) = shopbox(&["backup", "/dev/null/x.tar"], &data);
    assert!(!ok);
    assert!(err.contains("/dev/null/x.tar"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
    server.kill();

    let file = dir.path().join("shop.tar");
    let (ok, out, err) = shopbox(&["backup", file.to_str().unwrap()], &data);
    assert!(ok, "{err}");
    assert!(out.contains("20 media files"), "{out}");
    let (ok, _, err) = shopbox(&["backup", file.to_str().unwrap()], &data);
    assert!(!ok, "an existing file was overwritten");
    assert!(err.contains("exists already"), "{err}");
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (ok, _, err) = shopbox(&["restore", file.to_str().unwrap()], &data);
    assert!(!ok);
    assert!(err.contains("is not empty"), "{err}");

    let restored = dir.path().join("restored");
    let (ok, out, err) = shopbox(&["restore", file.to_str().unwrap()], &restored);
    assert!(ok, "{err}");
    assert!(out.contains("20 media files"), "{out}");
    assert_eq!(
        std::fs::read(data.join("jwt_secret")).unwrap(),
        std::fs::read(restored.join("jwt_secret")).unwrap()
    );
    let mut server = Server::start(&restored, &[]);
    server.wait_ready();
    let (status, me) =
        load::call(server.port, "GET", "/api/account/me", Some(&token), None).unwrap();
    assert_eq!(status, 200, "a login from before the backup: {me}");
    let (_, list) = load::call(server.port, "GET", "/api/products?limit=1", None, None).unwrap();
    let image = list["items"][0]["image_url"].as_str().unwrap().to_string();
    let (status, _, _) = common::http(server.port, "GET", &image, &[], "").unwrap();
    assert_eq!(status, 200, "{image}");
    server.kill();

    // One byte changed inside a member: the checksum catches it and nothing is left.
    let mut bytes = std::fs::read(&file).unwrap();
    // Inside the compressed pixels of an image, after its header.
    let at = bytes.windows(4).position(|w| w == b"IDAT").unwrap() + 8;
    bytes[at] ^= 0xff;
    let damaged = dir.path().join("damaged.tar");
    std::fs::write(&damaged, &bytes).unwrap();
    let target = dir.path().join("from-damaged");
    let (ok, _, err) = shopbox(&["restore", damaged.to_str().unwrap()], &target);
    assert!(!ok);
    assert!(err.contains("checksum does not match"), "{err}");
    assert!(!target.exists());
}
