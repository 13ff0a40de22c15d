//! PostgreSQL storage: a pool of connections and the shop's catalog version. Knows no
//! domain; each domain's `store/pg.rs` writes its SQL against it.
//!
//! Every write commits through `PgDb::commit`, which announces it (`NOTIFY`) right after:
//! each instance on the database listens, and moves its version when another one wrote,
//! so that response caches drop what they hold.

use std::future::Future;
use std::io;
use std::path::Path;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};
use tokio_postgres::Socket;

use crate::config::PgSslMode;

use deadpool_postgres::{
    GenericClient, Manager, ManagerConfig, Object, Pool, RecyclingMethod, Transaction,
};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{StoreError, StoreResult, Unique};

/// The channel every instance announces its writes on; the payload is the schema written.
const CHANNEL: &str = "shopbox_writes";

/// Connections an instance announces its writes on: each announcement is one short
/// statement that does not wait for the disk.
const ANNOUNCERS: usize = 2;

/// A pool of at most `size` connections of `config`.
fn new_pool(config: tokio_postgres::Config, tls: &Tls, size: usize) -> Result<Pool, String> {
    let manager = Manager::from_config(
        config,
        tls.clone(),
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .map_err(|e| format!("cannot make the connection pool: {e}"))
}

struct Inner {
    pool: Pool,
    /// Connections that announce this instance's writes (`commit`).
    announcer: Pool,
    /// Moves after every committed write of this instance and every one announced by
    /// another (see `Backend::version`).
    version: AtomicU64,
    /// The schema the shop's tables are in (`current_schema()`), which names its writes.
    schema: String,
    /// The HS256 secret kept in the database, shared by every instance.
    jwt_secret: std::sync::OnceLock<String>,
}

/// Statements kept prepared on each pooled connection, by their text: one round trip per
/// call instead of two (tokio-postgres prepares a text query, then runs it). Only for SQL
/// whose text is fixed (no values formatted into it), since each text stays prepared for
/// the connection's life.
pub trait Prepared: GenericClient {
    fn pquery(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Vec<Row>, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query(&statement, params).await
        }
    }

    fn pquery_opt(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Option<Row>, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_opt(&statement, params).await
        }
    }

    fn pquery_one(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.query_one(&statement, params).await
        }
    }

    fn pexec(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<u64, tokio_postgres::Error>> + Send {
        async move {
            let statement = self.prepare_cached(sql).await?;
            self.execute(&statement, params).await
        }
    }
}

impl<C: GenericClient> Prepared for C {}

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
    /// Extra CAs (PEM) for `sslmode=verify-full`.
    pub ca_file: Option<&'a Path>,
}

impl PgDb {
    /// Opens a pool on the database and checks that it answers; starts listening for the
    /// writes of other instances. The schema is the caller's (`pg::serving::migrate`).
    pub async fn open(options: &PgOptions<'_>) -> Result<PgDb, String> {
        let (url, mode) =
            crate::config::pg_ssl_mode(options.url).map_err(|e| format!("database.url: {e}"))?;
        let tls = Tls::new(mode, options.ca_file)?;
        let mut config: tokio_postgres::Config = url
            .parse()
            .map_err(|e| format!("database.url is not a valid URL: {e}"))?;
        let mut extra = config.get_options().unwrap_or("").to_string();
        if options.statement_timeout_ms > 0 {
            extra.push_str(&format!(
                " -c statement_timeout={}",
                options.statement_timeout_ms
            ));
        }
        // JIT compiling a plan took 350 to 450 ms on its own for a deep listing page (its
        // cost estimate passes `jit_above_cost`); the shop's queries are short.
        extra.push_str(" -c jit=off");
        config.options(extra.trim_start());
        if config.get_application_name().is_none() {
            config.application_name("shopbox");
        }
        let pool = new_pool(config.clone(), &tls, options.pool_size)?;
        // Announcements (see `commit`) need not wait for the disk.
        let mut announcing = config.clone();
        announcing.options(format!("{} -c synchronous_commit=off", extra.trim_start()));
        let announcer = new_pool(announcing, &tls, ANNOUNCERS)?;
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
                announcer,
                version: AtomicU64::new(0),
                schema,
                jwt_secret: std::sync::OnceLock::new(),
            }),
        };
        listen(config, tls, Arc::downgrade(&db.inner)).await?;
        Ok(db)
    }

    /// A connection from the pool.
    pub async fn client(&self) -> StoreResult<Object> {
        Ok(self.inner.pool.get().await?)
    }

    /// Commits the transaction, moves this instance's version at once, and announces the
    /// write to every instance (the notification comes back to this one too, and moves
    /// its version again).
    ///
    /// The announcement (`NOTIFY`) is its own statement after the commit, on a connection
    /// of its own that does not wait for the disk: a `NOTIFY` inside the writing
    /// transaction makes its commit take PostgreSQL's one notification lock and hold it
    /// through the commit's fsync, so every writing transaction of the database committed
    /// one after the other (the checkout benchmark found most checkouts waiting on that
    /// lock). An announcement needs no durability: a restarted server's listeners start
    /// over and drop their caches.
    pub async fn commit(&self, tx: Transaction<'_>) -> StoreResult<()> {
        tx.commit().await?;
        self.bump_version();
        self.announce().await;
        Ok(())
    }

    /// Tells every instance that this one wrote. A failure is logged, not answered: the
    /// write it announces is committed. Tried twice (the pool replaces a connection it
    /// finds closed).
    async fn announce(&self) {
        for _ in 0..2 {
            let sent = async {
                let c = self.inner.announcer.get().await?;
                c.pexec("SELECT pg_notify($1, $2)", &[&CHANNEL, &self.inner.schema])
                    .await
                    .map_err(StoreError::from)
            };
            match sent.await {
                Ok(_) => return,
                Err(e) => tracing::warn!("cannot announce a write to other instances: {e}"),
            }
        }
        tracing::error!(
            "a committed write was not announced: other instances may answer from their \
             caches what it changed until the next write"
        );
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
async fn listen(
    config: tokio_postgres::Config,
    tls: Tls,
    db: std::sync::Weak<Inner>,
) -> Result<(), String> {
    let first = listener(&config, &tls)
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
            match listener(&config, &tls).await {
                Ok(c) => conn = Some(c),
                Err(e) => tracing::warn!("cannot listen for other instances' writes: {e}"),
            }
        }
    });
    Ok(())
}

type Listener = (
    tokio_postgres::Client,
    tokio_postgres::Connection<Socket, TlsStream>,
);

async fn listener(
    config: &tokio_postgres::Config,
    tls: &Tls,
) -> Result<Listener, tokio_postgres::Error> {
    config.connect(tls.clone()).await
}

/// Drives a listening connection until it ends; false once the database is gone.
async fn run_listener(
    client: tokio_postgres::Client,
    mut connection: tokio_postgres::Connection<Socket, TlsStream>,
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

/// TLS to PostgreSQL over rustls, as `sslmode` asks (see `PgSslMode`): the certificate
/// is checked against the bundled public roots and `database.ca_file` for `verify-full`,
/// not at all for `prefer` and `require` (as libpq). No channel binding: SCRAM goes
/// without it (libpq's `channel_binding=prefer` does the same with a server lacking it).
#[derive(Clone)]
pub struct Tls {
    config: Arc<rustls::ClientConfig>,
}

impl Tls {
    pub fn new(mode: PgSslMode, ca_file: Option<&Path>) -> Result<Tls, String> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| format!("cannot set up TLS: {e}"))?;
        let mut config = if mode == PgSslMode::VerifyFull {
            let mut roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            if let Some(path) = ca_file {
                let shown = path.display();
                let certs = CertificateDer::pem_file_iter(path)
                    .map_err(|e| format!("cannot read database.ca_file {shown}: {e}"))?
                    .collect::<Result<Vec<_>, _>>()
                    .map_err(|e| format!("database.ca_file {shown} is not a PEM: {e}"))?;
                if certs.is_empty() {
                    return Err(format!("database.ca_file {shown} holds no certificate"));
                }
                for cert in certs {
                    roots.add(cert).map_err(|e| {
                        format!("database.ca_file {shown}: a certificate is unusable: {e}")
                    })?;
                }
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(Unchecked(provider)))
                .with_no_client_auth()
        };
        config.alpn_protocols = vec![b"postgresql".to_vec()];
        Ok(Tls {
            config: Arc::new(config),
        })
    }
}

impl MakeTlsConnect<Socket> for Tls {
    type Stream = TlsStream;
    type TlsConnect = TlsConnector;
    type Error = io::Error;

    fn make_tls_connect(&mut self, host: &str) -> io::Result<TlsConnector> {
        // A Unix socket has no host name; TLS is then never asked for.
        Ok(TlsConnector {
            config: self.config.clone(),
            name: ServerName::try_from(host.to_string()).ok(),
        })
    }
}

pub struct TlsConnector {
    config: Arc<rustls::ClientConfig>,
    name: Option<ServerName<'static>>,
}

type Handshake = Pin<Box<dyn Future<Output = io::Result<TlsStream>> + Send>>;

impl TlsConnect<Socket> for TlsConnector {
    type Stream = TlsStream;
    type Error = io::Error;
    type Future = Handshake;

    fn connect(self, socket: Socket) -> Handshake {
        Box::pin(async move {
            let name = self.name.ok_or_else(|| {
                io::Error::new(io::ErrorKind::InvalidInput, "no valid host name for TLS")
            })?;
            let connector = tokio_rustls::TlsConnector::from(self.config);
            Ok(TlsStream(Box::new(connector.connect(name, socket).await?)))
        })
    }
}

pub struct TlsStream(Box<tokio_rustls::client::TlsStream<Socket>>);

impl AsyncRead for TlsStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for TlsStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.0).poll_shutdown(cx)
    }
}

impl tokio_postgres::tls::TlsStream for TlsStream {
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

/// Takes any certificate (`prefer`, `require`), but still checks that the server holds
/// its key: the handshake's signatures are verified.
#[derive(Debug)]
struct Unchecked(Arc<CryptoProvider>);

impl ServerCertVerifier for Unchecked {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls12_signature(message, cert, dss, algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let algorithms = &self.0.signature_verification_algorithms;
        rustls::crypto::verify_tls13_signature(message, cert, dss, algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
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
