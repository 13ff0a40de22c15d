//! Checkout as one transaction across cart, catalog, orders, payments and shipping;
//! cancellation; idempotency records.

use serde::{Deserialize, Serialize};

use crate::cart;
use crate::db::{abort, id_key, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult};
use crate::mail::{self, model::Mail, OrderLine, OrderSummary};
use crate::order::model::*;
use crate::payment::model::{Charge, Payment, PaymentStatus, PAYMENTS_BY_USER};
use crate::product;
use crate::shipping::{
    self,
    model::{ShipState, Shipping},
};

/// Everything decided before the transaction (it may run more than once).
pub struct CheckoutPlan {
    pub user_id: u64,
    pub address_id: u64,
    pub amount: Option<i64>,
    pub order_id: u64,
    pub payment_id: u64,
    pub shipping_id: u64,
    pub first_item_id: u64,
    pub item_ids: u64,
    pub gateway: &'static str,
    pub charge: Charge,
    pub now: i64,
    /// The confirmation email, written with the order: `(mail id, to, greeting name,
    /// shop name, currency)`.
    pub mail: (u64, String, String, String, String),
}

pub enum CheckoutOutcome {
    Confirmed(Order, Payment, Shipping, Mail),
    PaymentFailed(Order, Payment),
}

pub async fn checkout(db: &Db, plan: &CheckoutPlan) -> StoreResult<CheckoutOutcome> {
    db.write(|tx| checkout_tx(tx, plan)).await
}

fn checkout_tx(tx: &Tx<'_>, plan: &CheckoutPlan) -> TxResult<CheckoutOutcome> {
    let cart = cart::store::cart_tx(tx, plan.user_id)?;
    let mut lines = Vec::new();
    for line in &cart.lines {
        if let Some(p) = tx
            .get::<product::model::Product>(line.product_id)?
            .filter(|p| p.archived_at.is_none())
        {
            lines.push((line.clone(), p));
        }
    }
    if lines.is_empty() {
        return abort(StoreError::EmptyCart);
    }
    let Some(address) = shipping::store::user_address(tx, plan.user_id, plan.address_id)? else {
        return abort(StoreError::NotFound("Shipping address"));
    };
    for (line, p) in &lines {
        if line.quantity > p.stock_quantity {
            return abort(StoreError::OutOfStock {
                product_id: p.id,
                title: p.title.clone(),
                left: p.stock_quantity,
            });
        }
    }
    let total: i64 = lines.iter().map(|(l, p)| l.quantity * p.price).sum();
    if plan.amount.is_some_and(|a| a != total) {
        return abort(StoreError::AmountMismatch { total });
    }
    if lines.len() as u64 > plan.item_ids {
        return abort(StoreError::Storage(
            "the cart changed during checkout".into(),
        ));
    }
    let items: Vec<OrderItem> = lines
        .iter()
        .enumerate()
        .map(|(i, (l, p))| OrderItem {
            id: plan.first_item_id + i as u64,
            product_id: p.id,
            title: p.title.clone(),
            quantity: l.quantity,
            price: p.price,
        })
        .collect();
    let mut order = Order {
        id: plan.order_id,
        user_id: plan.user_id,
        status: OrderStatus::Confirmed,
        total_price: total,
        created_at: plan.now,
        updated_at: plan.now,
        shipping_address_id: address.id,
        address: address.fields.clone(),
        items,
        payment_id: plan.payment_id,
    };
    let mut payment = Payment {
        id: plan.payment_id,
        order_id: plan.order_id,
        user_id: plan.user_id,
        amount: total,
        status: PaymentStatus::Success,
        payment_gateway: plan.gateway.to_string(),
        transaction_id: plan.charge.transaction_id.clone(),
        is_paid: true,
        created_at: plan.now,
    };
    tx.link(ORDERS_BY_USER, plan.user_id, order.id)?;
    tx.link(PAYMENTS_BY_USER, plan.user_id, payment.id)?;
    for (line, p) in &lines {
        product::store::mark_referenced(tx, p.id)?;
        if plan.charge.success {
            product::store::change_stock(tx, p.id, -line.quantity)?;
        }
    }
    if !plan.charge.success {
        // Kept for the record; no stock taken, the cart stays as it was.
        order.status = OrderStatus::PaymentFailed;
        payment.status = PaymentStatus::Failed;
        payment.is_paid = false;
        tx.put(order.id, &order)?;
        tx.put(payment.id, &payment)?;
        return Ok(CheckoutOutcome::PaymentFailed(order, payment));
    }
    tx.put(order.id, &order)?;
    tx.put(payment.id, &payment)?;
    let shipping = shipping::store::start(tx, plan.shipping_id, order.id, plan.now)?;
    cart::store::clear(tx, plan.user_id)?;
    let mail = confirmation(&order, plan);
    mail::store::put(tx, &mail)?;
    Ok(CheckoutOutcome::Confirmed(order, payment, shipping, mail))
}

fn confirmation(order: &Order, plan: &CheckoutPlan) -> Mail {
    let (id, to, name, shop, currency) = &plan.mail;
    let letter = mail::order_confirmation(&OrderSummary {
        shop,
        currency,
        name,
        order_id: order.id,
        lines: order
            .items
            .iter()
            .map(|i| OrderLine {
                quantity: i.quantity,
                title: &i.title,
                price: i.price,
            })
            .collect(),
        total: order.total_price,
    });
    Mail {
        id: *id,
        ..mail::addressed(to, letter, None, plan.now)
    }
}

pub fn order(db: &Db, id: u64) -> StoreResult<Option<Order>> {
    db.get(id)
}

pub fn payment(db: &Db, id: u64) -> StoreResult<Option<Payment>> {
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
    let (_, changed) = shipping::store::advance(tx, order_id, ShipState::Cancelled, now)?;
    if !changed {
        return abort(StoreError::AlreadyCancelled);
    }
    for item in &order.items {
        if tx
            .get::<product::model::Product>(item.product_id)?
            .is_some()
        {
            product::store::change_stock(tx, item.product_id, item.quantity)?;
        }
    }
    if let Some(mut p) = tx.get::<Payment>(order.payment_id)? {
        p.status = PaymentStatus::Refunded;
        p.is_paid = false;
        tx.put(p.id, &p)?;
    }
    order.status = OrderStatus::Cancelled;
    order.updated_at = now;
    tx.put(order.id, &order)?;
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
        shipping::store::advance(tx, order_id, to, now)
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

// Idempotency.

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum IdemState {
    Running,
    Done { status: u16, body: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdemRecord {
    /// The request body, as canonical JSON.
    pub request: String,
    pub state: IdemState,
    pub created_at: i64,
}

impl crate::db::Record for IdemRecord {
    const TREE: &'static str = IDEMPOTENCY;
}

pub const IDEMPOTENCY_MICROS: i64 = 24 * 3600 * 1_000_000;

fn idem_key(user_id: u64, key: &str) -> Vec<u8> {
    let mut k = id_key(user_id).to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

pub enum Claim {
    /// This request goes ahead.
    Fresh,
    /// The first answer to replay.
    Replay { status: u16, body: String },
    /// Same key, another body.
    Mismatch,
    /// The first request with this key is still running.
    Running,
}

/// Claims a key for a request, unless a live record (under 24 hours) decides otherwise.
pub async fn claim_key(
    db: &Db,
    user_id: u64,
    key: &str,
    request: &str,
    now: i64,
) -> StoreResult<Claim> {
    let k = idem_key(user_id, key);
    db.write(|tx| {
        if let Some(bytes) = tx.raw_get(IDEMPOTENCY, &k)? {
            let rec: IdemRecord = crate::db::decode(&bytes).or_else(abort)?;
            if now - rec.created_at < IDEMPOTENCY_MICROS {
                return Ok(match (&rec.state, rec.request == request) {
                    (_, false) => Claim::Mismatch,
                    (IdemState::Running, true) => Claim::Running,
                    (IdemState::Done { status, body }, true) => Claim::Replay {
                        status: *status,
                        body: body.clone(),
                    },
                });
            }
        }
        let rec = IdemRecord {
            request: request.to_string(),
            state: IdemState::Running,
            created_at: now,
        };
        tx.raw_insert(IDEMPOTENCY, &k, &crate::db::encode(&rec).or_else(abort)?)?;
        Ok(Claim::Fresh)
    })
    .await
}

/// Records the answer to replay, or (`None`) forgets the key so a retry runs again.
pub async fn finish_key(
    db: &Db,
    user_id: u64,
    key: &str,
    answer: Option<(u16, String)>,
) -> StoreResult<()> {
    let k = idem_key(user_id, key);
    db.write(|tx| {
        let Some(bytes) = tx.raw_get(IDEMPOTENCY, &k)? else {
            return Ok(());
        };
        match &answer {
            None => tx.raw_remove(IDEMPOTENCY, &k),
            Some((status, body)) => {
                let mut rec: IdemRecord = crate::db::decode(&bytes).or_else(abort)?;
                rec.state = IdemState::Done {
                    status: *status,
                    body: body.clone(),
                };
                tx.raw_insert(IDEMPOTENCY, &k, &crate::db::encode(&rec).or_else(abort)?)
            }
        }
    })
    .await
}

/// Removes idempotency records older than 24 hours; answers how many.
pub fn purge_expired_keys(db: &Db, now: i64) -> StoreResult<u64> {
    db.retain(IDEMPOTENCY, |_, v| {
        crate::db::decode::<IdemRecord>(v).is_ok_and(|r| now - r.created_at < IDEMPOTENCY_MICROS)
    })
}
