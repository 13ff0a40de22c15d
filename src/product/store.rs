//! All reads and writes of the catalog, indexes and search included.

use std::collections::{BTreeSet, HashMap};

use crate::core::page::{Page, Pagination};
use crate::core::text::{fold, slugify};
use crate::db::keys::ordered_i64;
use crate::db::{
    abort, id_key, key_id, pair_key, Db, KeyOrder, Scan, StoreError, StoreResult, Tx, TxResult,
    Unique,
};
use crate::product::model::*;
use crate::product::search;

const TITLE_KEY_LEN: usize = 48;

fn price_key(price: i64, id: u64) -> Vec<u8> {
    let mut k = ordered_i64(price).to_vec();
    k.extend_from_slice(&id_key(id));
    k
}

fn category_price_key(category: u64, price: i64, id: u64) -> Vec<u8> {
    let mut k = id_key(category).to_vec();
    k.extend_from_slice(&price_key(price, id));
    k
}

fn title_key(title: &str, id: u64) -> Vec<u8> {
    let folded = fold(title);
    let mut bytes: Vec<u8> = folded.into_bytes();
    bytes.truncate(TITLE_KEY_LEN);
    bytes.resize(TITLE_KEY_LEN, 0);
    bytes.extend_from_slice(&id_key(id));
    bytes
}

/// Lower is better: highest rating first, unrated last.
fn rating_rank(p: &Product) -> u64 {
    if p.rating_count == 0 {
        u64::MAX
    } else {
        u64::MAX - 1 - (p.rating_avg() * 1000.0) as u64
    }
}

fn rating_key(p: &Product, id: u64) -> Vec<u8> {
    let mut k = rating_rank(p).to_be_bytes().to_vec();
    k.extend_from_slice(&id_key(id));
    k
}

/// What filters and sorts need of a product, stored apart from the record.
#[derive(Debug, Clone, PartialEq)]
struct Facet {
    price: i64,
    stock: i64,
    rating_rank: u64,
    categories: Vec<u64>,
}

impl Facet {
    fn of(p: &Product) -> Facet {
        Facet {
            price: p.price,
            stock: p.stock_quantity,
            rating_rank: rating_rank(p),
            categories: p.category_ids.clone(),
        }
    }

    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24 + 8 * self.categories.len());
        out.extend_from_slice(&self.price.to_be_bytes());
        out.extend_from_slice(&self.stock.to_be_bytes());
        out.extend_from_slice(&self.rating_rank.to_be_bytes());
        for c in &self.categories {
            out.extend_from_slice(&c.to_be_bytes());
        }
        out
    }

    fn decode(b: &[u8]) -> Option<Facet> {
        if b.len() < 24 || !(b.len() - 24).is_multiple_of(8) {
            return None;
        }
        Some(Facet {
            price: key_id(&b[0..8]) as i64,
            stock: key_id(&b[8..16]) as i64,
            rating_rank: key_id(&b[16..24]),
            categories: b[24..].chunks_exact(8).map(key_id).collect(),
        })
    }
}

/// Newest first in a forward scan (the engine scans forward faster than backward).
fn newest_first_key(id: u64) -> [u8; 8] {
    id_key(u64::MAX - id)
}

fn is_live(p: &Product) -> bool {
    p.archived_at.is_none()
}

fn category_names(tx: &Tx<'_>, ids: &[u64]) -> TxResult<Vec<String>> {
    let mut names = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(c) = tx.get::<Category>(*id)? {
            names.push(c.name);
        }
    }
    Ok(names)
}

fn adjust_count(tx: &Tx<'_>, category: u64, delta: i64) -> TxResult<()> {
    if let Some(mut c) = tx.get::<Category>(category)? {
        c.product_count = (c.product_count as i64 + delta).max(0) as u64;
        tx.put(category, &c)?;
    }
    Ok(())
}

/// Removes a live product's entries from every listing and search index.
fn drop_live_indexes(tx: &Tx<'_>, p: &Product) -> TxResult<()> {
    if !is_live(p) {
        return Ok(());
    }
    tx.raw_remove(PRODUCTS_LIVE, &newest_first_key(p.id))?;
    tx.raw_remove(PRODUCTS_BY_PRICE, &price_key(p.price, p.id))?;
    tx.raw_remove(PRODUCTS_BY_TITLE, &title_key(&p.title, p.id))?;
    tx.raw_remove(PRODUCTS_BY_RATING, &rating_key(p, p.id))?;
    for &c in &p.category_ids {
        tx.unlink(PRODUCTS_BY_CATEGORY, c, p.id)?;
        tx.raw_remove(
            PRODUCTS_BY_CATEGORY_PRICE,
            &category_price_key(c, p.price, p.id),
        )?;
        adjust_count(tx, c, -1)?;
    }
    let names = category_names(tx, &p.category_ids)?;
    search::unindex(tx, p, &names)
}

/// Adds a live product to every listing and search index.
fn add_live_indexes(tx: &Tx<'_>, p: &Product) -> TxResult<()> {
    if !is_live(p) {
        return Ok(());
    }
    tx.raw_insert(
        PRODUCTS_LIVE,
        &newest_first_key(p.id),
        &Facet::of(p).encode(),
    )?;
    tx.raw_insert(PRODUCTS_BY_PRICE, &price_key(p.price, p.id), &[])?;
    tx.raw_insert(PRODUCTS_BY_TITLE, &title_key(&p.title, p.id), &[])?;
    tx.raw_insert(PRODUCTS_BY_RATING, &rating_key(p, p.id), &[])?;
    for &c in &p.category_ids {
        tx.link(PRODUCTS_BY_CATEGORY, c, p.id)?;
        tx.raw_insert(
            PRODUCTS_BY_CATEGORY_PRICE,
            &category_price_key(c, p.price, p.id),
            &[],
        )?;
        adjust_count(tx, c, 1)?;
    }
    let names = category_names(tx, &p.category_ids)?;
    search::index(tx, p, &names)
}

/// Claims a unique slug: `wanted` (or one from the title), with `-2`, `-3`... if taken.
fn claim_slug(tx: &Tx<'_>, wanted: &str, id: u64) -> TxResult<String> {
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        match tx.unique_get(PRODUCTS_BY_SLUG, candidate.as_bytes())? {
            Some(existing) if existing != id => continue,
            _ => {
                tx.claim_unique(PRODUCTS_BY_SLUG, candidate.as_bytes(), id, Unique::Slug)?;
                return Ok(candidate);
            }
        }
    }
    abort(StoreError::Duplicate(Unique::Slug))
}

fn check_categories(tx: &Tx<'_>, ids: &[u64]) -> TxResult<()> {
    for id in ids {
        if tx.get::<Category>(*id)?.is_none() {
            return abort(StoreError::UnknownCategory(*id));
        }
    }
    Ok(())
}

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

fn dedup(ids: &[u64]) -> Vec<u64> {
    let set: BTreeSet<u64> = ids.iter().copied().collect();
    set.into_iter().collect()
}

pub async fn create_product(db: &Db, c: ProductChanges, now: i64) -> StoreResult<Product> {
    let id = db.next_id(PRODUCTS)?;
    let title = c.title.clone().unwrap_or_default().trim().to_string();
    let wanted = c.slug.clone().unwrap_or_else(|| slugify(&title, "product"));
    let base = Product {
        id,
        title,
        description: c.description.clone().unwrap_or_default(),
        slug: String::new(),
        price: c.price.unwrap_or(0),
        stock_quantity: c.stock_quantity.unwrap_or(0),
        image: c.image.clone(),
        category_ids: dedup(c.category_ids.as_deref().unwrap_or_default()),
        rating_sum: 0,
        rating_count: 0,
        archived_at: None,
        referenced: false,
        created_at: now,
        updated_at: now,
    };
    db.write(|tx| {
        check_categories(tx, &base.category_ids)?;
        let mut p = base.clone();
        p.slug = claim_slug(tx, &wanted, id)?;
        tx.put(id, &p)?;
        add_live_indexes(tx, &p)?;
        Ok(p)
    })
    .await
}

/// Writes many new products in one transaction (seeding, imports); each slug is made
/// unique with a suffix if taken.
pub fn insert_products_batch(db: &Db, products: &[Product]) -> StoreResult<()> {
    db.write_blocking(|tx| {
        for p in products {
            let mut p = p.clone();
            p.slug = claim_slug(tx, &p.slug, p.id)?;
            tx.put(p.id, &p)?;
            add_live_indexes(tx, &p)?;
        }
        Ok(())
    })
}

/// Applies changes to a live product; answers the product before and after.
pub async fn update_product(
    db: &Db,
    id: u64,
    c: ProductChanges,
    now: i64,
) -> StoreResult<(Product, Product)> {
    db.write(|tx| {
        let Some(old) = tx.get::<Product>(id)?.filter(is_live) else {
            return abort(StoreError::NotFound("Product"));
        };
        let mut p = old.clone();
        if let Some(t) = &c.title {
            p.title = t.trim().to_string();
        }
        if let Some(d) = &c.description {
            p.description = d.clone();
        }
        if let Some(price) = c.price {
            p.price = price;
        }
        if let Some(q) = c.stock_quantity {
            p.stock_quantity = q;
        }
        if let Some(ids) = &c.category_ids {
            p.category_ids = dedup(ids);
            check_categories(tx, &p.category_ids)?;
        }
        if let Some(img) = &c.image {
            p.image = Some(img.clone());
        }
        if let Some(slug) = &c.slug {
            if *slug != old.slug {
                tx.release_unique(PRODUCTS_BY_SLUG, old.slug.as_bytes())?;
                p.slug = claim_slug(tx, slug, id)?;
            }
        }
        p.updated_at = now;
        drop_live_indexes(tx, &old)?;
        tx.put(id, &p)?;
        add_live_indexes(tx, &p)?;
        Ok((old, p))
    })
    .await
}

pub enum Deleted {
    /// Gone entirely; its image file is the caller's to remove.
    Removed(Product),
    /// Kept for the orders that name it.
    Archived(Product),
}

pub async fn delete_product(db: &Db, id: u64, now: i64) -> StoreResult<Deleted> {
    db.write(|tx| {
        let Some(p) = tx.get::<Product>(id)?.filter(is_live) else {
            return abort(StoreError::NotFound("Product"));
        };
        drop_live_indexes(tx, &p)?;
        if p.referenced {
            let mut archived = p.clone();
            archived.archived_at = Some(now);
            archived.updated_at = now;
            tx.put(id, &archived)?;
            Ok(Deleted::Archived(archived))
        } else {
            tx.release_unique(PRODUCTS_BY_SLUG, p.slug.as_bytes())?;
            tx.remove::<Product>(id)?;
            Ok(Deleted::Removed(p))
        }
    })
    .await
}

/// Changes a live product's stock by `delta` inside a transaction (checkout, cancel);
/// going below zero is a conflict naming the product.
pub fn change_stock(tx: &Tx<'_>, id: u64, delta: i64) -> TxResult<Product> {
    let Some(mut p) = tx.get::<Product>(id)? else {
        return abort(StoreError::ProductGone(id));
    };
    let stock = p.stock_quantity + delta;
    if stock < 0 {
        return abort(StoreError::OutOfStock {
            product_id: id,
            title: p.title,
            left: p.stock_quantity,
        });
    }
    p.stock_quantity = stock;
    tx.put(id, &p)?;
    if is_live(&p) {
        tx.raw_insert(
            PRODUCTS_LIVE,
            &newest_first_key(id),
            &Facet::of(&p).encode(),
        )?;
    }
    Ok(p)
}

/// Adds (or with negative numbers removes) a review rating; keeps the rating index and
/// facets in step.
pub fn change_rating(tx: &Tx<'_>, id: u64, sum_delta: i64, count_delta: i64) -> TxResult<()> {
    let Some(old) = tx.get::<Product>(id)? else {
        return Ok(());
    };
    let mut p = old.clone();
    p.rating_sum = (p.rating_sum as i64 + sum_delta).max(0) as u64;
    p.rating_count = (p.rating_count as i64 + count_delta).max(0) as u64;
    tx.put(id, &p)?;
    if is_live(&p) {
        tx.raw_remove(PRODUCTS_BY_RATING, &rating_key(&old, id))?;
        tx.raw_insert(PRODUCTS_BY_RATING, &rating_key(&p, id), &[])?;
        tx.raw_insert(
            PRODUCTS_LIVE,
            &newest_first_key(id),
            &Facet::of(&p).encode(),
        )?;
    }
    Ok(())
}

/// Marks a product as named by an order, so that deleting it archives it. For the order
/// store, inside its checkout transaction.
pub fn mark_referenced(tx: &Tx<'_>, id: u64) -> TxResult<Option<Product>> {
    let Some(mut p) = tx.get::<Product>(id)? else {
        return Ok(None);
    };
    if !p.referenced {
        p.referenced = true;
        tx.put(id, &p)?;
    }
    Ok(Some(p))
}

pub fn product(db: &Db, id: u64) -> StoreResult<Option<Product>> {
    db.get(id)
}

/// A live product by slug, or by id when the text is a number.
pub fn live_product_by_slug_or_id(db: &Db, text: &str) -> StoreResult<Option<Product>> {
    let id = match text.parse::<u64>() {
        Ok(id) => Some(id),
        Err(_) => db.unique_get(PRODUCTS_BY_SLUG, text.as_bytes())?,
    };
    Ok(match id {
        Some(id) => db.get::<Product>(id)?.filter(is_live),
        None => None,
    })
}

// Categories.

pub fn categories(db: &Db) -> StoreResult<Vec<Category>> {
    db.scan(KeyOrder::Ascending)
}

pub fn category(db: &Db, id: u64) -> StoreResult<Option<Category>> {
    db.get(id)
}

/// A category by id or slug.
pub fn category_by_id_or_slug(db: &Db, text: &str) -> StoreResult<Option<Category>> {
    if let Ok(id) = text.parse::<u64>() {
        return db.get(id);
    }
    match db.unique_get(CATEGORIES_BY_SLUG, text.as_bytes())? {
        Some(id) => db.get(id),
        None => Ok(None),
    }
}

pub fn category_by_name(db: &Db, name: &str) -> StoreResult<Option<Category>> {
    match db.unique_get(CATEGORIES_BY_NAME, fold(name.trim()).as_bytes())? {
        Some(id) => db.get(id),
        None => Ok(None),
    }
}

fn claim_category_slug(tx: &Tx<'_>, name: &str, id: u64) -> TxResult<String> {
    let wanted = slugify(name, "category");
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            wanted.clone()
        } else {
            format!("{wanted}-{n}")
        };
        match tx.unique_get(CATEGORIES_BY_SLUG, candidate.as_bytes())? {
            Some(existing) if existing != id => continue,
            _ => {
                tx.claim_unique(
                    CATEGORIES_BY_SLUG,
                    candidate.as_bytes(),
                    id,
                    Unique::CategorySlug,
                )?;
                return Ok(candidate);
            }
        }
    }
    abort(StoreError::Duplicate(Unique::CategorySlug))
}

pub async fn create_category(db: &Db, name: &str) -> StoreResult<Category> {
    let id = db.next_id(CATEGORIES)?;
    let name = name.trim().to_string();
    db.write(|tx| {
        tx.claim_unique(
            CATEGORIES_BY_NAME,
            fold(&name).as_bytes(),
            id,
            Unique::CategoryName,
        )?;
        let c = Category {
            id,
            name: name.clone(),
            slug: claim_category_slug(tx, &name, id)?,
            product_count: 0,
        };
        tx.put(id, &c)?;
        Ok(c)
    })
    .await
}

/// Products whose search entries mention a category, re-indexed in batches after the
/// category changes (renamed or deleted).
fn products_in_category(db: &Db, category: u64) -> StoreResult<Vec<u64>> {
    db.children(PRODUCTS_BY_CATEGORY, category, KeyOrder::Ascending)
}

pub async fn rename_category(db: &Db, id: u64, name: &str) -> StoreResult<Category> {
    let name = name.trim().to_string();
    let members = products_in_category(db, id)?;
    db.write(|tx| {
        let Some(old) = tx.get::<Category>(id)? else {
            return abort(StoreError::NotFound("Category"));
        };
        // Search entries carry category names: take them out under the old name...
        let mut products = Vec::with_capacity(members.len());
        for pid in &members {
            if let Some(p) = tx.get::<Product>(*pid)?.filter(is_live) {
                drop_live_indexes(tx, &p)?;
                products.push(p);
            }
        }
        tx.release_unique(CATEGORIES_BY_NAME, fold(&old.name).as_bytes())?;
        tx.claim_unique(
            CATEGORIES_BY_NAME,
            fold(&name).as_bytes(),
            id,
            Unique::CategoryName,
        )?;
        tx.release_unique(CATEGORIES_BY_SLUG, old.slug.as_bytes())?;
        let mut c = tx.get::<Category>(id)?.unwrap_or(old);
        c.name = name.clone();
        c.slug = claim_category_slug(tx, &name, id)?;
        tx.put(id, &c)?;
        // ...and back under the new one.
        for p in &products {
            add_live_indexes(tx, p)?;
        }
        tx.get::<Category>(id)?
            .map(Ok)
            .unwrap_or_else(|| abort(StoreError::NotFound("Category")))
    })
    .await
}

/// Deletes a category; its products lose it and nothing else.
pub async fn delete_category(db: &Db, id: u64, now: i64) -> StoreResult<()> {
    let members = products_in_category(db, id)?;
    db.write(|tx| {
        let Some(c) = tx.get::<Category>(id)? else {
            return abort(StoreError::NotFound("Category"));
        };
        for pid in &members {
            if let Some(old) = tx.get::<Product>(*pid)?.filter(is_live) {
                drop_live_indexes(tx, &old)?;
                let mut p = old.clone();
                p.category_ids.retain(|c| *c != id);
                p.updated_at = now;
                tx.put(p.id, &p)?;
                add_live_indexes(tx, &p)?;
            }
        }
        // Archived products keep no index entries but may still name it.
        tx.release_unique(CATEGORIES_BY_NAME, fold(&c.name).as_bytes())?;
        tx.release_unique(CATEGORIES_BY_SLUG, c.slug.as_bytes())?;
        tx.remove::<Category>(id)
    })
    .await
}

pub fn category_refs(
    db: &Db,
    ids: &[u64],
    cache: &mut HashMap<u64, Option<CategoryRef>>,
) -> StoreResult<Vec<CategoryRef>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if !cache.contains_key(id) {
            let c = db.get::<Category>(*id)?.map(|c| CategoryRef {
                id: c.id,
                name: c.name,
                slug: c.slug,
            });
            cache.insert(*id, c);
        }
        if let Some(Some(c)) = cache.get(id) {
            out.push(c.clone());
        }
    }
    Ok(out)
}

// Listing.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Title,
    Rating,
    Relevance,
}

/// Filters that all must match; each list inside matches any of its values.
#[derive(Debug, Default, Clone)]
pub struct Filters {
    /// From `category` (ids or slugs); `Some(empty)` when none of them exists.
    pub category_any: Option<Vec<u64>>,
    /// From `categories` (names).
    pub category_named_any: Option<Vec<u64>>,
    pub min_price: Option<i64>,
    pub max_price: Option<i64>,
    pub in_stock: Option<bool>,
    /// Folded substrings, any of which must occur.
    pub title: Vec<String>,
    pub description: Vec<String>,
}

impl Filters {
    fn needs_record(&self) -> bool {
        self.category_named_any.is_some()
            || self.in_stock.is_some()
            || !self.title.is_empty()
            || !self.description.is_empty()
            || self.category_any.as_ref().is_some_and(|c| c.len() > 1)
    }

    fn needs_text(&self) -> bool {
        !self.title.is_empty() || !self.description.is_empty()
    }

    fn matches_facet(&self, f: &Facet) -> bool {
        let in_any = |set: &Option<Vec<u64>>| {
            set.as_ref()
                .is_none_or(|ids| f.categories.iter().any(|c| ids.contains(c)))
        };
        in_any(&self.category_any)
            && in_any(&self.category_named_any)
            && self.min_price.is_none_or(|m| f.price >= m)
            && self.max_price.is_none_or(|m| f.price <= m)
            && self.in_stock.is_none_or(|s| (f.stock > 0) == s)
    }

    fn matches(&self, p: &Product) -> bool {
        let in_any = |set: &Option<Vec<u64>>| {
            set.as_ref()
                .is_none_or(|ids| p.category_ids.iter().any(|c| ids.contains(c)))
        };
        in_any(&self.category_any)
            && in_any(&self.category_named_any)
            && self.min_price.is_none_or(|m| p.price >= m)
            && self.max_price.is_none_or(|m| p.price <= m)
            && self.in_stock.is_none_or(|s| (p.stock_quantity > 0) == s)
            && (self.title.is_empty() || {
                let t = fold(&p.title);
                self.title.iter().any(|f| t.contains(f.as_str()))
            })
            && (self.description.is_empty() || {
                let d = fold(&p.description);
                self.description.iter().any(|f| d.contains(f.as_str()))
            })
    }

    fn price_bounds(&self) -> (Vec<u8>, Vec<u8>) {
        let low = ordered_i64(self.min_price.unwrap_or(i64::MIN)).to_vec();
        let mut high = ordered_i64(self.max_price.unwrap_or(i64::MAX)).to_vec();
        high.extend_from_slice(&[0xff; 8]);
        (low, high)
    }
}

/// Ids from an index's keys, skipping `offset`, taking `limit`; `id_at` is where the id
/// sits in a key.
fn page_of_keys(entries: Scan, id_at: usize, p: Pagination) -> StoreResult<Vec<u64>> {
    entries
        .keys()
        .skip(p.offset())
        .take(p.limit as usize)
        .map(|k| k.map(|k| key_id(&k[id_at..])))
        .collect()
}

fn decode_ids(db: &Db, ids: &[u64]) -> StoreResult<Vec<Product>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = db.get::<Product>(*id)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// One page of live products matching `filters`, sorted; with `hits` (search results and
/// scores) only those. Served from indexes: the common shapes decode one page of records.
pub fn list(
    db: &Db,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    hits: Option<Vec<(u64, f64)>>,
) -> StoreResult<Page<Product>> {
    if filters.category_any.as_ref().is_some_and(Vec::is_empty)
        || filters
            .category_named_any
            .as_ref()
            .is_some_and(Vec::is_empty)
    {
        return Ok(page.page_of(Vec::new(), 0));
    }
    if let Some(hits) = hits {
        return list_hits(db, filters, sort, page, hits);
    }
    let single_category = filters
        .category_any
        .as_ref()
        .filter(|c| c.len() == 1)
        .map(|c| c[0]);
    let has_price = filters.min_price.is_some() || filters.max_price.is_some();
    if !filters.needs_record() {
        // Fast paths: the page comes straight off one index.
        match (sort, single_category, has_price) {
            (Sort::Newest, None, false) | (Sort::Relevance, None, false) => {
                let entries = db.entries(PRODUCTS_LIVE, KeyOrder::Ascending)?;
                let ids: Vec<u64> = page_of_keys(entries, 0, page)?
                    .into_iter()
                    .map(|k| u64::MAX - k)
                    .collect();
                let total = search::live_count(db)?;
                return Ok(page.page_of(decode_ids(db, &ids)?, total));
            }
            (Sort::Newest, Some(c), false) | (Sort::Relevance, Some(c), false) => {
                let entries = db.prefix(PRODUCTS_BY_CATEGORY, &id_key(c), KeyOrder::Descending)?;
                let ids = page_of_keys(entries, 8, page)?;
                let total = db.get::<Category>(c)?.map(|c| c.product_count).unwrap_or(0);
                return Ok(page.page_of(decode_ids(db, &ids)?, total));
            }
            (Sort::PriceAsc | Sort::PriceDesc, category, _) => {
                let (low, high) = filters.price_bounds();
                let (tree, low, high, id_at) = match category {
                    Some(c) => {
                        let mut l = id_key(c).to_vec();
                        l.extend_from_slice(&low);
                        let mut h = id_key(c).to_vec();
                        h.extend_from_slice(&high);
                        (PRODUCTS_BY_CATEGORY_PRICE, l, h, 16)
                    }
                    None => (PRODUCTS_BY_PRICE, low, high, 8),
                };
                let order = match sort {
                    Sort::PriceDesc => KeyOrder::Descending,
                    _ => KeyOrder::Ascending,
                };
                let ids = page_of_keys(
                    db.range(tree, low.as_slice()..high.as_slice(), order)?,
                    id_at,
                    page,
                )?;
                let total = match (has_price, category) {
                    (false, None) => search::live_count(db)?,
                    (false, Some(c)) => {
                        db.get::<Category>(c)?.map(|c| c.product_count).unwrap_or(0)
                    }
                    (true, _) => db
                        .range(tree, low.as_slice()..high.as_slice(), order)?
                        .count() as u64,
                };
                return Ok(page.page_of(decode_ids(db, &ids)?, total));
            }
            (Sort::Title | Sort::Rating, None, false) => {
                let tree = if sort == Sort::Title {
                    PRODUCTS_BY_TITLE
                } else {
                    PRODUCTS_BY_RATING
                };
                let id_at = if sort == Sort::Title {
                    TITLE_KEY_LEN
                } else {
                    8
                };
                let entries = db.entries(tree, KeyOrder::Ascending)?;
                let ids = page_of_keys(entries, id_at, page)?;
                let total = search::live_count(db)?;
                return Ok(page.page_of(decode_ids(db, &ids)?, total));
            }
            _ => {}
        }
    }
    // General path: candidates from keys, then records where a filter or the sort needs them.
    let mut candidates: Vec<(i64, u64)> = Vec::new();
    let (low, high) = filters.price_bounds();
    let mut seen = BTreeSet::new();
    let from_categories = filters
        .category_any
        .as_ref()
        .or(filters.category_named_any.as_ref());
    match from_categories {
        Some(cats) => {
            for c in cats {
                let mut l = id_key(*c).to_vec();
                l.extend_from_slice(&low);
                let mut h = id_key(*c).to_vec();
                h.extend_from_slice(&high);
                let range = db.range(PRODUCTS_BY_CATEGORY_PRICE, l..h, KeyOrder::Ascending)?;
                for k in range.keys() {
                    let k = k?;
                    let id = key_id(&k[16..]);
                    if seen.insert(id) {
                        candidates.push((price_of_key(&k[8..]), id));
                    }
                }
            }
        }
        None => {
            for k in db
                .range(PRODUCTS_BY_PRICE, low..high, KeyOrder::Ascending)?
                .keys()
            {
                let k = k?;
                candidates.push((price_of_key(&k), key_id(&k[8..])));
            }
        }
    }
    let needs_records = filters.needs_record() || matches!(sort, Sort::Title | Sort::Rating);
    if !needs_records {
        match sort {
            Sort::PriceAsc => candidates.sort(),
            Sort::PriceDesc => candidates.sort_by(|a, b| b.0.cmp(&a.0).then(b.1.cmp(&a.1))),
            _ => candidates.sort_by_key(|c| std::cmp::Reverse(c.1)),
        }
        let total = candidates.len() as u64;
        let ids: Vec<u64> = candidates
            .iter()
            .skip(page.offset())
            .take(page.limit as usize)
            .map(|c| c.1)
            .collect();
        return Ok(page.page_of(decode_ids(db, &ids)?, total));
    }
    let scored: Vec<(u64, f64)> = candidates.iter().map(|c| (c.1, 0.0)).collect();
    filter_sort_page(db, filters, sort, page, scored)
}

/// Filters scored candidates and cuts one sorted page: from the small facet records when
/// no text filter or title sort needs the whole product, decoding only the page.
fn filter_sort_page(
    db: &Db,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    candidates: Vec<(u64, f64)>,
) -> StoreResult<Page<Product>> {
    if filters.needs_text() || sort == Sort::Title {
        let scores: HashMap<u64, f64> = candidates.iter().copied().collect();
        let ids: Vec<u64> = candidates.iter().map(|c| c.0).collect();
        let mut products: Vec<Product> = decode_ids(db, &ids)?
            .into_iter()
            .filter(|p| is_live(p) && filters.matches(p))
            .collect();
        sort_products(&mut products, sort, &scores);
        return Ok(page.slice(products));
    }
    let mut kept: Vec<(u64, f64, Facet)> = Vec::with_capacity(candidates.len());
    for (id, score) in candidates {
        if let Some(bytes) = db.raw_get(PRODUCTS_LIVE, &newest_first_key(id))? {
            if let Some(f) = Facet::decode(&bytes).filter(|f| filters.matches_facet(f)) {
                kept.push((id, score, f));
            }
        }
    }
    match sort {
        Sort::Newest => kept.sort_unstable_by_key(|k| std::cmp::Reverse(k.0)),
        Sort::PriceAsc => kept.sort_unstable_by_key(|k| (k.2.price, k.0)),
        Sort::PriceDesc => kept.sort_unstable_by_key(|k| std::cmp::Reverse((k.2.price, k.0))),
        Sort::Rating => kept.sort_unstable_by_key(|k| (k.2.rating_rank, k.0)),
        Sort::Relevance | Sort::Title => {
            kept.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)))
        }
    }
    let total = kept.len() as u64;
    let ids: Vec<u64> = kept
        .iter()
        .skip(page.offset())
        .take(page.limit as usize)
        .map(|k| k.0)
        .collect();
    Ok(page.page_of(decode_ids(db, &ids)?, total))
}

/// Live products with at most `at_most` in stock, fewest first (then oldest), at most
/// `limit` of them: found in the listing facets, so only those shown are decoded.
pub fn low_stock(db: &Db, at_most: i64, limit: usize) -> StoreResult<Vec<Product>> {
    let mut low = Vec::new();
    for kv in db.entries(PRODUCTS_LIVE, KeyOrder::Ascending)? {
        let (key, value) = kv?;
        if let Some(f) = Facet::decode(&value).filter(|f| f.stock <= at_most) {
            low.push((f.stock, u64::MAX - key_id(&key)));
        }
    }
    low.sort_unstable();
    let ids: Vec<u64> = low.iter().take(limit).map(|l| l.1).collect();
    decode_ids(db, &ids)
}

fn price_of_key(k: &[u8]) -> i64 {
    (key_id(k) ^ (1u64 << 63)) as i64
}

fn sort_products(products: &mut [Product], sort: Sort, scores: &HashMap<u64, f64>) {
    match sort {
        Sort::Newest => products.sort_by_key(|p| std::cmp::Reverse(p.id)),
        Sort::PriceAsc => products.sort_by(|a, b| a.price.cmp(&b.price).then(a.id.cmp(&b.id))),
        Sort::PriceDesc => products.sort_by(|a, b| b.price.cmp(&a.price).then(b.id.cmp(&a.id))),
        Sort::Title => products.sort_by_cached_key(|p| (fold(&p.title), p.id)),
        Sort::Rating => products.sort_by(|a, b| {
            let rank = |p: &Product| {
                if p.rating_count == 0 {
                    -1.0
                } else {
                    p.rating_avg()
                }
            };
            rank(b).total_cmp(&rank(a)).then(a.id.cmp(&b.id))
        }),
        Sort::Relevance => products.sort_by(|a, b| {
            let s = |p: &Product| scores.get(&p.id).copied().unwrap_or(0.0);
            s(b).total_cmp(&s(a)).then(a.id.cmp(&b.id))
        }),
    }
}

fn list_hits(
    db: &Db,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    hits: Vec<(u64, f64)>,
) -> StoreResult<Page<Product>> {
    let unfiltered = filters.category_any.is_none()
        && filters.category_named_any.is_none()
        && filters.min_price.is_none()
        && filters.max_price.is_none()
        && !filters.needs_record();
    if unfiltered && sort == Sort::Relevance {
        // Rank only as far as the page needs, and decode only the page.
        let mut hits = hits;
        search::rank(&mut hits, page.offset() + page.limit as usize);
        let total = hits.len() as u64;
        let ids: Vec<u64> = hits
            .iter()
            .skip(page.offset())
            .take(page.limit as usize)
            .map(|h| h.0)
            .collect();
        return Ok(page.page_of(decode_ids(db, &ids)?, total));
    }
    filter_sort_page(db, filters, sort, page, hits)
}

// Migrations.

/// Schema 1 to 2: each live product's facets move from a tree of their own into its
/// `PRODUCTS_LIVE` entry, one entry fewer per product; then the old tree goes. Running it
/// again after a crash part way does the same.
pub fn move_facets_into_live(db: &Db) -> StoreResult<()> {
    let old: Vec<_> = db
        .old_tree_entries(PRODUCTS_FACETS_V1)?
        .collect::<StoreResult<_>>()?;
    for chunk in old.chunks(500) {
        db.write_blocking(|tx| {
            for (id, facet) in chunk {
                let key = newest_first_key(key_id(id));
                if tx.raw_get(PRODUCTS_LIVE, &key)?.is_some() {
                    tx.raw_insert(PRODUCTS_LIVE, &key, facet)?;
                }
            }
            Ok(())
        })?;
    }
    db.drop_old_tree(PRODUCTS_FACETS_V1)
}

// Integrity.

/// What `check` found: `(index, problem)` lines.
pub fn check_indexes(db: &Db) -> StoreResult<Vec<String>> {
    let expected = rebuild_into_memory(db)?;
    let mut problems = Vec::new();
    for (tree, want) in &expected {
        let have = db.tree_entries(tree)?;
        let missing = want.iter().filter(|(k, v)| have.get(k) != Some(v)).count();
        let extra = have
            .iter()
            .filter(|(k, v)| entry_value(want, k) != Some(v))
            .count();
        if missing + extra > 0 {
            problems.push(format!("{tree}: {missing} missing, {extra} stale entries"));
        }
    }
    Ok(problems)
}

/// Rebuilds every catalog index from the product and category records.
pub fn repair_indexes(db: &Db) -> StoreResult<()> {
    for (tree, want) in rebuild_into_memory(db)? {
        db.replace_tree(tree, want)?;
    }
    db.flush_blocking()
}

/// A tree's `(key, value)` pairs, in key order, one per key.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Index entries by tree.
pub type TreeEntries = Vec<(&'static str, Entries)>;

/// Sorts gathered entries into key order, one per key.
pub fn sorted(mut entries: Entries) -> Entries {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    entries
}

fn entry_value<'e>(entries: &'e Entries, key: &[u8]) -> Option<&'e Vec<u8>> {
    entries
        .binary_search_by(|e| e.0.as_slice().cmp(key))
        .ok()
        .map(|i| &entries[i].1)
}

fn rebuild_into_memory(db: &Db) -> StoreResult<TreeEntries> {
    let categories: Vec<Category> = db.scan(KeyOrder::Ascending)?;
    let products: Vec<Product> = db.scan(KeyOrder::Ascending)?;
    index_entries(&categories, &products)
}

/// Every catalog index entry these records imply, computed in memory with the same key
/// functions the writes use, and the category records with their product counts. Used by
/// `check`, `check --repair` and imports (which write the product records themselves).
pub fn index_entries(categories: &[Category], products: &[Product]) -> StoreResult<TreeEntries> {
    let mut out = listing_entries(categories, products)?;
    out.extend(search_entries(categories, products));
    Ok(out)
}

/// `index_entries` but for the search postings: the listing, slug and category indexes,
/// and the category records.
pub fn listing_entries(categories: &[Category], products: &[Product]) -> StoreResult<TreeEntries> {
    // Gathered unsorted, then sorted once each (faster than inserting into maps).
    let mut counts: HashMap<u64, u64> = HashMap::new();
    let mut by_slug = Vec::new();
    let mut live = Vec::new();
    let mut by_price = Vec::new();
    let mut by_title = Vec::new();
    let mut by_rating = Vec::new();
    let mut by_category = Vec::new();
    let mut by_category_price = Vec::new();
    for p in products {
        by_slug.push((p.slug.as_bytes().to_vec(), id_key(p.id).to_vec()));
        if !is_live(p) {
            continue;
        }
        live.push((newest_first_key(p.id).to_vec(), Facet::of(p).encode()));
        by_price.push((price_key(p.price, p.id), Vec::new()));
        by_title.push((title_key(&p.title, p.id), Vec::new()));
        by_rating.push((rating_key(p, p.id), Vec::new()));
        for &c in &p.category_ids {
            by_category.push((pair_key(c, p.id).to_vec(), Vec::new()));
            by_category_price.push((category_price_key(c, p.price, p.id), Vec::new()));
            *counts.entry(c).or_default() += 1;
        }
    }
    let mut records = Vec::new();
    let mut by_name = Vec::new();
    let mut category_slugs = Vec::new();
    for c in categories {
        let mut c = c.clone();
        c.product_count = counts.get(&c.id).copied().unwrap_or(0);
        records.push((id_key(c.id).to_vec(), crate::db::encode(&c)?));
        by_name.push((fold(&c.name).into_bytes(), id_key(c.id).to_vec()));
        category_slugs.push((c.slug.as_bytes().to_vec(), id_key(c.id).to_vec()));
    }
    Ok(vec![
        (PRODUCTS_BY_SLUG, sorted(by_slug)),
        (PRODUCTS_LIVE, sorted(live)),
        (PRODUCTS_BY_PRICE, sorted(by_price)),
        (PRODUCTS_BY_CATEGORY, sorted(by_category)),
        (PRODUCTS_BY_CATEGORY_PRICE, sorted(by_category_price)),
        (PRODUCTS_BY_TITLE, sorted(by_title)),
        (PRODUCTS_BY_RATING, sorted(by_rating)),
        (CATEGORIES, sorted(records)),
        (CATEGORIES_BY_NAME, sorted(by_name)),
        (CATEGORIES_BY_SLUG, sorted(category_slugs)),
    ])
}

/// The search postings of the live products, as `index_entries` gives them.
pub fn search_entries(categories: &[Category], products: &[Product]) -> TreeEntries {
    let names: HashMap<u64, &str> = categories.iter().map(|c| (c.id, c.name.as_str())).collect();
    let postings = search::build(products.iter().filter(|p| is_live(p)).map(|p| {
        let cats = p
            .category_ids
            .iter()
            .filter_map(|c| names.get(c).map(|n| n.to_string()))
            .collect();
        (p, cats)
    }));
    vec![(SEARCH_POSTINGS, postings)]
}
