//! sled and PostgreSQL side by side in one run, on the same shop: a fresh data folder
//! seeded with `seed --demo --products N` (100,000 by default) and an admin, copied with
//! `export-pg` into a fresh schema on `SHOPBOX_TEST_PG_URL` (default
//! `postgres://postgres@127.0.0.1:5432/test`; the schema is dropped at the end). Then the
//! release binary serves the folder from sled, and after it the schema from PostgreSQL,
//! each through the same scenarios (`benches/support`, shared with the catalog bench):
//! 64 keep-alive connections for some seconds, throughput, p50 and p99, and the ratio to
//! `/health` of the same server:
//!
//! - `/health` (the baseline);
//! - `GET /api/products/{id}`, random ids;
//! - random pages (of 20) over the whole catalog, for each sort (`newest` is the default);
//! - two-word searches whose words match about 1%, 5% and 20% of the products, random page
//!   1 to 5;
//! - durable checkouts (add to cart + checkout) at 64 customers, next to the fsyncs/s one
//!   writer gets from this disk: every order of one product (the worst case, every order
//!   takes the stock of one row), then each order of one of 64 products at random;
//! - on PostgreSQL also the checkouts split across two instances on the same database
//!   (a second server process; the customers alternate between the two), in total.
//!
//! At the end one table puts the two engines side by side.
//!
//! Run: `nice -n 5 cargo bench --bench backends [-- SECONDS [PRODUCTS]]`
//! (e.g. `-- 5 100000`, the defaults).

mod support;

use std::sync::Arc;
use std::time::Instant;
use support::{
    fsyncs_per_second, load, random_ids, random_pages, random_search, search_total, seeded_shop,
    shopbox, Buyers, Measured, Server, SEARCHES, SORTS,
};

/// The figures of one engine.
#[derive(Default)]
struct Figures {
    health: Measured,
    ids: Measured,
    /// (sort, random pages in it)
    pages: Vec<(&'static str, Measured)>,
    /// (which words, hits of one such search, the searches)
    searches: Vec<(&'static str, String, Measured)>,
    checkouts: Measured,
    /// The checkouts spread over 64 products.
    spread: Measured,
    /// The checkouts split across two instances (PostgreSQL only): of one product, and
    /// spread.
    two_instances: Option<(Measured, Measured)>,
    fsyncs: f64,
    rss_start: f64,
    rss_end: f64,
}

fn line(name: &str, m: &Measured, health: &Measured, unit: &str) {
    println!(
        "  {name:<52} {:>8.0} {unit} ({:.2} of /health)  p50 {:>6.2} ms  p99 {:>7.2} ms{}",
        m.rate,
        m.rate / health.rate,
        m.p50,
        m.p99,
        if m.failures > 0 {
            format!("  {} failed", m.failures)
        } else {
            String::new()
        }
    );
}

/// The scenarios against `server`, which serves `products` demo products and knows the
/// admin `admin@bench.test`; `second` starts a second instance on the same storage.
async fn scenarios(
    engine: &str,
    server: &Server,
    products: u64,
    secs: f64,
    fsync_dir: &std::path::Path,
    second: Option<&dyn Fn() -> Server>,
) -> Figures {
    let port = server.port;
    let mut conn = server.ready().await;
    let mut f = Figures {
        rss_start: server.rss_mb(),
        ..Default::default()
    };
    println!("{engine}: server RSS after start {:.0} MB", f.rss_start);
    f.health = load(port, secs, Arc::new(|_| "/health".to_string())).await;
    line("/health (baseline)", &f.health, &f.health, "req/s");
    f.ids = load(port, secs, random_ids(products)).await;
    line(
        "GET /api/products/{id}, random ids",
        &f.ids,
        &f.health,
        "req/s",
    );
    for sort in SORTS {
        let m = load(port, secs, random_pages(products, sort)).await;
        line(
            &format!("random page of {}, sort={sort}", products.div_ceil(20)),
            &m,
            &f.health,
            "req/s",
        );
        f.pages.push((sort, m));
    }
    for (name, first, second) in SEARCHES {
        let total = search_total(&mut conn, first, second).await;
        let m = load(port, secs, random_search(first, second)).await;
        line(
            &format!("search, {name} (e.g. {total} hits)"),
            &m,
            &f.health,
            "req/s",
        );
        f.searches.push((name, total, m));
    }
    let buyers = Buyers::make(&mut conn, "admin@bench.test").await;
    let dir = fsync_dir.to_path_buf();
    f.fsyncs = tokio::task::spawn_blocking(move || fsyncs_per_second(&dir, 2.0))
        .await
        .expect("fsync probe");
    f.checkouts = buyers.checkouts(&[port], "one", None, secs, false).await;
    line(
        "durable checkouts, 64 customers, one product",
        &f.checkouts,
        &f.health,
        "orders/s",
    );
    f.spread = buyers.checkouts(&[port], "spread", None, secs, true).await;
    line(
        "durable checkouts, 64 customers, 64 products",
        &f.spread,
        &f.health,
        "orders/s",
    );
    if let Some(start) = second {
        let other = start();
        other.ready().await;
        let ports = [port, other.port];
        let one = buyers.checkouts(&ports, "two", None, secs, false).await;
        line(
            "the same on two instances, one product",
            &one,
            &f.health,
            "orders/s",
        );
        let spread = buyers
            .checkouts(&ports, "two-spread", None, secs, true)
            .await;
        line(
            "the same on two instances, 64 products",
            &spread,
            &f.health,
            "orders/s",
        );
        println!("  (second instance RSS {:.0} MB)", other.rss_mb());
        f.two_instances = Some((one, spread));
    }
    println!("  this disk: {:.0} fsyncs/s for one writer", f.fsyncs);
    f.rss_end = server.rss_mb();
    println!("{engine}: server RSS after the runs {:.0} MB\n", f.rss_end);
    f
}

/// A fresh schema on the PostgreSQL server, dropped when this is dropped.
struct Schema {
    base: String,
    name: String,
}

impl Schema {
    async fn exec(base: &str, sql: &str) {
        let (client, conn) = tokio_postgres::connect(base, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("connect to {base}: {e}"));
        tokio::spawn(conn);
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }

    fn create(runtime: &tokio::runtime::Runtime, base: &str) -> Schema {
        let name = format!(
            "bench_{}_{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs()
        );
        runtime.block_on(Schema::exec(base, &format!("CREATE SCHEMA {name}")));
        Schema {
            base: base.to_string(),
            name,
        }
    }

    /// The database's URL with this schema as the search path.
    fn url(&self) -> String {
        let sep = if self.base.contains('?') { '&' } else { '?' };
        format!("{}{sep}options=-csearch_path%3D{}", self.base, self.name)
    }
}

impl Drop for Schema {
    fn drop(&mut self) {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(Schema::exec(
            &self.base,
            &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
        ));
        println!("dropped schema {}", self.name);
    }
}

fn row(name: &str, sled: &Measured, sled_health: f64, pg: &Measured, pg_health: f64, unit: &str) {
    let cell = |m: &Measured, h: f64| {
        format!(
            "{:>7.0} {unit:<8} {:>4.2} {:>7.1}/{:>7.1}{}",
            m.rate,
            m.rate / h,
            m.p50,
            m.p99,
            if m.failures > 0 { "!" } else { " " }
        )
    };
    println!(
        "{name:<40} | {} | {}",
        cell(sled, sled_health),
        cell(pg, pg_health)
    );
}

fn main() {
    let mut args = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse::<f64>().ok());
    let secs = args.next().unwrap_or(5.0);
    let products = args.next().unwrap_or(100_000.0) as u64;
    let base = std::env::var("SHOPBOX_TEST_PG_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let (dir, data) = seeded_shop(products);
    let data_arg = data.to_string_lossy().to_string();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    let schema = Schema::create(&runtime, &base);
    let url = schema.url();
    let started = Instant::now();
    shopbox(&["export-pg", "--data", &data_arg, "--url", &url]);
    println!(
        "exported to PostgreSQL schema {} in {:.1} s\n",
        schema.name,
        started.elapsed().as_secs_f64()
    );

    let sled = {
        let server = Server::start(&data, &[]);
        runtime.block_on(scenarios("sled", &server, products, secs, &data, None))
    };
    // The PostgreSQL instances keep only product images in their data folder.
    let media = dir.path().join("pg-media");
    let env = [("SHOPBOX_DATABASE__URL", url.as_str())];
    let pg = {
        let server = Server::start(&media, &env);
        let second = || Server::start(&media, &env);
        runtime.block_on(scenarios(
            "PostgreSQL",
            &server,
            products,
            secs,
            &data,
            Some(&second),
        ))
    };

    println!(
        "{products} products, 64 connections, {secs} s each; rate, ratio to /health of the same \
         server, p50/p99 ms (! = some failed)"
    );
    println!("{:<40} | {:<38} | {:<38}", "", "sled", "PostgreSQL");
    let (sh, ph) = (sled.health.rate, pg.health.rate);
    row("/health", &sled.health, sh, &pg.health, ph, "req/s");
    row("product by random id", &sled.ids, sh, &pg.ids, ph, "req/s");
    for ((sort, s), (_, p)) in sled.pages.iter().zip(&pg.pages) {
        row(&format!("random page, sort={sort}"), s, sh, p, ph, "req/s");
    }
    for ((name, total, s), (_, pg_total, p)) in sled.searches.iter().zip(&pg.searches) {
        row(
            &format!("search {name} ({total}/{pg_total})"),
            s,
            sh,
            p,
            ph,
            "req/s",
        );
    }
    row(
        "durable checkouts, 64 cust., 1 product",
        &sled.checkouts,
        sh,
        &pg.checkouts,
        ph,
        "orders/s",
    );
    row(
        "durable checkouts, 64 cust., 64 products",
        &sled.spread,
        sh,
        &pg.spread,
        ph,
        "orders/s",
    );
    if let Some((one, spread)) = &pg.two_instances {
        for (name, two) in [("1 product", one), ("64 products", spread)] {
            println!(
                "{:<40} | {:<38} | {}",
                format!("  on two instances, in all, {name}"),
                "(one process per data folder)",
                format_args!(
                    "{:>7.0} orders/s {:>4.2} {:>7.1}/{:>7.1}{}",
                    two.rate,
                    two.rate / ph,
                    two.p50,
                    two.p99,
                    if two.failures > 0 { "!" } else { " " }
                )
            );
        }
    }
    println!(
        "{:<40} | {:<38} | {:<38}",
        "fsyncs/s of this disk, one writer",
        format!("{:>7.0}", sled.fsyncs),
        format!("{:>7.0}", pg.fsyncs)
    );
    println!(
        "{:<40} | {:<38} | {:<38}",
        "server RSS after start / after the runs",
        format!("{:>4.0} / {:.0} MB", sled.rss_start, sled.rss_end),
        format!("{:>4.0} / {:.0} MB", pg.rss_start, pg.rss_end)
    );
    drop(runtime);
    drop(schema);
}
