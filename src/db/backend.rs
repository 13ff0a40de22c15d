//! The storage engine a shop runs on: sled in a data folder, or PostgreSQL. Stores take a
//! `&Backend` and dispatch to their engine's implementation; handlers never see which.

use super::pg::PgDb;
use super::{Db, StoreResult};

/// The shop's storage, on one engine or the other. Cheap to clone.
#[derive(Clone)]
pub enum Backend {
    Sled(Db),
    Pg(PgDb),
}

impl From<Db> for Backend {
    fn from(db: Db) -> Self {
        Backend::Sled(db)
    }
}

impl From<PgDb> for Backend {
    fn from(pg: PgDb) -> Self {
        Backend::Pg(pg)
    }
}

impl Backend {
    /// A number that moves after every committed write this instance knows of (on
    /// PostgreSQL also those of other instances, told by notification): response caches
    /// keep an answer while it stays the same.
    pub fn version(&self) -> u64 {
        match self {
            Backend::Sled(db) => db.version(),
            Backend::Pg(pg) => pg.version(),
        }
    }

    /// True when the database answers a read.
    pub async fn healthy(&self) -> bool {
        match self {
            Backend::Sled(db) => db.healthy(),
            Backend::Pg(pg) => pg.healthy().await,
        }
    }

    /// Waits until everything written so far is durable (PostgreSQL commits are).
    pub async fn durable(&self) -> StoreResult<()> {
        match self {
            Backend::Sled(db) => db.durable().await,
            Backend::Pg(_) => Ok(()),
        }
    }

    /// Why the database can no longer make writes durable, once that happened (sled: a
    /// failed flush; the server then stops for its supervisor to restart it).
    pub fn failure(&self) -> Option<String> {
        match self {
            Backend::Sled(db) => db.failure(),
            Backend::Pg(_) => None,
        }
    }

    /// How many shared flushes sled has run (none on PostgreSQL, which commits each write).
    pub fn group_flushes(&self) -> u64 {
        match self {
            Backend::Sled(db) => db.group_flushes(),
            Backend::Pg(_) => 0,
        }
    }

    /// The sled database, for what exists only on sled (commands on a data folder,
    /// integrity checks, engine-specific tests).
    pub fn sled(&self) -> Option<&Db> {
        match self {
            Backend::Sled(db) => Some(db),
            Backend::Pg(_) => None,
        }
    }

    pub fn pg(&self) -> Option<&PgDb> {
        match self {
            Backend::Sled(_) => None,
            Backend::Pg(pg) => Some(pg),
        }
    }

    /// Bytes of the database's files in the data folder (`None` on PostgreSQL, whose
    /// files are the server's).
    pub fn size_on_disk(&self) -> Option<u64> {
        match self {
            Backend::Sled(db) => crate::core::disk::folder_size(db.path()),
            Backend::Pg(_) => None,
        }
    }

    pub fn engine(&self) -> &'static str {
        match self {
            Backend::Sled(_) => "sled",
            Backend::Pg(_) => "postgresql",
        }
    }
}
