//! Addresses and shipping statuses on PostgreSQL: `shipping_addresses`,
//! `shipping_statuses` and `shipping_status_history` as `export-pg` writes them.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::db::pg::{id, key, micros, ts, PgDb, Prepared};
use crate::db::{StoreError, StoreResult};
use crate::shipping::model::*;

const ADDRESS: &str = "id, user_id, name, phone, address_line1, address_line2, city, state, \
                       postal_code, country, is_deleted";

fn address_of(r: &Row) -> Address {
    Address {
        id: id(r.get(0)),
        user_id: id(r.get(1)),
        fields: AddressFields {
            name: r.get(2),
            phone: r.get(3),
            address_line1: r.get(4),
            address_line2: r.get(5),
            city: r.get(6),
            state: r.get(7),
            postal_code: r.get(8),
            country: r.get(9),
        },
        deleted: r.get(10),
    }
}

pub fn state_of(text: &str) -> ShipState {
    match text {
        "processing" => ShipState::Processing,
        "shipped" => ShipState::Shipped,
        "delivered" => ShipState::Delivered,
        "cancelled" => ShipState::Cancelled,
        _ => ShipState::Pending,
    }
}

async fn find(c: &impl GenericClient, aid: u64, lock: bool) -> StoreResult<Option<Address>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .pquery_opt(
            &format!(
                "SELECT {ADDRESS} FROM shipping_addresses WHERE id = $1 AND NOT is_deleted{lock}"
            ),
            &[&key(aid)],
        )
        .await?;
    Ok(row.as_ref().map(address_of))
}

pub async fn address(pg: &PgDb, aid: u64) -> StoreResult<Option<Address>> {
    find(&pg.client().await?, aid, false).await
}

/// A live address of `user_id` inside a transaction (checkout).
pub async fn user_address(
    c: &impl GenericClient,
    user_id: u64,
    aid: u64,
) -> StoreResult<Option<Address>> {
    Ok(find(c, aid, false).await?.filter(|a| a.user_id == user_id))
}

pub async fn addresses(pg: &PgDb, user_id: u64) -> StoreResult<Vec<Address>> {
    let c = pg.client().await?;
    let rows = c
        .pquery(
            &format!(
                "SELECT {ADDRESS} FROM shipping_addresses \
                 WHERE user_id = $1 AND NOT is_deleted ORDER BY id"
            ),
            &[&key(user_id)],
        )
        .await?;
    Ok(rows.iter().map(address_of).collect())
}

fn field_params(f: &AddressFields) -> [&(dyn tokio_postgres::types::ToSql + Sync); 8] {
    [
        &f.name,
        &f.phone,
        &f.address_line1,
        &f.address_line2,
        &f.city,
        &f.state,
        &f.postal_code,
        &f.country,
    ]
}

pub async fn create_address(
    pg: &PgDb,
    user_id: u64,
    fields: AddressFields,
) -> StoreResult<Address> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let uid = key(user_id);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&uid];
    params.extend(field_params(&fields));
    let row = tx
        .pquery_one(
            "INSERT INTO shipping_addresses (user_id, name, phone, address_line1, \
             address_line2, city, state, postal_code, country, is_deleted) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, false) RETURNING id",
            &params,
        )
        .await?;
    pg.commit(tx).await?;
    Ok(Address {
        id: id(row.get(0)),
        user_id,
        fields,
        deleted: false,
    })
}

pub async fn update_address<E>(
    pg: &PgDb,
    aid: u64,
    make: impl Fn(&AddressFields) -> Result<AddressFields, E>,
) -> StoreResult<Result<Address, E>> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let Some(mut a) = find(&tx, aid, true).await? else {
        return Err(StoreError::NotFound("Address"));
    };
    match make(&a.fields) {
        Ok(fields) => a.fields = fields,
        Err(refused) => return Ok(Err(refused)),
    }
    let k = key(aid);
    let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&k];
    params.extend(field_params(&a.fields));
    tx.pexec(
        "UPDATE shipping_addresses SET name = $2, phone = $3, address_line1 = $4, \
         address_line2 = $5, city = $6, state = $7, postal_code = $8, country = $9 \
         WHERE id = $1",
        &params,
    )
    .await?;
    pg.commit(tx).await?;
    Ok(Ok(a))
}

pub async fn delete_address(pg: &PgDb, aid: u64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let n = tx
        .pexec(
            "UPDATE shipping_addresses SET is_deleted = true WHERE id = $1 AND NOT is_deleted",
            &[&key(aid)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("Address"));
    }
    pg.commit(tx).await
}

/// The shipping status of an order with its history; `lock` takes its row.
pub async fn find_shipping(
    c: &impl GenericClient,
    order_id: u64,
    lock: bool,
) -> StoreResult<Option<Shipping>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let Some(row) = c
        .pquery_opt(
            &format!(
                "SELECT id, status, updated_at FROM shipping_statuses WHERE order_id = $1{lock}"
            ),
            &[&key(order_id)],
        )
        .await?
    else {
        return Ok(None);
    };
    let history = c
        .pquery(
            "SELECT status, at FROM shipping_status_history WHERE order_id = $1 ORDER BY id",
            &[&key(order_id)],
        )
        .await?
        .iter()
        .map(|r| (state_of(r.get(0)), micros(r.get(1))))
        .collect();
    Ok(Some(Shipping {
        id: id(row.get(0)),
        order_id,
        status: state_of(row.get(1)),
        updated_at: micros(row.get(2)),
        history,
    }))
}

pub async fn shipping(pg: &PgDb, order_id: u64) -> StoreResult<Option<Shipping>> {
    find_shipping(&pg.client().await?, order_id, false).await
}

/// Starts an order's shipping, `pending` (checkout, inside its transaction).
pub async fn start(c: &impl GenericClient, order_id: u64, now: i64) -> StoreResult<Shipping> {
    let row = c
        .pquery_one(
            "INSERT INTO shipping_statuses (order_id, status, updated_at) \
             VALUES ($1, 'pending', $2) RETURNING id",
            &[&key(order_id), &ts(now)],
        )
        .await?;
    c.pexec(
        "INSERT INTO shipping_status_history (order_id, status, at) VALUES ($1, 'pending', $2)",
        &[&key(order_id), &ts(now)],
    )
    .await?;
    Ok(Shipping {
        id: id(row.get(0)),
        order_id,
        status: ShipState::Pending,
        updated_at: now,
        history: vec![(ShipState::Pending, now)],
    })
}

/// Moves a shipping status; `Ok(false)` when it already was `to` (nothing changes).
/// Forward only, `cancelled` only from `pending` or `processing`: otherwise a conflict.
pub async fn advance(
    c: &impl GenericClient,
    order_id: u64,
    to: ShipState,
    now: i64,
) -> StoreResult<(Shipping, bool)> {
    let Some(mut s) = find_shipping(c, order_id, true).await? else {
        return Err(StoreError::NoShipping);
    };
    if s.status == to {
        return Ok((s, false));
    }
    let allowed = match to {
        ShipState::Cancelled => s.status.cancellable(),
        _ => s.status != ShipState::Cancelled && to > s.status,
    };
    if !allowed {
        return Err(StoreError::InvalidTransition {
            from: s.status.as_str(),
            to: to.as_str(),
        });
    }
    c.pexec(
        "UPDATE shipping_statuses SET status = $2, updated_at = $3 WHERE order_id = $1",
        &[&key(order_id), &to.as_str(), &ts(now)],
    )
    .await?;
    c.pexec(
        "INSERT INTO shipping_status_history (order_id, status, at) VALUES ($1, $2, $3)",
        &[&key(order_id), &to.as_str(), &ts(now)],
    )
    .await?;
    s.status = to;
    s.updated_at = now;
    s.history.push((to, now));
    Ok((s, true))
}
