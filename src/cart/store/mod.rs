//! Carts: one interface over the storage engines. The transaction-level helpers that
//! checkout composes (read the cart, empty it) exist per engine in `sled` and `pg`.

pub mod pg;
pub mod sled;

use crate::cart::model::{Cart, CartLine, CARTS};
use crate::db::{Backend, StoreResult};

pub async fn cart(b: &Backend, user_id: u64) -> StoreResult<Cart> {
    match b {
        Backend::Sled(db) => sled::cart(db, user_id),
        Backend::Pg(pg) => pg::cart(pg, user_id).await,
    }
}

/// Adds `quantity` of a product to its line, or to a new line; never beyond stock.
pub async fn add(
    b: &Backend,
    user_id: u64,
    product_id: u64,
    quantity: i64,
) -> StoreResult<Option<CartLine>> {
    match b {
        Backend::Sled(db) => {
            let new_line = db.next_id(CARTS)?;
            sled::add(db, user_id, product_id, quantity, new_line).await
        }
        Backend::Pg(pg) => pg::change(pg, user_id, product_id, quantity, true).await,
    }
}

/// One less of a product; answers the line, or `None` when it reached 0 and went.
pub async fn decrease(b: &Backend, user_id: u64, product_id: u64) -> StoreResult<Option<CartLine>> {
    match b {
        Backend::Sled(db) => sled::decrease(db, user_id, product_id).await,
        Backend::Pg(pg) => pg::change(pg, user_id, product_id, -1, false).await,
    }
}

/// Removes a line by its id; another user's line is not found.
pub async fn remove_line(b: &Backend, user_id: u64, line_id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::remove_line(db, user_id, line_id).await,
        Backend::Pg(pg) => pg::remove_line(pg, user_id, line_id).await,
    }
}
