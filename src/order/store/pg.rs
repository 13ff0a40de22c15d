//! Orders on PostgreSQL: `orders` (with the shipping address copied into `ship_*`),
//! `order_items`, and the payment and shipping rows that go with them.

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::db::pg::{id, key, micros, ts, PgDb};
use crate::db::{StoreError, StoreResult};
use crate::order::model::*;
use crate::shipping::model::{AddressFields, ShipState, Shipping};
use crate::shipping::store::pg as shipping;

const ORDER: &str = "o.id, o.user_id, o.status, (o.total_price * 100)::int8, o.created_at, \
    o.updated_at, o.shipping_address_id, o.ship_name, o.ship_phone, o.ship_address_line1, \
    o.ship_address_line2, o.ship_city, o.ship_state, o.ship_postal_code, o.ship_country, \
    COALESCE((SELECT py.id FROM payments py WHERE py.order_id = o.id), 0)";

pub fn status_of(text: &str) -> OrderStatus {
    match text {
        "payment_failed" => OrderStatus::PaymentFailed,
        "cancelled" => OrderStatus::Cancelled,
        _ => OrderStatus::Confirmed,
    }
}

fn order_of(r: &Row, items: Vec<OrderItem>) -> Order {
    Order {
        id: id(r.get(0)),
        user_id: id(r.get(1)),
        status: status_of(r.get(2)),
        total_price: r.get(3),
        created_at: micros(r.get(4)),
        updated_at: micros(r.get(5)),
        shipping_address_id: id(r.get(6)),
        address: AddressFields {
            name: r.get(7),
            phone: r.get(8),
            address_line1: r.get(9),
            address_line2: r.get(10),
            city: r.get(11),
            state: r.get(12),
            postal_code: r.get(13),
            country: r.get(14),
        },
        items,
        payment_id: id(r.get(15)),
    }
}

/// Orders with their items, from rows of `ORDER`.
async fn with_items(c: &impl GenericClient, rows: &[Row]) -> StoreResult<Vec<Order>> {
    let ids: Vec<i64> = rows.iter().map(|r| r.get(0)).collect();
    let mut items: HashMap<i64, Vec<OrderItem>> = HashMap::new();
    if !ids.is_empty() {
        for r in c
            .query(
                "SELECT order_id, id, product_id, title, quantity, (price * 100)::int8 \
                 FROM order_items WHERE order_id = ANY($1) ORDER BY id",
                &[&ids],
            )
            .await?
        {
            items.entry(r.get(0)).or_default().push(OrderItem {
                id: id(r.get(1)),
                product_id: r.get::<_, Option<i64>>(2).map(id).unwrap_or(0),
                title: r.get(3),
                quantity: r.get(4),
                price: r.get(5),
            });
        }
    }
    Ok(rows
        .iter()
        .map(|r| order_of(r, items.remove(&r.get::<_, i64>(0)).unwrap_or_default()))
        .collect())
}

async fn find(c: &impl GenericClient, oid: u64, lock: bool) -> StoreResult<Option<Order>> {
    let lock = if lock { " FOR UPDATE OF o" } else { "" };
    let rows = c
        .query(
            &format!("SELECT {ORDER} FROM orders o WHERE o.id = $1{lock}"),
            &[&key(oid)],
        )
        .await?;
    Ok(with_items(c, &rows).await?.pop())
}

pub async fn order(pg: &PgDb, oid: u64) -> StoreResult<Option<Order>> {
    find(&pg.client().await?, oid, false).await
}

async fn cancel_tx(c: &impl GenericClient, order_id: u64, now: i64) -> StoreResult<Order> {
    let Some(mut order) = find(c, order_id, true).await? else {
        return Err(StoreError::NotFound("Order"));
    };
    if order.status != OrderStatus::Confirmed {
        return Err(StoreError::NotCancellable(order.status.as_str()));
    }
    let (_, changed) = shipping::advance(c, order_id, ShipState::Cancelled, now).await?;
    if !changed {
        return Err(StoreError::AlreadyCancelled);
    }
    // Stock back, the product rows taken in id order as checkout takes them.
    let mut back: Vec<(i64, i64)> = order
        .items
        .iter()
        .filter(|i| i.product_id > 0)
        .map(|i| (key(i.product_id), i.quantity))
        .collect();
    back.sort();
    let ids: Vec<i64> = back.iter().map(|b| b.0).collect();
    c.query(
        "SELECT id FROM products WHERE id = ANY($1) ORDER BY id FOR UPDATE",
        &[&ids],
    )
    .await?;
    for (pid, quantity) in &back {
        c.execute(
            "UPDATE products SET stock_quantity = stock_quantity + $2 WHERE id = $1",
            &[pid, quantity],
        )
        .await?;
    }
    c.execute(
        "UPDATE payments SET status = 'refunded', is_paid = false WHERE order_id = $1",
        &[&key(order_id)],
    )
    .await?;
    c.execute(
        "UPDATE orders SET status = 'cancelled', updated_at = $2 WHERE id = $1",
        &[&key(order_id), &ts(now)],
    )
    .await?;
    order.status = OrderStatus::Cancelled;
    order.updated_at = now;
    Ok(order)
}

pub async fn cancel(pg: &PgDb, order_id: u64, now: i64) -> StoreResult<Order> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let order = cancel_tx(&tx, order_id, now).await?;
    pg.commit(tx).await?;
    Ok(order)
}

pub async fn set_shipping(
    pg: &PgDb,
    order_id: u64,
    to: ShipState,
    now: i64,
) -> StoreResult<(Shipping, bool)> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let Some(status) = tx
        .query_opt(
            "SELECT status FROM orders WHERE id = $1 FOR UPDATE",
            &[&key(order_id)],
        )
        .await?
    else {
        return Err(StoreError::NotFound("Order"));
    };
    if status_of(status.get(0)) == OrderStatus::PaymentFailed {
        return Err(StoreError::NoShipping);
    }
    let current = shipping::find_shipping(&tx, order_id, false).await?;
    let out = if to == ShipState::Cancelled
        && current
            .as_ref()
            .is_some_and(|s| s.status != ShipState::Cancelled)
    {
        cancel_tx(&tx, order_id, now).await?;
        match shipping::find_shipping(&tx, order_id, false).await? {
            Some(s) => (s, true),
            None => return Err(StoreError::Storage("shipping vanished".into())),
        }
    } else {
        shipping::advance(&tx, order_id, to, now).await?
    };
    if out.1 {
        pg.commit(tx).await?;
    }
    Ok(out)
}

pub async fn user_order_ids(pg: &PgDb, user_id: u64) -> StoreResult<Vec<u64>> {
    let c = pg.client().await?;
    Ok(c.query(
        "SELECT id FROM orders WHERE user_id = $1 ORDER BY id DESC",
        &[&key(user_id)],
    )
    .await?
    .iter()
    .map(|r| id(r.get(0)))
    .collect())
}

async fn orders_where(
    pg: &PgDb,
    tail: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> StoreResult<Vec<Order>> {
    let c = pg.client().await?;
    let rows = c
        .query(&format!("SELECT {ORDER} FROM orders o {tail}"), params)
        .await?;
    with_items(&c, &rows).await
}

pub async fn all_orders(pg: &PgDb) -> StoreResult<Vec<Order>> {
    orders_where(pg, "ORDER BY o.id DESC", &[]).await
}

pub async fn orders_since(pg: &PgDb, since: i64) -> StoreResult<Vec<Order>> {
    orders_where(
        pg,
        "WHERE o.created_at >= $1 ORDER BY o.id DESC",
        &[&ts(since)],
    )
    .await
}

pub async fn latest_orders(pg: &PgDb, n: usize) -> StoreResult<Vec<Order>> {
    orders_where(
        pg,
        "ORDER BY o.id DESC LIMIT $1",
        &[&(n.min(i64::MAX as usize) as i64)],
    )
    .await
}

pub async fn has_confirmed_purchase(pg: &PgDb, user_id: u64, product_id: u64) -> StoreResult<bool> {
    let c = pg.client().await?;
    Ok(c.query_one(
        "SELECT EXISTS (SELECT 1 FROM orders o JOIN order_items i ON i.order_id = o.id \
             WHERE o.user_id = $1 AND o.status = 'confirmed' AND i.product_id = $2)",
        &[&key(user_id), &key(product_id)],
    )
    .await?
    .get(0))
}
