//! The catalog: products, categories, images, indexed listing and full-text search.

pub mod images;
pub mod listing;
pub mod model;
pub mod routes;
pub mod search;
pub mod store;

use crate::db::migrate::Migration;

/// The catalog's schema upgrades.
pub const MIGRATIONS: &[Migration] = &[Migration {
    from: 1,
    run: listing::move_facets_into_live,
}];
