//! The outbox: one interface over the storage engines.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::mail::model::{Delivery, Mail};

/// Keeps a mail in the outbox, with a new id.
pub async fn record(b: &Backend, mail: Mail) -> StoreResult<Mail> {
    match b {
        Backend::Sled(db) => sled::record(db, mail).await,
        Backend::Pg(pg) => pg::record(pg, mail).await,
    }
}

/// The latest mails, newest first, optionally only those to one address.
pub async fn latest(b: &Backend, to: Option<&str>, limit: usize) -> StoreResult<Vec<Mail>> {
    match b {
        Backend::Sled(db) => sled::latest(db, to, limit),
        Backend::Pg(pg) => pg::latest(pg, to, limit).await,
    }
}

/// Queued mails due at `now`, the earliest first, at most `limit`. On PostgreSQL each one
/// is also leased to this instance for a while (`pg::LEASE_MICROS`), so that of several
/// instances one sends it; an instance that stops mid-send leaves it to be retried then.
pub async fn due(b: &Backend, now: i64, limit: usize) -> StoreResult<Vec<Mail>> {
    match b {
        Backend::Sled(db) => sled::due(db, now, limit),
        Backend::Pg(pg) => pg::due(pg, now, limit).await,
    }
}

/// Records where a mail's delivery stands, moving it in (or out of) the queue.
pub async fn set_delivery(b: &Backend, id: u64, delivery: Delivery) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::set_delivery(db, id, delivery).await,
        Backend::Pg(pg) => pg::set_delivery(pg, id, delivery).await,
    }
}
