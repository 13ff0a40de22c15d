//! Payment reads on sled.

use crate::db::{Db, KeyOrder, StoreResult};
use crate::payment::model::{Payment, PAYMENTS_BY_USER};

pub fn payment(db: &Db, id: u64) -> StoreResult<Option<Payment>> {
    db.get(id)
}

/// One page of a user's payments, newest first, and how many there are.
pub fn user_payments(
    db: &Db,
    user_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Payment>, u64)> {
    let ids = db.children(PAYMENTS_BY_USER, user_id, KeyOrder::Descending)?;
    let mut page = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        if let Some(p) = db.get::<Payment>(*id)? {
            page.push(p);
        }
    }
    Ok((page, ids.len() as u64))
}
