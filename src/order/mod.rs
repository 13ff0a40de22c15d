//! Orders: checkout in one transaction, order history, cancellation, idempotent retries,
//! and the shipping status changes an order goes through.

pub mod model;
pub mod routes;
pub mod store;
