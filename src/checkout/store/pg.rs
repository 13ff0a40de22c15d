//! Checkout on PostgreSQL, in one transaction that cannot oversell: the buyer's row is
//! taken first (one checkout or cart change of a user at a time, so a retry with the same
//! key sees the first one's answer); the order, its items, payment, shipping, mail and the
//! emptied cart are written next; the stock is taken last, one conditional `UPDATE` per
//! product in id order (two checkouts never wait for each other in a circle), so that a
//! product's row is held only from there to the commit, not through the order's writes:
//! checkouts of one popular product queued behind each other's whole transaction. The
//! idempotency key's answer is written before the stock is taken, so that the row is
//! held through the stock's `UPDATE` and the `COMMIT` alone. When a product no longer
//! has enough, everything since the savepoint before the order's writes is rolled back,
//! and the out-of-stock refusal is the answer (recorded for the key in its place). The
//! statements with parameters stay prepared on their connection.

use deadpool_postgres::GenericClient;

use crate::cart::store::pg as cart;
use crate::checkout::model::*;
use crate::db::pg::{id, key, micros, ts, PgDb, Prepared};
use crate::db::{StoreError, StoreResult};
use crate::mail::store::pg as mail;
use crate::order::model::{Order, OrderItem, OrderStatus};
use crate::payment::model::{Payment, PaymentStatus};
use crate::product::model::Product;
use crate::product::store::pg as product;
use crate::shipping::store::pg as shipping;

use super::{confirmation, priced, Checkout, Outcome, Plan};

pub async fn checkout(
    pg: &PgDb,
    plan: &Plan,
    answer: impl Fn(&Result<Outcome, StoreError>) -> Answer,
) -> StoreResult<Checkout> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    cart::lock_user(&tx, plan.user_id).await?;
    if let Some(retry) = &plan.retry {
        let earlier = tx
            .pquery_opt(
                "SELECT request, status, body, created_at FROM idempotency_keys \
                 WHERE user_id = $1 AND key = $2",
                &[&key(plan.user_id), &retry.key],
            )
            .await?;
        if let Some(r) = earlier {
            let created_at = micros(r.get(3));
            if plan.now - created_at < IDEMPOTENCY_MICROS {
                let request: String = r.get(0);
                return Ok(if request == retry.request {
                    Checkout::Replay(Answer {
                        status: r.get::<_, i16>(1) as u16,
                        body: r.get(2),
                    })
                } else {
                    Checkout::Mismatch
                });
            }
        }
    }
    let (result, answer) = match place_order(&tx, plan).await? {
        Err(refused) => {
            let result = Err(refused);
            let answer = answer(&result);
            record(&tx, plan, &answer).await?;
            (result, answer)
        }
        Ok((outcome, taking)) => {
            let result = Ok(outcome);
            let confirmed = answer(&result);
            record(&tx, plan, &confirmed).await?;
            match take_stock(&tx, &taking).await? {
                Ok(()) => (result, confirmed),
                Err(refused) => {
                    tx.batch_execute("ROLLBACK TO SAVEPOINT order_writes")
                        .await?;
                    let result = Err(refused);
                    let answer = answer(&result);
                    record(&tx, plan, &answer).await?;
                    (result, answer)
                }
            }
        }
    };
    if result.is_ok() || plan.retry.is_some() {
        pg.commit(tx).await?;
    }
    Ok(Checkout::Ran { result, answer })
}

/// Records the answer for the request's `Idempotency-Key`, if it came with one.
async fn record(tx: &impl GenericClient, plan: &Plan, answer: &Answer) -> StoreResult<()> {
    if let Some(retry) = &plan.retry {
        tx.pexec(
            "INSERT INTO idempotency_keys (user_id, key, request, status, body, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (user_id, key) DO UPDATE SET request = excluded.request, \
             status = excluded.status, body = excluded.body, created_at = excluded.created_at",
            &[
                &key(plan.user_id),
                &retry.key,
                &retry.request,
                &(answer.status as i16),
                &answer.body,
                &ts(plan.now),
            ],
        )
        .await?;
    }
    Ok(())
}

/// Takes the stock of every line, one product at a time in id order (two checkouts never
/// wait for each other in a circle); the first product short of stock is the refusal.
async fn take_stock(
    tx: &impl GenericClient,
    taking: &[(i64, Product)],
) -> StoreResult<Result<(), StoreError>> {
    for (quantity, p) in taking {
        if let Err(refused) = product::take_stock(tx, p, *quantity).await? {
            return Ok(Err(refused));
        }
    }
    Ok(Ok(()))
}

/// Checks the cart, in SPEC's order (empty cart, address, stock, amount), and writes the
/// order after the savepoint `order_writes`; a refusal comes back as the inner error with
/// nothing written. A confirmed order comes with the stock still to take, in product id
/// order (none for a failed payment).
async fn place_order(
    tx: &impl GenericClient,
    plan: &Plan,
) -> StoreResult<Result<(Outcome, Vec<(i64, Product)>), StoreError>> {
    let cart = cart::cart_tx(tx, plan.user_id).await?;
    let ids: Vec<u64> = cart.lines.iter().map(|l| l.product_id).collect();
    let products = product::products_by_ids(tx, &ids).await?;
    let lines: Vec<_> = cart
        .lines
        .iter()
        .filter_map(|l| {
            products
                .get(&l.product_id)
                .filter(|p| p.archived_at.is_none())
                .map(|p| (l.clone(), p))
        })
        .collect();
    if lines.is_empty() {
        return Ok(Err(StoreError::EmptyCart));
    }
    let Some(address) = shipping::user_address(tx, plan.user_id, plan.address_id).await? else {
        return Ok(Err(StoreError::NotFound("Shipping address")));
    };
    let quantities: Vec<(i64, &Product)> = lines.iter().map(|(l, p)| (l.quantity, *p)).collect();
    let total = match priced(plan, &quantities) {
        Ok(total) => total,
        Err(refused) => return Ok(Err(refused)),
    };
    let paid = plan.charge.success;
    let status = if paid {
        OrderStatus::Confirmed
    } else {
        OrderStatus::PaymentFailed
    };
    tx.batch_execute("SAVEPOINT order_writes").await?;
    let f = &address.fields;
    let order_id = id(tx
        .pquery_one(
            "INSERT INTO orders (user_id, total_price, status, created_at, updated_at, \
             shipping_address_id, ship_name, ship_phone, ship_address_line1, \
             ship_address_line2, ship_city, ship_state, ship_postal_code, ship_country) \
             VALUES ($1, ($2::int8)::numeric / 100, $3, $4, $4, $5, $6, $7, $8, $9, $10, $11, \
             $12, $13) RETURNING id",
            &[
                &key(plan.user_id),
                &total,
                &status.as_str(),
                &ts(plan.now),
                &key(address.id),
                &f.name,
                &f.phone,
                &f.address_line1,
                &f.address_line2,
                &f.city,
                &f.state,
                &f.postal_code,
                &f.country,
            ],
        )
        .await?
        .get(0));
    let mut items = Vec::with_capacity(lines.len());
    for (l, p) in &lines {
        let item_id = tx
            .pquery_one(
                "INSERT INTO order_items (order_id, product_id, title, quantity, price) \
                 VALUES ($1, $2, $3, $4, ($5::int8)::numeric / 100) RETURNING id",
                &[&key(order_id), &key(p.id), &p.title, &l.quantity, &p.price],
            )
            .await?
            .get(0);
        items.push(OrderItem {
            id: id(item_id),
            product_id: p.id,
            title: p.title.clone(),
            quantity: l.quantity,
            price: p.price,
        });
    }
    let payment_status = if paid {
        PaymentStatus::Success
    } else {
        PaymentStatus::Failed
    };
    let payment_id = id(tx
        .pquery_one(
            "INSERT INTO payments (order_id, user_id, amount, status, payment_gateway, \
             transaction_id, is_paid, created_at) \
             VALUES ($1, $2, ($3::int8)::numeric / 100, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &key(order_id),
                &key(plan.user_id),
                &total,
                &payment_status.as_str(),
                &plan.gateway,
                &plan.charge.transaction_id,
                &paid,
                &ts(plan.now),
            ],
        )
        .await?
        .get(0));
    let order = Order {
        id: order_id,
        user_id: plan.user_id,
        status,
        total_price: total,
        created_at: plan.now,
        updated_at: plan.now,
        shipping_address_id: address.id,
        address: address.fields.clone(),
        items,
        payment_id,
    };
    let payment = Payment {
        id: payment_id,
        order_id,
        user_id: plan.user_id,
        amount: total,
        status: payment_status,
        payment_gateway: plan.gateway.to_string(),
        transaction_id: plan.charge.transaction_id.clone(),
        is_paid: paid,
        created_at: plan.now,
    };
    if !paid {
        return Ok(Ok((Outcome::PaymentFailed { order, payment }, Vec::new())));
    }
    let shipping = shipping::start(tx, order_id, plan.now).await?;
    cart::clear(tx, plan.user_id).await?;
    let mail = mail::insert(tx, confirmation(&order, plan)).await?;
    let mut taking: Vec<(i64, Product)> = lines
        .iter()
        .map(|(l, p)| (l.quantity, (*p).clone()))
        .collect();
    taking.sort_by_key(|(_, p)| p.id);
    Ok(Ok((
        Outcome::Confirmed {
            order,
            payment,
            shipping,
            mail,
        },
        taking,
    )))
}

/// Removes idempotency records older than 24 hours; answers how many.
pub async fn purge_expired_keys(pg: &PgDb, now: i64) -> StoreResult<u64> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let n = tx
        .execute(
            "DELETE FROM idempotency_keys WHERE created_at <= $1",
            &[&ts(now - IDEMPOTENCY_MICROS)],
        )
        .await?;
    if n > 0 {
        pg.commit(tx).await?;
    }
    Ok(n)
}
