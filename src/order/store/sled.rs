//! Orders on sled: reading them, cancelling one, moving its shipping status.

use crate::db::{abort, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult};
use crate::order::model::*;
use crate::payment::model::{Payment, PaymentStatus};
use crate::product;
use crate::shipping::{
    self,
    model::{ShipState, Shipping},
};

pub fn order(db: &Db, id: u64) -> StoreResult<Option<Order>> {
    db.get(id)
}

/// Cancels a confirmed order whose shipping has not left: stock returned, payment refunded,
/// shipping cancelled. A cancelled or failed order is a conflict.
fn cancel_tx(tx: &Tx<'_>, order_id: u64, now: i64) -> TxResult<Order> {
    let Some(mut order) = tx.get::<Order>(order_id)? else {
        return abort(StoreError::NotFound("Order"));
    };
    if order.status != OrderStatus::Confirmed {
        return abort(StoreError::NotCancellable(order.status.as_str()));
    }
    let (_, changed) = shipping::store::sled::advance(tx, order_id, ShipState::Cancelled, now)?;
    if !changed {
        return abort(StoreError::AlreadyCancelled);
    }
    for item in &order.items {
        if tx
            .get::<product::model::Product>(item.product_id)?
            .is_some()
        {
            product::store::sled::change_stock(tx, item.product_id, item.quantity)?;
        }
    }
    if let Some(mut p) = tx.get::<Payment>(order.payment_id)? {
        p.status = PaymentStatus::Refunded;
        p.is_paid = false;
        tx.save(&p)?;
    }
    order.status = OrderStatus::Cancelled;
    order.updated_at = now;
    tx.save(&order)?;
    Ok(order)
}

pub async fn cancel(db: &Db, order_id: u64, now: i64) -> StoreResult<Order> {
    db.write(|tx| cancel_tx(tx, order_id, now)).await
}

/// An admin's shipping move; `cancelled` cancels the order. Answers the shipping status
/// and whether it changed.
pub async fn set_shipping(
    db: &Db,
    order_id: u64,
    to: ShipState,
    now: i64,
) -> StoreResult<(Shipping, bool)> {
    db.write(|tx| {
        let Some(order) = tx.get::<Order>(order_id)? else {
            return abort(StoreError::NotFound("Order"));
        };
        if order.status == OrderStatus::PaymentFailed {
            return abort(StoreError::NoShipping);
        }
        let current = tx.get::<Shipping>(order_id)?;
        if to == ShipState::Cancelled
            && current
                .as_ref()
                .is_some_and(|s| s.status != ShipState::Cancelled)
        {
            cancel_tx(tx, order_id, now)?;
            let s = tx.get::<Shipping>(order_id)?;
            return match s {
                Some(s) => Ok((s, true)),
                None => abort(StoreError::Storage("shipping vanished".into())),
            };
        }
        shipping::store::sled::advance(tx, order_id, to, now)
    })
    .await
}

/// Orders of a user, newest first.
pub fn user_order_ids(db: &Db, user_id: u64) -> StoreResult<Vec<u64>> {
    db.children(ORDERS_BY_USER, user_id, KeyOrder::Descending)
}

pub fn all_orders(db: &Db) -> StoreResult<Vec<Order>> {
    db.scan(KeyOrder::Descending)
}

/// Orders placed at or after `since`, newest first. Order ids grow with time, so the walk
/// stops at the first older order instead of reading every order of the shop.
pub fn orders_since(db: &Db, since: i64) -> StoreResult<Vec<Order>> {
    db.newest_while(|o: &Order| o.created_at >= since)
}

/// The `n` newest orders.
pub fn latest_orders(db: &Db, n: usize) -> StoreResult<Vec<Order>> {
    let mut taken = 0;
    db.newest_while(|_: &Order| {
        taken += 1;
        taken <= n
    })
}

/// Whether a user has a confirmed order of a product (may review it).
pub fn has_confirmed_purchase(db: &Db, user_id: u64, product_id: u64) -> StoreResult<bool> {
    for id in user_order_ids(db, user_id)? {
        if let Some(o) = db.get::<Order>(id)? {
            if o.status == OrderStatus::Confirmed
                && o.items.iter().any(|i| i.product_id == product_id)
            {
                return Ok(true);
            }
        }
    }
    Ok(false)
}
