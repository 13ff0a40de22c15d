//! Backup of a big shop while writers keep writing: 100,000 products (each with an image
//! file) and 100,000 orders, written straight into a fresh data folder; then 16 writers
//! loop small durable writes (a transaction and a shared flush each, as a request's) for a
//! baseline, and again while `backup::backup` runs, plain tar and gzip. Reports how long
//! the backup took, how long writes were held back, how many waited and the longest wait,
//! and the writes per second and slowest write with and without it.
//! Run: `cargo bench --bench backup [-- PRODUCTS ORDERS]`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shopbox::commands::Silent;
use shopbox::db::Db;

#[path = "bigshop.rs"]
mod bigshop;

const WRITERS: u64 = 16;

/// Runs the writers until `until` completes; answers `(writes, slowest write)`.
async fn writers<F: std::future::Future>(db: &Db, until: F) -> (u64, Duration) {
    let stop = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let slowest = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for w in 0..WRITERS {
        let (db, stop, count, slowest) = (
            db.clone(),
            Arc::clone(&stop),
            Arc::clone(&count),
            Arc::clone(&slowest),
        );
        tasks.push(tokio::spawn(async move {
            let key = format!("bench-writer-{w}");
            let mut n = 0u64;
            while !stop.load(Ordering::Relaxed) {
                n += 1;
                let start = Instant::now();
                db.write(|tx| tx.raw_insert("meta", key.as_bytes(), &n.to_be_bytes()))
                    .await
                    .expect("write");
                slowest.fetch_max(start.elapsed().as_micros() as u64, Ordering::Relaxed);
                count.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    until.await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.expect("writer");
    }
    (
        count.load(Ordering::Relaxed),
        Duration::from_micros(slowest.load(Ordering::Relaxed)),
    )
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let products = args.first().copied().unwrap_or(100_000);
    let orders = args.get(1).copied().unwrap_or(100_000);
    let work = tempfile::tempdir().expect("temp dir");
    let data_dir = work.path().join("data");
    let started = Instant::now();
    let mut data = bigshop::shop(products, orders);
    let config = shopbox::config::Config {
        data_dir: data_dir.clone(),
        ..Default::default()
    };
    let db = shopbox::open_data(&config).expect("open");
    let media = data_dir.join("media");
    for p in data.products.iter_mut() {
        let name = format!("{:032x}.png", p.id);
        std::fs::write(
            media.join(&name),
            shopbox::product::images::demo_png(p.id, 32),
        )
        .expect("image");
        p.image = Some(name);
    }
    data.check().expect("a valid generated shop");
    data.write_new(&db, &|_| {}).expect("write");
    println!(
        "generated {products} products with images and {orders} orders: {} rows in {:.1} s",
        data.total_rows(),
        started.elapsed().as_secs_f64()
    );
    drop(data);

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let secs = 3.0;
        let (n, slowest) = writers(&db, tokio::time::sleep(Duration::from_secs_f64(secs))).await;
        println!(
            "baseline: {WRITERS} writers, {:.0} writes/s, slowest write {:.1} ms",
            n as f64 / secs,
            slowest.as_secs_f64() * 1e3
        );
        for name in ["shop.tar", "shop.tar.gz"] {
            let file = work.path().join(name);
            let (db2, dir) = (db.clone(), data_dir.clone());
            let start = Instant::now();
            let backup = tokio::task::spawn_blocking(move || {
                shopbox::backup::backup(&db2, &dir, &file, &Silent)
            });
            let (n, slowest) = writers(&db, async {
                let report = backup.await.expect("join").expect("backup");
                println!("{report}");
            })
            .await;
            let took = start.elapsed().as_secs_f64();
            println!(
                "  during it: {:.0} writes/s, slowest write {:.1} ms",
                n as f64 / took,
                slowest.as_secs_f64() * 1e3
            );
        }
    });
}
