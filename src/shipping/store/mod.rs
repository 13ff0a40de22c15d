//! Addresses and shipping statuses: one interface over the storage engines. The
//! transaction-level helpers that checkout and orders compose (an address of the buyer,
//! start and advance shipping) exist per engine.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::shipping::model::*;

/// A live address.
pub async fn address(b: &Backend, id: u64) -> StoreResult<Option<Address>> {
    match b {
        Backend::Sled(db) => sled::address(db, id),
        Backend::Pg(pg) => pg::address(pg, id).await,
    }
}

/// A user's live addresses, oldest first.
pub async fn addresses(b: &Backend, user_id: u64) -> StoreResult<Vec<Address>> {
    match b {
        Backend::Sled(db) => sled::addresses(db, user_id),
        Backend::Pg(pg) => pg::addresses(pg, user_id).await,
    }
}

pub async fn create_address(
    b: &Backend,
    user_id: u64,
    fields: AddressFields,
) -> StoreResult<Address> {
    match b {
        Backend::Sled(db) => sled::create_address(db, user_id, fields).await,
        Backend::Pg(pg) => pg::create_address(pg, user_id, fields).await,
    }
}

/// Replaces an address's fields with what `make` builds from the current ones; when
/// `make` refuses, nothing changes and its reason comes back as the inner error.
pub async fn update_address<E>(
    b: &Backend,
    id: u64,
    make: impl Fn(&AddressFields) -> Result<AddressFields, E>,
) -> StoreResult<Result<Address, E>> {
    match b {
        Backend::Sled(db) => sled::update_address(db, id, make).await,
        Backend::Pg(pg) => pg::update_address(pg, id, make).await,
    }
}

/// Hides an address; orders keep their copy and their reference.
pub async fn delete_address(b: &Backend, id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::delete_address(db, id).await,
        Backend::Pg(pg) => pg::delete_address(pg, id).await,
    }
}

/// The shipping status of an order.
pub async fn shipping(b: &Backend, order_id: u64) -> StoreResult<Option<Shipping>> {
    match b {
        Backend::Sled(db) => sled::shipping(db, order_id),
        Backend::Pg(pg) => pg::shipping(pg, order_id).await,
    }
}
