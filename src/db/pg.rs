//! PostgreSQL storage: a pool of connections and the shop's catalog version. Knows no
//! domain; each domain's `store/pg.rs` writes its SQL against it.
//!
//! Every write commits through `PgDb::commit`, which announces it (`NOTIFY`) in the same
//! transaction: each instance on the database listens, and moves its version when another
//! one wrote, so that response caches drop what they hold.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction};
use tokio_postgres::error::SqlState;
use tokio_postgres::NoTls;

use super::{StoreError, StoreResult, Unique};

/// The channel every instance announces its writes on; the payload is the schema written.
const CHANNEL: &str = "shopbox_writes";

struct Inner {
    pool: Pool,
    /// Moves after every committed write of this instance and every one announced by
    /// another (see `Backend::version`).
    version: AtomicU64,
    /// The schema the shop's tables are in (`current_schema()`), which names its writes.
    schema: String,
    /// The HS256 secret kept in the database, shared by every instance.
    jwt_secret: std::sync::OnceLock<String>,
}

/// A PostgreSQL database serving the shop. Cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    inner: Arc<Inner>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        if e.code() == Some(&SqlState::QUERY_CANCELED) {
            return StoreError::Storage("postgres: the statement timed out".into());
        }
        match e.as_db_error() {
            Some(db) => StoreError::Storage(format!("postgres: {}", db.message())),
            None => StoreError::Storage(format!("postgres: {e}")),
        }
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Storage(format!("postgres pool: {e}"))
    }
}

/// How the pool is opened (from `database.*` of the configuration).
pub struct PgOptions<'a> {
    pub url: &'a str,
    pub pool_size: usize,
    pub statement_timeout_ms: u64,
}

impl PgDb {
    pub fn from_pool(pool: Pool) -> Self {
        PgDb {
            inner: Arc::new(Inner {
                pool,
                version: AtomicU64::new(0),
                schema: String::new(),
                jwt_secret: std::sync::OnceLock::new(),
            }),
        }
    }

    /// Opens a pool on the database and checks that it answers; starts listening for the
    /// writes of other instances. The schema is the caller's (`pg::serving::migrate`).
    pub async fn open(options: &PgOptions<'_>) -> Result<PgDb, String> {
        let mut config: tokio_postgres::Config = options
            .url
            .parse()
            .map_err(|e| format!("database.url is not a valid URL: {e}"))?;
        if options.statement_timeout_ms > 0 {
            let mut extra = config.get_options().unwrap_or("").to_string();
            if !extra.is_empty() {
                extra.push(' ');
            }
            extra.push_str(&format!(
                "-c statement_timeout={}",
                options.statement_timeout_ms
            ));
            config.options(&extra);
        }
        if config.get_application_name().is_none() {
            config.application_name("shopbox");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(options.pool_size)
            .build()
            .map_err(|e| format!("cannot make the connection pool: {e}"))?;
        let shown = crate::config::mask_url_password(options.url);
        let client = pool
            .get()
            .await
            .map_err(|e| format!("cannot connect to {shown}: {}", pool_error(e)))?;
        let schema: Option<String> = client
            .query_one("SELECT current_schema()::text", &[])
            .await
            .map_err(|e| format!("cannot read from {shown}: {e}"))?
            .get(0);
        let Some(schema) = schema else {
            return Err(format!(
                "{shown}: no schema to create the shop's tables in (check search_path)"
            ));
        };
        drop(client);
        let db = PgDb {
            inner: Arc::new(Inner {
                pool,
                version: AtomicU64::new(0),
                schema,
                jwt_secret: std::sync::OnceLock::new(),
            }),
        };
        listen(config, Arc::downgrade(&db.inner)).await?;
        Ok(db)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> StoreResult<Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Announces the transaction's writes to every instance, commits it, and moves this
    /// instance's version at once (the notification comes back later, and moves it again).
    pub async fn commit(&self, tx: Transaction<'_>) -> StoreResult<()> {
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &self.inner.schema])
            .await?;
        tx.commit().await?;
        self.bump_version();
        Ok(())
    }

    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Marks that a write committed (response caches drop what they hold).
    pub fn bump_version(&self) {
        self.inner.version.fetch_add(1, Ordering::AcqRel);
    }

    pub async fn healthy(&self) -> bool {
        match self.client().await {
            Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
            Err(_) => false,
        }
    }

    /// The schema the shop's tables are in.
    pub fn schema(&self) -> &str {
        &self.inner.schema
    }

    /// The token secret stored in the database, once `pg::serving` has read it.
    pub fn jwt_secret(&self) -> Option<&str> {
        self.inner.jwt_secret.get().map(String::as_str)
    }

    pub fn set_jwt_secret(&self, secret: String) {
        let _ = self.inner.jwt_secret.set(secret);
    }
}

fn pool_error(e: deadpool_postgres::PoolError) -> String {
    match e {
        deadpool_postgres::PoolError::Backend(e) => match e.as_db_error() {
            Some(db) => db.message().to_string(),
            None => match std::error::Error::source(&e) {
                Some(cause) => format!("{e}: {cause}"),
                None => e.to_string(),
            },
        },
        other => other.to_string(),
    }
}

/// Keeps one connection (outside the pool) listening for the writes of every instance,
/// moving the version on each one for this schema; reconnects when it drops (and moves
/// the version then too: a write may have gone unheard). Ends with the database.
async fn listen(config: tokio_postgres::Config, db: std::sync::Weak<Inner>) -> Result<(), String> {
    let first = listener(&config)
        .await
        .map_err(|e| format!("cannot listen for other instances' writes: {e}"))?;
    tokio::spawn(async move {
        let mut conn = Some(first);
        loop {
            if let Some((client, connection)) = conn.take() {
                if !run_listener(client, connection, &db).await {
                    return;
                }
                tracing::warn!("PostgreSQL notification connection ended; reconnecting");
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
            match db.upgrade() {
                Some(inner) => inner.version.fetch_add(1, Ordering::AcqRel),
                None => return,
            };
            match listener(&config).await {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!("cannot listen for other instances' writes: {e}"),
            }
        }
    });
    Ok(())
}

type Listener = (
    tokio_postgres::Client,
    tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
);

async fn listener(config: &tokio_postgres::Config) -> Result<Listener, tokio_postgres::Error> {
    config.connect(NoTls).await
}

/// Drives a listening connection until it ends; false once the database is gone.
async fn run_listener(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<
        tokio_postgres::Socket,
        tokio_postgres::tls::NoTlsStream,
    >,
    db: &std::sync::Weak<Inner>,
) -> bool {
    use futures_util::StreamExt;
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let mut messages = Box::pin(futures_util::stream::poll_fn(move |cx| {
        connection.poll_message(cx)
    }));
    let driver = tokio::spawn(async move {
        while let Some(message) = messages.next().await {
            match message {
                Ok(tokio_postgres::AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_string()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(_) => return,
            }
        }
    });
    if client
        .batch_execute(&format!("LISTEN {CHANNEL}"))
        .await
        .is_err()
    {
        driver.abort();
        return db.strong_count() > 0;
    }
    loop {
        tokio::select! {
            payload = rx.recv() => {
                let Some(payload) = payload else { break };
                let Some(inner) = db.upgrade() else {
                    driver.abort();
                    return false;
                };
                if payload == inner.schema {
                    inner.version.fetch_add(1, Ordering::AcqRel);
                }
            }
            _ = tokio::time::sleep(Duration::from_secs(5)) => {
                if db.strong_count() == 0 {
                    driver.abort();
                    return false;
                }
            }
        }
    }
    drop(client);
    db.strong_count() > 0
}

/// The answer of a store function whose PostgreSQL side is not written yet.
pub fn pending<T>(what: &str) -> StoreResult<T> {
    Err(StoreError::Storage(format!(
        "{what} is not served from PostgreSQL yet"
    )))
}

/// Microseconds since the epoch as a `TIMESTAMPTZ` parameter.
pub fn ts(micros: i64) -> SystemTime {
    if micros >= 0 {
        UNIX_EPOCH + Duration::from_micros(micros as u64)
    } else {
        UNIX_EPOCH - Duration::from_micros(micros.unsigned_abs())
    }
}

/// A `TIMESTAMPTZ` read back as microseconds since the epoch.
pub fn micros(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// An id read from a `BIGINT` column.
pub fn id(n: i64) -> u64 {
    n.max(0) as u64
}

/// An id as a `BIGINT` parameter (ids beyond it name nothing).
pub fn key(id: u64) -> i64 {
    i64::try_from(id).unwrap_or(i64::MAX)
}

/// A unique violation named in `constraints` as the store's `Duplicate`; any other
/// error as it is.
pub fn duplicate(e: tokio_postgres::Error, constraints: &[(&str, Unique)]) -> StoreError {
    if e.code() == Some(&SqlState::UNIQUE_VIOLATION) {
        if let Some(name) = e.as_db_error().and_then(|d| d.constraint()) {
            if let Some((_, unique)) = constraints.iter().find(|(c, _)| *c == name) {
                return StoreError::Duplicate(*unique);
            }
        }
    }
    e.into()
}
