//! All reads and writes of the catalog (products, categories, listing, search): one
//! interface over the storage engines. The transaction-level helpers that checkout,
//! cancel and reviews compose (stock, ratings, `referenced`) exist per engine.

pub mod catalog;
pub mod pg;
pub mod sled;

use std::collections::HashMap;

use crate::core::page::{Page, Pagination};
use crate::db::{Backend, StoreResult};
use crate::product::listing::{self, Cursor, Filters, Sort};
use crate::product::model::*;
use crate::product::search;

pub use self::sled::{
    catalog_entries, check_indexes, expected_entries, repair_indexes, search_entries,
};

/// What a create or update sets; `None` leaves a field as it is.
#[derive(Debug, Default, Clone)]
pub struct ProductChanges {
    pub title: Option<String>,
    pub description: Option<String>,
    pub price: Option<i64>,
    pub stock_quantity: Option<i64>,
    pub category_ids: Option<Vec<u64>>,
    pub slug: Option<String>,
    /// A new image file name (the old file is the caller's to remove).
    pub image: Option<String>,
}

impl ProductChanges {
    /// A new product of these fields (unset ones empty or zero), stamped `now`, without
    /// its slug: the engine picks a free one.
    pub fn new_product(&self, id: u64, now: i64) -> Product {
        Product {
            id,
            title: self.title.clone().unwrap_or_default().trim().to_string(),
            description: self.description.clone().unwrap_or_default(),
            slug: String::new(),
            price: self.price.unwrap_or(0),
            stock_quantity: self.stock_quantity.unwrap_or(0),
            image: self.image.clone(),
            category_ids: sorted_unique(self.category_ids.as_deref().unwrap_or_default()),
            rating_sum: 0,
            rating_count: 0,
            archived_at: None,
            referenced: false,
            created_at: now,
            updated_at: now,
        }
    }

    /// `old` with these changes, stamped `now`: everything but the slug (whose
    /// uniqueness the engine checks) and the categories' existence (also the engine's).
    pub fn applied_to(&self, old: &Product, now: i64) -> Product {
        let mut p = old.clone();
        if let Some(t) = &self.title {
            p.title = t.trim().to_string();
        }
        if let Some(d) = &self.description {
            p.description = d.clone();
        }
        if let Some(price) = self.price {
            p.price = price;
        }
        if let Some(q) = self.stock_quantity {
            p.stock_quantity = q;
        }
        if let Some(ids) = &self.category_ids {
            p.category_ids = sorted_unique(ids);
        }
        if let Some(img) = &self.image {
            p.image = Some(img.clone());
        }
        p.updated_at = now;
        p
    }
}

/// Category ids in order, each once (as a product keeps them).
pub fn sorted_unique(ids: &[u64]) -> Vec<u64> {
    let set: std::collections::BTreeSet<u64> = ids.iter().copied().collect();
    set.into_iter().collect()
}

pub enum Deleted {
    /// Gone entirely; its image file is the caller's to remove.
    Removed(Product),
    /// Kept for the orders that name it.
    Archived(Product),
}

pub async fn create_product(b: &Backend, c: ProductChanges, now: i64) -> StoreResult<Product> {
    match b {
        Backend::Sled(db) => sled::create_product(db, c, now).await,
        Backend::Pg(pg) => pg::create_product(pg, c, now).await,
    }
}

/// Writes many new products in one transaction (seeding, imports), with the ids they
/// carry; each slug is made unique with a suffix if taken.
pub async fn insert_products_batch(b: &Backend, products: &[Product]) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::insert_products_batch(db, products),
        Backend::Pg(pg) => pg::insert_products_batch(pg, products).await,
    }
}

/// Applies changes to a live product; answers the product before and after.
pub async fn update_product(
    b: &Backend,
    id: u64,
    c: ProductChanges,
    now: i64,
) -> StoreResult<(Product, Product)> {
    match b {
        Backend::Sled(db) => sled::update_product(db, id, c, now).await,
        Backend::Pg(pg) => pg::update_product(pg, id, c, now).await,
    }
}

/// Deletes a live product, or archives it when an order names it.
pub async fn delete_product(b: &Backend, id: u64, now: i64) -> StoreResult<Deleted> {
    match b {
        Backend::Sled(db) => sled::delete_product(db, id, now).await,
        Backend::Pg(pg) => pg::delete_product(pg, id, now).await,
    }
}

/// A product, live or archived.
pub async fn product(b: &Backend, id: u64) -> StoreResult<Option<Product>> {
    match b {
        Backend::Sled(db) => sled::product(db, id),
        Backend::Pg(pg) => pg::product(pg, id).await,
    }
}

/// A live product by slug, or by id when the text is a number.
pub async fn live_product_by_slug_or_id(b: &Backend, text: &str) -> StoreResult<Option<Product>> {
    match b {
        Backend::Sled(db) => sled::live_product_by_slug_or_id(db, text),
        Backend::Pg(pg) => pg::live_product_by_slug_or_id(pg, text).await,
    }
}

/// One page of live products matching `filters`, sorted; with `q`, only those matching
/// the search words (every word, the last as a prefix). With `after` (a cursor of the
/// same sort), the page is the items that follow it, and `page` tells where it begins.
pub async fn list(
    b: &Backend,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    after: Option<&Cursor>,
    q: Option<&str>,
) -> StoreResult<Page<Product>> {
    Ok(list_stamped(b, filters, sort, page, after, q).await?.0)
}

/// `list`, with the stamp a response cache keeps its answer under (see `stamp_current`).
pub async fn list_stamped(
    b: &Backend,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    after: Option<&Cursor>,
    q: Option<&str>,
) -> StoreResult<(Page<Product>, Vec<u64>)> {
    let version = b.version();
    match b {
        Backend::Sled(db) => {
            if let Some(c) = catalog::Catalog::of(db) {
                if let Some(listed) =
                    c.list(filters, sort, page.offset(), page.limit as usize, after, q)
                {
                    let (page, stamp) = sled::page_of_listed(db, page, listed)?;
                    return Ok((page, catalog_stamp(&stamp)));
                }
            }
            let hits = match q {
                Some(q) => Some(search::search(db, q)?),
                None => None,
            };
            let page = listing::list(db, filters, sort, page, hits)?;
            Ok((page, vec![STAMP_VERSION, version]))
        }
        Backend::Pg(pg) => Ok((
            pg::list(pg, filters, sort, page, after, q).await?,
            vec![STAMP_VERSION, version],
        )),
    }
}

/// Stamps: `[STAMP_CATALOG, catalog order version, (product id, revision)...]` from the
/// catalog in memory, or `[STAMP_VERSION, database version]`.
const STAMP_CATALOG: u64 = 0;
const STAMP_VERSION: u64 = 1;

fn catalog_stamp(stamp: &catalog::Stamp) -> Vec<u64> {
    let mut out = Vec::with_capacity(2 + 2 * stamp.revs.len());
    out.push(STAMP_CATALOG);
    out.push(stamp.order_version);
    for (id, rev) in &stamp.revs {
        out.push(*id);
        out.push(*rev);
    }
    out
}

/// Whether a catalog answer stamped `stamp` still holds: no product in it changed and no
/// change could have altered which products it lists or their order. So a cart change,
/// or an order of other products, leaves it standing; an order of a product in it does
/// not.
pub fn stamp_current(b: &Backend, stamp: &[u64]) -> bool {
    match (stamp, b.sled().and_then(catalog::Catalog::of)) {
        ([STAMP_CATALOG, order_version, revs @ ..], Some(c)) => c.current(&catalog::Stamp {
            order_version: *order_version,
            revs: revs.chunks_exact(2).map(|r| (r[0], r[1])).collect(),
        }),
        ([STAMP_VERSION, version], _) => *version == b.version(),
        _ => false,
    }
}

/// `live_product_by_slug_or_id`, with the stamp a response cache keeps its answer under.
pub async fn live_product_stamped(
    b: &Backend,
    text: &str,
) -> StoreResult<(Option<Product>, Vec<u64>)> {
    let version = b.version();
    match b {
        Backend::Sled(db) => match catalog::Catalog::of(db) {
            Some(c) => {
                sled::live_product_stamped(db, c, text).map(|(p, stamp)| (p, catalog_stamp(&stamp)))
            }
            None => Ok((
                sled::live_product_by_slug_or_id(db, text)?,
                vec![STAMP_VERSION, version],
            )),
        },
        Backend::Pg(pg) => Ok((
            pg::live_product_by_slug_or_id(pg, text).await?,
            vec![STAMP_VERSION, version],
        )),
    }
}

/// Live products with at most `at_most` in stock, fewest first, at most `limit`.
pub async fn low_stock(b: &Backend, at_most: i64, limit: usize) -> StoreResult<Vec<Product>> {
    match b {
        Backend::Sled(db) => match catalog::Catalog::of(db) {
            Some(c) => sled::products_of(db, &c.low_stock(at_most, limit)),
            None => listing::low_stock(db, at_most, limit),
        },
        Backend::Pg(pg) => pg::low_stock(pg, at_most, limit).await,
    }
}

pub async fn categories(b: &Backend) -> StoreResult<Vec<Category>> {
    match b {
        Backend::Sled(db) => sled::categories(db),
        Backend::Pg(pg) => pg::categories(pg).await,
    }
}

pub async fn category(b: &Backend, id: u64) -> StoreResult<Option<Category>> {
    match b {
        Backend::Sled(db) => sled::category(db, id),
        Backend::Pg(pg) => pg::category(pg, id).await,
    }
}

/// A category by id or slug.
pub async fn category_by_id_or_slug(b: &Backend, text: &str) -> StoreResult<Option<Category>> {
    match b {
        Backend::Sled(db) => sled::category_by_id_or_slug(db, text),
        Backend::Pg(pg) => pg::category_by_id_or_slug(pg, text).await,
    }
}

/// A category by name, ignoring case.
pub async fn category_by_name(b: &Backend, name: &str) -> StoreResult<Option<Category>> {
    match b {
        Backend::Sled(db) => sled::category_by_name(db, name),
        Backend::Pg(pg) => pg::category_by_name(pg, name).await,
    }
}

pub async fn create_category(b: &Backend, name: &str) -> StoreResult<Category> {
    match b {
        Backend::Sled(db) => sled::create_category(db, name).await,
        Backend::Pg(pg) => pg::create_category(pg, name).await,
    }
}

pub async fn rename_category(b: &Backend, id: u64, name: &str) -> StoreResult<Category> {
    match b {
        Backend::Sled(db) => sled::rename_category(db, id, name).await,
        Backend::Pg(pg) => pg::rename_category(pg, id, name).await,
    }
}

/// Deletes a category; its products lose it and nothing else.
pub async fn delete_category(b: &Backend, id: u64, now: i64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::delete_category(db, id, now).await,
        Backend::Pg(pg) => pg::delete_category(pg, id, now).await,
    }
}

/// The categories `ids` names that exist, each looked up once per `cache`.
pub async fn category_refs(
    b: &Backend,
    ids: &[u64],
    cache: &mut HashMap<u64, Option<CategoryRef>>,
) -> StoreResult<Vec<CategoryRef>> {
    match b {
        Backend::Sled(db) => sled::category_refs(db, ids, cache),
        Backend::Pg(pg) => pg::category_refs(pg, ids, cache).await,
    }
}
