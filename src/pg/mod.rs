//! Export to and import from PostgreSQL: the only module that talks to PostgreSQL.
//!
//! `export-pg` reads the whole shop (`transfer::ShopData`), creates SPEC.md's tables and
//! loads them with binary COPY, all in one transaction. `import-pg` reads those tables (or
//! the FastAPI reference backend's, mapped) into a `ShopData`, checks it as a whole, writes
//! it into a new database beside the data folder's and swaps the two at the end, so a
//! failed or interrupted import leaves the folder as it was.

mod export;
mod import;
mod reference;
pub mod schema;
pub mod serving;
mod source;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio_postgres::Client;

use crate::config::Config;
use crate::db::Db;

/// The tables of the connection's current schema (its search path's first), which tell
/// whose database it is.
async fn current_tables(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    Ok(client
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema()",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// The tables `export-pg` writes that no other layout has: a schema with both is a
/// shopbox shop's.
fn is_shopbox_layout(tables: &[String]) -> bool {
    let has = |t: &str| tables.iter().any(|n| n == t);
    has("product_categories") && has("shipping_status_history")
}

fn pg_error(e: tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => match db.detail() {
            Some(detail) => format!("PostgreSQL: {} ({detail})", db.message()),
            None => format!("PostgreSQL: {}", db.message()),
        },
        None => match std::error::Error::source(&e) {
            Some(cause) => format!("PostgreSQL: {e}: {cause}"),
            None => format!("PostgreSQL: {e}"),
        },
    }
}

/// The URL without its password, for messages.
fn shown(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.rsplit_once('@') {
            Some((credentials, host)) => {
                let user = credentials.split(':').next().unwrap_or("");
                format!("{scheme}://{user}@{host}")
            }
            None => url.to_string(),
        },
        None => url.to_string(),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))
}

/// A connection on `url`, secured as its `sslmode` asks (as the server's pool is, with
/// `database.ca_file`).
async fn connect(url: &str, ca_file: Option<&Path>) -> Result<Client, String> {
    let (taken, mode) = crate::config::pg_ssl_mode(url)?;
    let tls = crate::db::pg::Tls::new(mode, ca_file)?;
    let (client, connection) = tokio_postgres::connect(&taken, tls)
        .await
        .map_err(|e| format!("cannot connect to {}: {}", shown(url), pg_error(e)))?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::warn!(error = %e, "PostgreSQL connection ended");
        }
    });
    Ok(client)
}

/// Microseconds since the epoch as a wire timestamp.
fn time_of(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

fn rate(rows: u64, elapsed: Duration) -> String {
    let secs = elapsed.as_secs_f64().max(1e-6);
    format!(
        "{rows} rows in {:.2} s ({:.0} rows/s)",
        secs,
        rows as f64 / secs
    )
}

/// `shopbox export-pg`: the whole shop into PostgreSQL; answers the summary.
pub fn export(
    db: &Db,
    url: &str,
    ca_file: Option<&Path>,
    drop_existing: bool,
    progress: &dyn crate::commands::Progress,
) -> Result<String, String> {
    let started = Instant::now();
    let rt = runtime()?;
    let counts = rt.block_on(export::export(
        db.clone(),
        url,
        ca_file,
        drop_existing,
        progress,
    ));
    // On an early failure, the orders may still be decoding: do not wait for them.
    rt.shutdown_background();
    let counts = counts?;
    let total: u64 = counts.iter().map(|(_, n)| n).sum();
    let mut out = format!(
        "exported to {}: {}\n",
        shown(url),
        rate(total, started.elapsed())
    );
    for (table, n) in counts {
        out.push_str(&format!("  {table:<24} {n:>10}\n"));
    }
    Ok(out.trim_end().to_string())
}

/// `shopbox import-pg`: a shop from PostgreSQL into the data folder, with the product
/// images found in `media_from`; answers the summary.
pub fn import(
    config: &Config,
    url: &str,
    force: bool,
    media_from: Option<&std::path::Path>,
) -> Result<String, String> {
    import::import(config, url, force, media_from)
}
