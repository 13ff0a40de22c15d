//! Checkout: a cart becomes an order in one transaction, safe to retry with an
//! `Idempotency-Key`. It composes the stores of every domain it touches (cart, catalog,
//! shipping, payments, orders, mail).

pub mod model;
pub mod routes;
pub mod store;

pub use store::sled::MIGRATIONS;
