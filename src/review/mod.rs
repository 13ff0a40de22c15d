//! Reviews of products, by customers with a confirmed order of the product.

pub mod model;
pub mod routes;
pub mod store;
