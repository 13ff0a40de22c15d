//! shopbox: an e-commerce backend in one executable. `rocket()` builds the whole app from
//! a `Config` and an open storage `Backend`; the binary and the tests use exactly this. This file is
//! the wiring: every domain's trees and migrations go to the database here, and every
//! domain's routes to Rocket.

pub mod account;
pub mod backup;
pub mod cart;
pub mod checkout;
pub mod commands;
pub mod config;
pub mod control;
pub mod core;
pub mod db;
pub mod http;
pub mod logging;
pub mod mail;
pub mod order;
pub mod payment;
pub mod pg;
pub mod product;
pub mod review;
pub mod seed;
pub mod server;
pub mod shipping;
pub mod transfer;
pub mod web;

use rocket::http::Status;
use rocket::{catch, Build, Request, Rocket};
use rocket_okapi::settings::OpenApiSettings;
use std::sync::Arc;

use crate::config::Config;
use crate::db::{Backend, Db, Schema};
use crate::http::metrics::Metrics;
use crate::http::request_id::RequestFairing;
use crate::http::{ApiError, FieldError};

pub use crate::http::AppState;
pub use server::serve;

/// Every tree and migration step of the shop, as each domain declares them.
pub fn schema() -> Schema {
    Schema::default()
        .trees(account::model::TREES)
        .trees(mail::model::TREES)
        .trees(product::model::TREES)
        .trees(review::model::TREES)
        .trees(cart::model::TREES)
        .trees(shipping::model::TREES)
        .trees(payment::model::TREES)
        .trees(order::model::TREES)
        .trees(checkout::model::TREES)
        .derived(product::store::catalog::Catalog::make)
        .migrations(product::MIGRATIONS)
        .migrations(checkout::MIGRATIONS)
        .migrations(mail::MIGRATIONS)
}

/// A failure to start, in one line for the operator.
#[derive(Debug)]
pub struct StartError(pub String);

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StartError {}

/// Creates the data folder if needed and opens the database in it.
pub fn open_data(config: &Config) -> Result<Db, StartError> {
    config::create_data_dir(&config.data_dir).map_err(|e| StartError(e.0))?;
    Db::open_with(
        &config.data_dir,
        config.cache_capacity_mb * 1024 * 1024,
        &schema(),
        config.test_fail_flush_when.clone(),
    )
    .map_err(|e| StartError(e.0))
}

/// Opens the shop's storage: the PostgreSQL database `database.url` names, its tables
/// created or brought up to date, or else the data folder's sled database.
pub async fn open_backend(config: &Config) -> Result<Backend, StartError> {
    let Some(url) = &config.database.url else {
        return open_data(config).map(Backend::Sled);
    };
    // Product images stay files in the data folder's `media` (shared by the instances).
    config::create_data_dir(&config.data_dir).map_err(|e| StartError(e.0))?;
    open_pg(config, url).await.map(Backend::Pg)
}

/// Opens the PostgreSQL database at `url` ready to serve (`connect_pg`, then
/// `prepare_pg`): what a server does at start.
pub async fn open_pg(config: &Config, url: &str) -> Result<db::pg::PgDb, StartError> {
    let pg = connect_pg(config, url).await?;
    prepare_pg(&pg).await?;
    Ok(pg)
}

/// A pool on the PostgreSQL database at `url`, as `database.*` configures it; its tables
/// are `prepare_pg`'s.
pub async fn connect_pg(config: &Config, url: &str) -> Result<db::pg::PgDb, StartError> {
    db::pg::PgDb::open(&db::pg::PgOptions {
        url,
        pool_size: config.database.pool_size,
        statement_timeout_ms: config.database.statement_timeout_ms,
        ca_file: config.database.ca_file.as_deref(),
    })
    .await
    .map_err(StartError)
}

/// Creates the shop's tables or brings them up to date, reads the token secret the
/// instances share, and indexes for search the products that are not yet.
pub async fn prepare_pg(pg: &db::pg::PgDb) -> Result<(), StartError> {
    pg::serving::migrate(pg).await.map_err(StartError)?;
    let indexed = product::store::pg::backfill_search(pg)
        .await
        .map_err(|e| StartError(format!("indexing products for search: {e}")))?;
    if indexed > 0 {
        tracing::info!("indexed {indexed} products for search");
    }
    Ok(())
}

/// Builds the application on a storage engine (a sled `Db` or a `PgDb`).
pub fn rocket(config: Config, db: impl Into<Backend>) -> Result<Rocket<Build>, StartError> {
    let db: Backend = db.into();
    // On PostgreSQL, unless configured, the secret every instance shares is the database's.
    let jwt_secret = match (db.pg().and_then(|pg| pg.jwt_secret()), &config.jwt_secret) {
        (Some(shared), None) => shared.to_string(),
        _ => config::jwt_secret(&config).map_err(|e| StartError(e.0))?,
    };
    let rocket_config = rocket_config(&config)?;
    let metrics = Arc::new(Metrics::new(&config.currency));
    let settings = OpenApiSettings::default();

    // Read by the patched Rocket's server loop (vendor/rocket/README-shopbox.md).
    let figment = rocket::figment::Figment::from(rocket_config)
        .merge(("header_read_timeout", config.limits.header_timeout_secs))
        .merge((
            "max_connections",
            connection_cap(config.limits.max_connections),
        ));
    let mut rocket = rocket::custom(figment)
        .attach(http::unwritable::Unwritable)
        .attach(RequestFairing {
            metrics: Arc::clone(&metrics),
        })
        .attach(http::origin::Cors)
        .attach(http::methods::MethodFairing)
        .register("/", rocket::catchers![default_catcher]);

    let mut specs = Vec::new();
    for (base, (routes, spec)) in documented_modules(&settings) {
        rocket = rocket.mount(base, routes);
        specs.push((base, spec));
    }
    let spec = rocket_okapi::okapi::merge::marge_spec_list(&specs)
        .map_err(|e| StartError(format!("cannot merge the OpenAPI document: {e}")))?;
    let mut spec = web::finish_spec(spec, &config.shop_name);
    http::openapi::alias(
        &mut spec,
        "/api/products-category",
        "/api/products/category",
    );
    http::openapi::finish(&mut spec);

    rocket = rocket
        .mount("/", vec![rocket_okapi::get_openapi_route(spec, &settings)])
        .mount("/", web::plain_routes())
        .mount("/", rocket::routes![http::origin::preflight])
        .mount("/", product::routes::media_routes())
        .mount("/docs", web::swagger_routes())
        .manage(AppState {
            config: Arc::new(config),
            db,
            jwt: core::tokens::Jwt::new(&jwt_secret),
            passwords: core::password::Passwords::default(),
            limiter: http::ratelimit::RateLimiter::default(),
            catalog_cache: http::cache::ResponseCache::default(),
            metrics,
            clock: core::time::Clock::default(),
        });
    Ok(rocket)
}

/// Every documented module with the path it is mounted at.
fn documented_modules(
    settings: &OpenApiSettings,
) -> Vec<(
    &'static str,
    (Vec<rocket::Route>, rocket_okapi::okapi::openapi3::OpenApi),
)> {
    vec![
        ("/", web::documented_routes(settings)),
        ("/api/account", account::routes::routes(settings)),
        ("/api/products", product::routes::routes(settings)),
        ("/api/products", review::routes::routes(settings)),
        ("/api/carts", cart::routes::routes(settings)),
        ("/api/orders", checkout::routes::routes(settings)),
        ("/api/orders", order::routes::routes(settings)),
        ("/api/payments", payment::routes::routes(settings)),
        ("/api/shippings", shipping::routes::routes(settings)),
        ("/api/shippings", order::routes::status_routes(settings)),
        ("/api/admin", web::admin_api::routes(settings)),
    ]
}

fn rocket_config(config: &Config) -> Result<rocket::Config, StartError> {
    use rocket::data::{Limits, ToByteUnit};
    let address = config.address.parse().map_err(|_| {
        StartError(format!(
            "invalid configuration: `address` {}",
            config.address
        ))
    })?;
    let upload = config.uploads.max_bytes;
    Ok(rocket::Config {
        address,
        port: config.port,
        // Forwarding headers are believed only from `trusted_proxies`, never by default.
        ip_header: None,
        log_level: rocket::config::LogLevel::Critical,
        // SIGTERM and Ctrl-C stop accepting; requests in flight get the grace period.
        shutdown: rocket::config::Shutdown {
            grace: config.shutdown.grace_secs,
            mercy: 5,
            ..rocket::config::Shutdown::default()
        },
        cli_colors: false,
        limits: Limits::default()
            .limit("json", 1.mebibytes())
            .limit("file", upload.bytes())
            .limit("data-form", (upload + 1024 * 1024).bytes()),
        ..rocket::Config::default()
    })
}

/// File descriptors kept back from connections: the database, media files, logs, mail.
const RESERVED_FILES: u64 = 256;

/// `limits.max_connections`, lowered (with a warning) so that open connections leave
/// room under the process's open-file limit: at the limit every `accept` and file open
/// would fail.
fn connection_cap(configured: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct it is given.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0
        || limit.rlim_cur == libc::RLIM_INFINITY
    {
        return configured;
    }
    let room = limit.rlim_cur.saturating_sub(RESERVED_FILES).max(1);
    if configured as u64 > room {
        tracing::warn!(
            "limits.max_connections = {configured} does not fit under the open-file limit ({}); \
             serving at most {room} connections (raise `ulimit -n` / LimitNOFILE)",
            limit.rlim_cur
        );
        return room as usize;
    }
    configured
}

/// Every error Rocket produces itself (no route, a failed guard, a panic) answers JSON.
#[catch(default)]
fn default_catcher(status: Status, req: &Request<'_>) -> ApiError {
    // A path that routes serve exactly (`/api/products/search`, GET) asked with a method
    // whose route takes it as a parameter (`PATCH /api/products/<product_id>`): that
    // route's guards run before its parameter is parsed, so their refusal (401, 403) is
    // not the answer; the method is not served at this path (405).
    if status == Status::Unauthorized || status == Status::Forbidden {
        let allow = http::methods::allowed_methods(req);
        if !allow.is_empty() && !allow.contains(&req.method()) {
            return ApiError::MethodNotAllowed {
                allow: allow.iter().map(|m| m.as_str().to_string()).collect(),
            };
        }
    }
    if let Some(stashed) = ApiError::take_stashed(req) {
        return stashed;
    }
    // No route for this method (a 404 without a route), or a method Rocket does not know
    // (a 400 for a request no fairing saw): a 405 where other methods serve the path.
    let no_route = status == Status::NotFound && req.route().is_none();
    let unknown_method = status == Status::BadRequest && http::methods::unknown_method(req);
    if no_route || unknown_method {
        let allow = http::methods::allowed_methods(req);
        if !allow.is_empty() {
            return ApiError::MethodNotAllowed {
                allow: allow.iter().map(|m| m.as_str().to_string()).collect(),
            };
        }
    }
    // A path that a route serves exactly (`/api/orders/checkout`, POST) asked with a
    // method whose route would take it as a parameter (`GET /api/orders/<order_id>`).
    if status == Status::UnprocessableEntity || status == Status::NotFound {
        let allow = http::methods::allowed_methods(req);
        if !allow.is_empty() && !allow.contains(&req.method()) {
            return ApiError::MethodNotAllowed {
                allow: allow.iter().map(|m| m.as_str().to_string()).collect(),
            };
        }
    }
    if status == Status::UnprocessableEntity {
        if let Some(err) = bad_path_parameter(req) {
            return ApiError::validation(err);
        }
    }
    ApiError::from_status(status)
}

/// A path parameter that did not parse makes Rocket forward with a 422; the last route it
/// tried tells which segment that was.
fn bad_path_parameter(req: &Request<'_>) -> Option<FieldError> {
    let route = req.route()?;
    let template: Vec<&str> = route.uri.origin.path().segments().collect();
    let actual: Vec<&str> = req.uri().path().segments().collect();
    template.iter().zip(actual.iter()).find_map(|(t, a)| {
        let name = t.strip_prefix('<')?.strip_suffix('>')?;
        let positive = a.parse::<u64>().map(|n| n > 0).unwrap_or(false);
        (!positive).then(|| {
            FieldError::new(
                "path",
                name,
                "Input should be a valid positive integer",
                "int_parsing",
            )
        })
    })
}

/// The one line that says why the server did not start; `listen` is `address:port`.
pub(crate) fn launch_error(e: &rocket::Error, listen: &str) -> String {
    use rocket::error::ErrorKind;
    match e.kind() {
        ErrorKind::Bind(io) if io.kind() == std::io::ErrorKind::AddrInUse => format!(
            "cannot listen on {listen}: the address and port are already in use (another shopbox, or another server?); choose another with --port or `port`"
        ),
        ErrorKind::Bind(io) => format!("cannot listen on {listen}: {io}"),
        ErrorKind::Collisions(c) => {
            let list: Vec<String> = c.routes.iter().map(|(a, b)| format!("{a} ~ {b}")).collect();
            format!("route collisions: {}", list.join("; "))
        }
        other => format!("cannot serve: {other}"),
    }
}

/// Sets up logging: text by default, JSON by configuration; `RUST_LOG` filters (see
/// `logging`).
pub fn init_logging(format: config::LogFormat) {
    logging::init(format);
}
