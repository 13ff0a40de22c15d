//! The cart: one record per user, so checkout can read and empty it inside a transaction.

pub mod model;
pub mod routes;
pub mod store;
