//! PostgreSQL export and import throughput: a shop of 100,000 products and 100,000 orders
//! with their items (written straight into a fresh data folder), then the release binary's
//! `export-pg` into a new database and `import-pg` back into a new folder.
//! Run: `cargo bench --bench pg [-- PRODUCTS ORDERS]`; PostgreSQL from
//! `SHOPBOX_TEST_PG_URL` (default: the local server's `test` database). `EXPORTS=N` runs
//! the export N times (with `--drop-existing`), to see it with warm caches too.

use std::process::Command;
use std::time::Instant;

#[path = "bigshop.rs"]
mod bigshop;
use bigshop::shop;

fn run(args: &[&str]) -> String {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_shopbox"))
        .args(args)
        .output()
        .expect("run shopbox");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    println!(
        "$ shopbox {}  ({:.2} s wall)\n{text}\n",
        args.join(" "),
        started.elapsed().as_secs_f64()
    );
    text
}

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let products = args.first().copied().unwrap_or(100_000);
    let orders = args.get(1).copied().unwrap_or(100_000);
    let base = std::env::var("SHOPBOX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let server = base
        .rsplit_once('/')
        .map(|(s, _)| s.to_string())
        .unwrap_or(base.clone());
    let url = format!("{server}/shopbox_bench");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let (client, conn) = tokio_postgres::connect(&base, tokio_postgres::NoTls)
            .await
            .expect("connect to PostgreSQL");
        tokio::spawn(conn);
        client
            .batch_execute("DROP DATABASE IF EXISTS shopbox_bench WITH (FORCE)")
            .await
            .expect("drop");
        client
            .batch_execute("CREATE DATABASE shopbox_bench")
            .await
            .expect("create");
    });

    let work = tempfile::tempdir().expect("temp dir");
    let source = work.path().join("source");
    let copy = work.path().join("copy");
    let started = Instant::now();
    let mut data = shop(products, orders);
    data.check().expect("a valid generated shop");
    let config = shopbox::config::Config {
        data_dir: source.clone(),
        cache_capacity_mb: std::env::var("CACHE_MB")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(64),
        ..Default::default()
    };
    let db = shopbox::open_data(&config).expect("open");
    data.write_new(&db, &|_| {}).expect("write");
    drop(db);
    println!(
        "generated {products} products, {orders} orders: {} rows in {:.1} s\n",
        data.total_rows(),
        started.elapsed().as_secs_f64()
    );
    let source = source.to_string_lossy().to_string();
    let copy = copy.to_string_lossy().to_string();
    run(&["export-pg", "--url", &url, "--data", &source]);
    for _ in 1..std::env::var("EXPORTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1)
    {
        run(&[
            "export-pg",
            "--url",
            &url,
            "--data",
            &source,
            "--drop-existing",
        ]);
    }
    run(&["import-pg", "--url", &url, "--data", &copy]);
}
