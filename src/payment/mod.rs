//! Payments: records, the gateway seam, and the simulated `mock` gateway.

pub mod model;
pub mod routes;
pub mod store;
