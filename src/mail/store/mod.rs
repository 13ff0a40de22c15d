//! The outbox: one interface over the storage engines.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::mail::model::Mail;

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
