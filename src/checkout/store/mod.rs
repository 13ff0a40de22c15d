//! Checkout in one transaction: the retry key looked up, every line checked against stock,
//! the stock taken, the order with its items, payment, shipping status and confirmation
//! mail written, the cart emptied, and the answer recorded for retries. One interface over
//! the storage engines.

pub mod pg;
pub mod sled;

use crate::checkout::model::Answer;
use crate::db::{Backend, StoreError, StoreResult};
use crate::mail::model::Mail;
use crate::mail::{self, OrderLine, OrderSummary};
use crate::order::model::Order;
use crate::payment::model::{Charge, Payment};
use crate::product::model::Product;
use crate::shipping::model::Shipping;

/// Everything decided before the transaction, since it may run more than once: the
/// payment's outcome, the time, who is buying. Ids are taken inside it.
pub struct Plan {
    pub user_id: u64,
    pub address_id: u64,
    /// The amount the client expects to pay, in cents.
    pub amount: Option<i64>,
    pub gateway: &'static str,
    pub charge: Charge,
    pub now: i64,
    /// The confirmation mail's addressee and wording.
    pub email: String,
    pub name: String,
    pub shop: String,
    pub currency: String,
    /// The client's `Idempotency-Key` and the request body it came with.
    pub retry: Option<Retry>,
}

pub struct Retry {
    pub key: String,
    /// The request body, as canonical JSON.
    pub request: String,
}

/// What a checkout that ran did.
// Made once per request and moved once: a box would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Outcome {
    Confirmed {
        order: Order,
        payment: Payment,
        shipping: Shipping,
        mail: Mail,
    },
    /// Kept for the record; no stock taken, the cart left as it was.
    PaymentFailed { order: Order, payment: Payment },
}

// Made once per request and moved once: a box would buy nothing.
#[allow(clippy::large_enum_variant)]
pub enum Checkout {
    /// This request ran: what it did (or why nothing was done), and its answer, which
    /// was recorded for retries when it came with a key.
    Ran {
        result: Result<Outcome, StoreError>,
        answer: Answer,
    },
    /// An earlier request with this key was answered so.
    Replay(Answer),
    /// The key came before with another request body.
    Mismatch,
}

/// Runs a checkout; `answer` says what the client is told of a result (it runs inside the
/// transaction, so that the recorded answer is the one sent). Refusals (empty cart,
/// unknown address, stock, amount) are results like an order is, and are replayed like
/// one; a storage fault aborts everything and is recorded nowhere.
pub async fn checkout(
    b: &Backend,
    plan: &Plan,
    answer: impl Fn(&Result<Outcome, StoreError>) -> Answer,
) -> StoreResult<Checkout> {
    match b {
        Backend::Sled(db) => sled::checkout(db, plan, answer).await,
        Backend::Pg(pg) => pg::checkout(pg, plan, answer).await,
    }
}

/// Removes idempotency records older than 24 hours; answers how many.
pub async fn purge_expired_keys(b: &Backend, now: i64) -> StoreResult<u64> {
    match b {
        Backend::Sled(db) => sled::purge_expired_keys(db, now),
        Backend::Pg(pg) => pg::purge_expired_keys(pg, now).await,
    }
}

/// SPEC's last two checks, once the cart's live lines and the address are known: every
/// line in stock (quantity, product), then the `amount` the client sent, if any, equal to
/// the total. Answers the total, in cents.
fn priced(plan: &Plan, lines: &[(i64, &Product)]) -> Result<i64, StoreError> {
    if let Some((_, p)) = lines.iter().find(|(q, p)| *q > p.stock_quantity) {
        return Err(StoreError::OutOfStock {
            product_id: p.id,
            title: p.title.clone(),
            left: p.stock_quantity,
        });
    }
    let total: i64 = lines.iter().map(|(q, p)| q * p.price).sum();
    if plan.amount.is_some_and(|a| a != total) {
        return Err(StoreError::AmountMismatch { total });
    }
    Ok(total)
}

/// The confirmation mail of an order.
fn confirmation(order: &Order, plan: &Plan) -> Mail {
    let letter = mail::order_confirmation(&OrderSummary {
        shop: &plan.shop,
        currency: &plan.currency,
        name: &plan.name,
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
    mail::addressed(&plan.email, letter, None, plan.now)
}
