//! Payment reads, over either storage engine; payments are written by checkout and by
//! cancelling an order.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::payment::model::Payment;

pub async fn payment(b: &Backend, id: u64) -> StoreResult<Option<Payment>> {
    match b {
        Backend::Sled(db) => sled::payment(db, id),
        Backend::Pg(pg) => pg::payment(pg, id).await,
    }
}

/// One page of a user's payments, newest first, and how many there are.
pub async fn user_payments(
    b: &Backend,
    user_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Payment>, u64)> {
    match b {
        Backend::Sled(db) => sled::user_payments(db, user_id, offset, limit),
        Backend::Pg(pg) => pg::user_payments(pg, user_id, offset, limit).await,
    }
}
