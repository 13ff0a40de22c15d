//! Orders after checkout, over either storage engine: reading them, cancelling one (stock
//! back, payment refunded, shipping cancelled), and moving its shipping status.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::order::model::*;
use crate::shipping::model::{ShipState, Shipping};

pub async fn order(b: &Backend, id: u64) -> StoreResult<Option<Order>> {
    match b {
        Backend::Sled(db) => sled::order(db, id),
        Backend::Pg(pg) => pg::order(pg, id).await,
    }
}

/// Cancels a confirmed order whose shipping has not left: stock returned, payment refunded,
/// shipping cancelled. A cancelled or failed order is a conflict.
pub async fn cancel(b: &Backend, order_id: u64, now: i64) -> StoreResult<Order> {
    match b {
        Backend::Sled(db) => sled::cancel(db, order_id, now).await,
        Backend::Pg(pg) => pg::cancel(pg, order_id, now).await,
    }
}

/// An admin's shipping move; `cancelled` cancels the order. Answers the shipping status
/// and whether it changed.
pub async fn set_shipping(
    b: &Backend,
    order_id: u64,
    to: ShipState,
    now: i64,
) -> StoreResult<(Shipping, bool)> {
    match b {
        Backend::Sled(db) => sled::set_shipping(db, order_id, to, now).await,
        Backend::Pg(pg) => pg::set_shipping(pg, order_id, to, now).await,
    }
}

/// Orders of a user, newest first.
pub async fn user_order_ids(b: &Backend, user_id: u64) -> StoreResult<Vec<u64>> {
    match b {
        Backend::Sled(db) => sled::user_order_ids(db, user_id),
        Backend::Pg(pg) => pg::user_order_ids(pg, user_id).await,
    }
}

/// Every order, newest first.
pub async fn all_orders(b: &Backend) -> StoreResult<Vec<Order>> {
    match b {
        Backend::Sled(db) => sled::all_orders(db),
        Backend::Pg(pg) => pg::all_orders(pg).await,
    }
}

/// Orders placed at or after `since`, newest first.
pub async fn orders_since(b: &Backend, since: i64) -> StoreResult<Vec<Order>> {
    match b {
        Backend::Sled(db) => sled::orders_since(db, since),
        Backend::Pg(pg) => pg::orders_since(pg, since).await,
    }
}

/// The `n` newest orders.
pub async fn latest_orders(b: &Backend, n: usize) -> StoreResult<Vec<Order>> {
    match b {
        Backend::Sled(db) => sled::latest_orders(db, n),
        Backend::Pg(pg) => pg::latest_orders(pg, n).await,
    }
}

/// Whether a user has a confirmed order of a product (may review it).
pub async fn has_confirmed_purchase(
    b: &Backend,
    user_id: u64,
    product_id: u64,
) -> StoreResult<bool> {
    match b {
        Backend::Sled(db) => sled::has_confirmed_purchase(db, user_id, product_id),
        Backend::Pg(pg) => pg::has_confirmed_purchase(pg, user_id, product_id).await,
    }
}
