//! The catalog: products, categories, images, indexed listing and full-text search.

pub mod images;
pub mod model;
pub mod reviews;
pub mod routes;
pub mod search;
pub mod store;
