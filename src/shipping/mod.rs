//! Shipping: the user's addresses and each order's shipping status with its history.

pub mod model;
pub mod routes;
pub mod store;
