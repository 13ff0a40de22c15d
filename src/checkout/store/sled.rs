//! Checkout on sled, in one transaction and one durable write.

use serde::Deserialize;

use crate::cart;
use crate::checkout::model::*;
use crate::db::migrate::{self, Migration};
use crate::db::{abort, encode, id_key, Db, StoreError, StoreResult, Tx, TxResult};
use crate::mail::{self, model::Mail};
use crate::order::model::{Order, OrderItem, OrderStatus, ORDERS, ORDER_ITEMS};
use crate::payment::model::{Payment, PaymentStatus, PAYMENTS};
use crate::product::{self, model::Product};
use crate::shipping::{self, model::SHIPPING};

use super::{confirmation, priced, Checkout, Outcome, Plan};

/// Runs a checkout; `answer` says what the client is told of a result (it runs inside the
/// transaction, so that the recorded answer is the one sent). Refusals (empty cart,
/// unknown address, stock, amount) are results like an order is, and are replayed like
/// one; a storage fault aborts everything and is recorded nowhere.
pub async fn checkout(
    db: &Db,
    plan: &Plan,
    answer: impl Fn(&Result<Outcome, StoreError>) -> Answer,
) -> StoreResult<Checkout> {
    db.write(|tx| {
        if let Some(retry) = &plan.retry {
            let key = idem_key(plan.user_id, &retry.key);
            if let Some(earlier) = live_record(tx, &key, plan.now)? {
                return Ok(if earlier.request == retry.request {
                    Checkout::Replay(earlier.answer)
                } else {
                    Checkout::Mismatch
                });
            }
        }
        let result = place_order(tx, plan)?;
        let answer = answer(&result);
        if let Some(retry) = &plan.retry {
            let record = IdemRecord {
                request: retry.request.clone(),
                answer: answer.clone(),
                created_at: plan.now,
            };
            let bytes = encode(&record).or_else(abort)?;
            tx.raw_insert(IDEMPOTENCY, &idem_key(plan.user_id, &retry.key), &bytes)?;
        }
        Ok(Checkout::Ran { result, answer })
    })
    .await
}

/// Checks the cart, in SPEC's order (empty cart, address, stock, amount), and writes the
/// order; a refusal comes back as the inner error with nothing written.
fn place_order(tx: &Tx<'_>, plan: &Plan) -> TxResult<Result<Outcome, StoreError>> {
    let cart = cart::store::sled::cart_tx(tx, plan.user_id)?;
    let mut lines = Vec::new();
    for line in &cart.lines {
        if let Some(p) = tx
            .get::<Product>(line.product_id)?
            .filter(|p| p.archived_at.is_none())
        {
            lines.push((line.clone(), p));
        }
    }
    if lines.is_empty() {
        return Ok(Err(StoreError::EmptyCart));
    }
    let Some(address) = shipping::store::sled::user_address(tx, plan.user_id, plan.address_id)?
    else {
        return Ok(Err(StoreError::NotFound("Shipping address")));
    };
    let quantities: Vec<(i64, &Product)> = lines.iter().map(|(l, p)| (l.quantity, p)).collect();
    let total = match priced(plan, &quantities) {
        Ok(total) => total,
        Err(refused) => return Ok(Err(refused)),
    };

    let order_id = tx.next_id(ORDERS)?;
    let first_item = tx.next_ids(ORDER_ITEMS, lines.len() as u64)?;
    let items = lines
        .iter()
        .zip(first_item..)
        .map(|((l, p), id)| OrderItem {
            id,
            product_id: p.id,
            title: p.title.clone(),
            quantity: l.quantity,
            price: p.price,
        })
        .collect();
    let paid = plan.charge.success;
    let mut order = Order {
        id: order_id,
        user_id: plan.user_id,
        status: OrderStatus::Confirmed,
        total_price: total,
        created_at: plan.now,
        updated_at: plan.now,
        shipping_address_id: address.id,
        address: address.fields,
        items,
        payment_id: tx.next_id(PAYMENTS)?,
    };
    let mut payment = Payment {
        id: order.payment_id,
        order_id,
        user_id: plan.user_id,
        amount: total,
        status: PaymentStatus::Success,
        payment_gateway: plan.gateway.to_string(),
        transaction_id: plan.charge.transaction_id.clone(),
        is_paid: true,
        created_at: plan.now,
    };
    for (line, p) in &lines {
        product::store::sled::mark_referenced(tx, p.id)?;
        if paid {
            product::store::sled::change_stock(tx, p.id, -line.quantity)?;
        }
    }
    if !paid {
        order.status = OrderStatus::PaymentFailed;
        payment.status = PaymentStatus::Failed;
        payment.is_paid = false;
        tx.save(&order)?;
        tx.save(&payment)?;
        return Ok(Ok(Outcome::PaymentFailed { order, payment }));
    }
    tx.save(&order)?;
    tx.save(&payment)?;
    let shipping = shipping::store::sled::start(tx, tx.next_id(SHIPPING)?, order_id, plan.now)?;
    cart::store::sled::clear(tx, plan.user_id)?;
    let mail = Mail {
        id: tx.next_id(mail::model::OUTBOX)?,
        ..confirmation(&order, plan)
    };
    mail::store::sled::put(tx, &mail)?;
    Ok(Ok(Outcome::Confirmed {
        order,
        payment,
        shipping,
        mail,
    }))
}

fn idem_key(user_id: u64, key: &str) -> Vec<u8> {
    let mut k = id_key(user_id).to_vec();
    k.extend_from_slice(key.as_bytes());
    k
}

fn expired(record: &IdemRecord, now: i64) -> bool {
    now - record.created_at >= IDEMPOTENCY_MICROS
}

/// The record of a key, unless it is older than 24 hours.
fn live_record(tx: &Tx<'_>, key: &[u8], now: i64) -> TxResult<Option<IdemRecord>> {
    match tx.raw_get(IDEMPOTENCY, key)? {
        Some(bytes) => {
            let record: IdemRecord = crate::db::decode(&bytes).or_else(abort)?;
            Ok((!expired(&record, now)).then_some(record))
        }
        None => Ok(None),
    }
}

/// Removes idempotency records older than 24 hours; answers how many.
pub fn purge_expired_keys(db: &Db, now: i64) -> StoreResult<u64> {
    db.retain(IDEMPOTENCY, |_, v| {
        crate::db::decode::<IdemRecord>(v).is_ok_and(|r| !expired(&r, now))
    })
}

/// The checkout's schema upgrades.
pub const MIGRATIONS: &[Migration] = &[Migration {
    from: 2,
    run: answers_only,
}];

/// An idempotency record as schema 2 kept it.
#[derive(Deserialize)]
struct IdemRecordV1 {
    request: String,
    state: IdemStateV1,
    created_at: i64,
}

#[derive(Deserialize)]
enum IdemStateV1 {
    Running,
    Done { status: u16, body: String },
}

/// Schema 2 to 3: an idempotency record is the answer alone. A record left "running"
/// belonged to a request the stopped server never finished; it goes, so a retry runs.
fn answers_only(db: &Db) -> StoreResult<()> {
    let unfinished = |v: &[u8]| match v.split_first() {
        Some((1, body)) => !matches!(
            migrate::decode_body(body),
            Ok(IdemRecordV1 {
                state: IdemStateV1::Done { .. },
                ..
            })
        ),
        _ => false,
    };
    db.retain(IDEMPOTENCY, |_, v| !unfinished(v))?;
    migrate::rewrite_tree(db, IDEMPOTENCY, 1, |body| {
        let r: IdemRecordV1 = migrate::decode_body(body)?;
        let IdemStateV1::Done { status, body } = r.state else {
            return Err(StoreError::Storage("a running idempotency record".into()));
        };
        encode(&IdemRecord {
            request: r.request,
            answer: Answer { status, body },
            created_at: r.created_at,
        })
    })?;
    Ok(())
}
