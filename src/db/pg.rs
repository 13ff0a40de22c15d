//! PostgreSQL storage: a pool of connections and the shop's catalog version. Knows no
//! domain; each domain's `store/pg.rs` writes its SQL against it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use deadpool_postgres::{Object, Pool};

use super::{StoreError, StoreResult};

struct Inner {
    pool: Pool,
    /// Moves after every committed write of this instance and every one announced by
    /// another (see `Backend::version`).
    version: AtomicU64,
}

/// A PostgreSQL database serving the shop. Cheap to clone.
#[derive(Clone)]
pub struct PgDb {
    inner: Arc<Inner>,
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        StoreError::Storage(format!("postgres: {e}"))
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        StoreError::Storage(format!("postgres pool: {e}"))
    }
}

impl PgDb {
    pub fn from_pool(pool: Pool) -> Self {
        PgDb {
            inner: Arc::new(Inner {
                pool,
                version: AtomicU64::new(0),
            }),
        }
    }

    /// A connection from the pool.
    pub async fn client(&self) -> StoreResult<Object> {
        Ok(self.inner.pool.get().await?)
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
}

/// The answer of a store function whose PostgreSQL side is not written yet.
pub fn pending<T>(what: &str) -> StoreResult<T> {
    Err(StoreError::Storage(format!(
        "{what} is not served from PostgreSQL yet"
    )))
}
