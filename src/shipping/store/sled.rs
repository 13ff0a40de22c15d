//! Addresses and shipping statuses on sled.

use crate::db::{abort, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult};
use crate::shipping::model::*;

pub fn address(db: &Db, id: u64) -> StoreResult<Option<Address>> {
    Ok(db.get::<Address>(id)?.filter(|a| !a.deleted))
}

/// A live address of `user_id` inside a transaction (checkout).
pub fn user_address(tx: &Tx<'_>, user_id: u64, id: u64) -> TxResult<Option<Address>> {
    Ok(tx
        .get::<Address>(id)?
        .filter(|a| !a.deleted && a.user_id == user_id))
}

pub fn addresses(db: &Db, user_id: u64) -> StoreResult<Vec<Address>> {
    let ids = db.children(ADDRESSES_BY_USER, user_id, KeyOrder::Ascending)?;
    let mut out = Vec::new();
    for id in ids {
        if let Some(a) = address(db, id)? {
            out.push(a);
        }
    }
    Ok(out)
}

pub async fn create_address(db: &Db, user_id: u64, fields: AddressFields) -> StoreResult<Address> {
    let a = Address {
        id: db.next_id(ADDRESSES)?,
        user_id,
        fields,
        deleted: false,
    };
    db.write(|tx| tx.save(&a)).await?;
    Ok(a)
}

/// Replaces an address's fields with what `make` builds from the current ones; when
/// `make` refuses, nothing changes and its reason comes back as the inner error.
pub async fn update_address<E>(
    db: &Db,
    id: u64,
    make: impl Fn(&AddressFields) -> Result<AddressFields, E>,
) -> StoreResult<Result<Address, E>> {
    db.write(|tx| {
        let Some(mut a) = tx.get::<Address>(id)?.filter(|a| !a.deleted) else {
            return abort(StoreError::NotFound("Address"));
        };
        match make(&a.fields) {
            Ok(fields) => a.fields = fields,
            Err(refused) => return Ok(Err(refused)),
        }
        tx.save(&a)?;
        Ok(Ok(a))
    })
    .await
}

/// Hides an address; orders keep their copy and their reference.
pub async fn delete_address(db: &Db, id: u64) -> StoreResult<()> {
    db.write(|tx| {
        let Some(mut a) = tx.get::<Address>(id)?.filter(|a| !a.deleted) else {
            return abort(StoreError::NotFound("Address"));
        };
        a.deleted = true;
        tx.save(&a)
    })
    .await
}

pub fn shipping(db: &Db, order_id: u64) -> StoreResult<Option<Shipping>> {
    db.get(order_id)
}

pub fn start(tx: &Tx<'_>, id: u64, order_id: u64, now: i64) -> TxResult<Shipping> {
    let s = Shipping {
        id,
        order_id,
        status: ShipState::Pending,
        updated_at: now,
        history: vec![(ShipState::Pending, now)],
    };
    tx.put(order_id, &s)?;
    Ok(s)
}

/// Moves a shipping status; `Ok(false)` when it already was `to` (nothing changes).
/// Forward only, `cancelled` only from `pending` or `processing`: otherwise a conflict.
pub fn advance(tx: &Tx<'_>, order_id: u64, to: ShipState, now: i64) -> TxResult<(Shipping, bool)> {
    let Some(mut s) = tx.get::<Shipping>(order_id)? else {
        return abort(StoreError::NoShipping);
    };
    if s.status == to {
        return Ok((s, false));
    }
    let allowed = match to {
        ShipState::Cancelled => s.status.cancellable(),
        _ => s.status != ShipState::Cancelled && to > s.status,
    };
    if !allowed {
        return abort(StoreError::InvalidTransition {
            from: s.status.as_str(),
            to: to.as_str(),
        });
    }
    s.status = to;
    s.updated_at = now;
    s.history.push((to, now));
    tx.put(order_id, &s)?;
    Ok((s, true))
}
