//! The catalog on sled. Each write saves the records (their index entries
//! follow, see `Indexed`) and keeps what the entries do not hold in step: the product
//! counts of categories and the search postings.

use std::collections::HashMap;

use crate::core::page::{Page, Pagination};
use crate::core::text::{fold, slugify};
use crate::db::index::{entries_of, sorted, Entries, TreeEntries};
use crate::db::{
    abort, encode, id_key, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult, Unique,
};
use crate::product::model::*;
use crate::product::search;
use crate::product::store::catalog::{Catalog, Listed, Stamp};

use super::{Deleted, ProductChanges};

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
        tx.save(&c)?;
    }
    Ok(())
}

/// A live product leaves its categories' counts and the search index.
fn uncount(tx: &Tx<'_>, p: &Product) -> TxResult<()> {
    if !p.is_live() {
        return Ok(());
    }
    for &c in &p.category_ids {
        adjust_count(tx, c, -1)?;
    }
    search::unindex(tx, p, &category_names(tx, &p.category_ids)?)
}

/// A live product joins its categories' counts and the search index.
fn count(tx: &Tx<'_>, p: &Product) -> TxResult<()> {
    if !p.is_live() {
        return Ok(());
    }
    for &c in &p.category_ids {
        adjust_count(tx, c, 1)?;
    }
    search::index(tx, p, &category_names(tx, &p.category_ids)?)
}

/// A free slug: `wanted`, or with `-2`, `-3`... if another record holds it.
fn free_slug(tx: &Tx<'_>, index: &str, wanted: &str, id: u64, what: Unique) -> TxResult<String> {
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        match tx.unique_get(index, candidate.as_bytes())? {
            Some(holder) if holder != id => continue,
            _ => return Ok(candidate),
        }
    }
    abort(StoreError::Duplicate(what))
}

fn free_product_slug(tx: &Tx<'_>, wanted: &str, id: u64) -> TxResult<String> {
    free_slug(tx, PRODUCTS_BY_SLUG, wanted, id, Unique::Slug)
}

/// A slug the client chose: taken as it is, or a 409 if another product (archived ones
/// included) holds it. Only slugs made from titles get suffixes.
fn chosen_product_slug(tx: &Tx<'_>, wanted: &str, id: u64) -> TxResult<String> {
    match tx.unique_get(PRODUCTS_BY_SLUG, wanted.as_bytes())? {
        Some(holder) if holder != id => abort(StoreError::Duplicate(Unique::Slug)),
        _ => Ok(wanted.to_string()),
    }
}

fn check_categories(tx: &Tx<'_>, ids: &[u64]) -> TxResult<()> {
    for id in ids {
        if tx.get::<Category>(*id)?.is_none() {
            return abort(StoreError::UnknownCategory(*id));
        }
    }
    Ok(())
}

pub async fn create_product(db: &Db, c: ProductChanges, now: i64) -> StoreResult<Product> {
    let id = db.next_id(PRODUCTS)?;
    let base = c.new_product(id, now);
    let chosen = c.slug.clone();
    let wanted = chosen
        .clone()
        .unwrap_or_else(|| slugify(&base.title, "product"));
    db.write(|tx| {
        check_categories(tx, &base.category_ids)?;
        let mut p = base.clone();
        p.slug = match &chosen {
            Some(slug) => chosen_product_slug(tx, slug, id)?,
            None => free_product_slug(tx, &wanted, id)?,
        };
        tx.save(&p)?;
        count(tx, &p)?;
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
            p.slug = free_product_slug(tx, &p.slug, p.id)?;
            tx.save(&p)?;
            count(tx, &p)?;
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
        let Some(old) = tx.get::<Product>(id)?.filter(Product::is_live) else {
            return abort(StoreError::NotFound("Product"));
        };
        let mut p = c.applied_to(&old, now);
        if c.category_ids.is_some() {
            check_categories(tx, &p.category_ids)?;
        }
        if let Some(slug) = c.slug.as_ref().filter(|s| **s != old.slug) {
            p.slug = chosen_product_slug(tx, slug, id)?;
        }
        uncount(tx, &old)?;
        tx.save(&p)?;
        count(tx, &p)?;
        Ok((old, p))
    })
    .await
}

pub async fn delete_product(db: &Db, id: u64, now: i64) -> StoreResult<Deleted> {
    db.write(|tx| {
        let Some(p) = tx.get::<Product>(id)?.filter(Product::is_live) else {
            return abort(StoreError::NotFound("Product"));
        };
        uncount(tx, &p)?;
        if p.referenced {
            let mut archived = p.clone();
            archived.archived_at = Some(now);
            archived.updated_at = now;
            tx.save(&archived)?;
            Ok(Deleted::Archived(archived))
        } else {
            tx.delete::<Product>(id)?;
            Ok(Deleted::Removed(p))
        }
    })
    .await
}

/// Changes a product's stock by `delta` inside a transaction (checkout, cancel); going
/// below zero is a conflict naming the product.
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
    tx.save(&p)?;
    Ok(p)
}

/// Adds (or with negative numbers removes) a review rating.
pub fn change_rating(tx: &Tx<'_>, id: u64, sum_delta: i64, count_delta: i64) -> TxResult<()> {
    let Some(mut p) = tx.get::<Product>(id)? else {
        return Ok(());
    };
    p.rating_sum = (p.rating_sum as i64 + sum_delta).max(0) as u64;
    p.rating_count = (p.rating_count as i64 + count_delta).max(0) as u64;
    tx.save(&p)
}

/// Marks a product as named by an order, so that deleting it archives it. For checkout,
/// inside its transaction.
pub fn mark_referenced(tx: &Tx<'_>, id: u64) -> TxResult<Option<Product>> {
    let Some(mut p) = tx.get::<Product>(id)? else {
        return Ok(None);
    };
    if !p.referenced {
        p.referenced = true;
        tx.save(&p)?;
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
        Some(id) => db.get::<Product>(id)?.filter(Product::is_live),
        None => None,
    })
}

/// The products of `ids` that still exist, in that order.
pub fn products_of(db: &Db, ids: &[u64]) -> StoreResult<Vec<Product>> {
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(p) = db.get::<Product>(*id)? {
            out.push(p);
        }
    }
    Ok(out)
}

/// A page of products from the catalog's listing of it, with the listing's stamp.
pub fn page_of_listed(
    db: &Db,
    page: Pagination,
    listed: Listed,
) -> StoreResult<(Page<Product>, Stamp)> {
    let limit = page.limit.max(1);
    let at = Pagination {
        page: (listed.start / limit as usize + 1).min(u32::MAX as usize) as u32,
        limit,
    };
    let mut items = Vec::with_capacity(listed.records.len());
    for r in &listed.records {
        items.push(db.decode_kept::<Product>(r)?);
    }
    let mut out = at.page_of(items, listed.total);
    out.next = listed.next.map(|c| c.encode());
    Ok((out, listed.stamp))
}

/// A live product by slug or id, and its stamp, from the catalog in memory.
pub fn live_product_stamped(
    db: &Db,
    catalog: &Catalog,
    text: &str,
) -> StoreResult<(Option<Product>, Stamp)> {
    let id = match text.parse::<u64>() {
        Ok(id) => Some(id),
        Err(_) => catalog.by_slug(text),
    };
    let Some(id) = id else {
        return Ok((None, Stamp::default()));
    };
    let (record, stamp) = catalog.record(id);
    let p = match record {
        Some(r) => Some(db.decode_kept::<Product>(&r)?),
        None => None,
    };
    Ok((p, stamp))
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

fn free_category_slug(tx: &Tx<'_>, name: &str, id: u64) -> TxResult<String> {
    let wanted = slugify(name, "category");
    free_slug(tx, CATEGORIES_BY_SLUG, &wanted, id, Unique::CategorySlug)
}

pub async fn create_category(db: &Db, name: &str) -> StoreResult<Category> {
    let id = db.next_id(CATEGORIES)?;
    let name = name.trim().to_string();
    db.write(|tx| {
        let c = Category {
            id,
            name: name.clone(),
            slug: free_category_slug(tx, &name, id)?,
            product_count: 0,
        };
        tx.save(&c)?;
        Ok(c)
    })
    .await
}

/// Products whose search entries mention a category, re-indexed after the category
/// changes (renamed or deleted).
fn products_in_category(db: &Db, category: u64) -> StoreResult<Vec<u64>> {
    db.children(PRODUCTS_BY_CATEGORY, category, KeyOrder::Ascending)
}

pub async fn rename_category(db: &Db, id: u64, name: &str) -> StoreResult<Category> {
    let name = name.trim().to_string();
    let members = products_in_category(db, id)?;
    db.write(|tx| {
        if tx.get::<Category>(id)?.is_none() {
            return abort(StoreError::NotFound("Category"));
        }
        // Search entries carry category names: take them out under the old name...
        let mut products = Vec::with_capacity(members.len());
        for pid in &members {
            if let Some(p) = tx.get::<Product>(*pid)?.filter(Product::is_live) {
                uncount(tx, &p)?;
                products.push(p);
            }
        }
        let Some(mut c) = tx.get::<Category>(id)? else {
            return abort(StoreError::NotFound("Category"));
        };
        c.name = name.clone();
        c.slug = free_category_slug(tx, &name, id)?;
        tx.save(&c)?;
        // ...and back under the new one.
        for p in &products {
            count(tx, p)?;
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
        if tx.get::<Category>(id)?.is_none() {
            return abort(StoreError::NotFound("Category"));
        }
        for pid in &members {
            if let Some(old) = tx.get::<Product>(*pid)?.filter(Product::is_live) {
                uncount(tx, &old)?;
                let mut p = old.clone();
                p.category_ids.retain(|c| *c != id);
                p.updated_at = now;
                tx.save(&p)?;
                count(tx, &p)?;
            }
        }
        // Archived products keep no index entries but may still name it.
        tx.delete::<Category>(id).map(|_| ())
    })
    .await
}

pub fn category_refs(
    db: &Db,
    ids: &[u64],
    cache: &mut HashMap<u64, Option<CategoryRef>>,
) -> StoreResult<Vec<CategoryRef>> {
    if let Some(c) = Catalog::of(db) {
        return Ok(c.category_refs(ids));
    }
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

// Integrity.

/// What the catalog's indexes should hold, from its records, but for the search postings
/// (`search_entries`): the products' and categories' index entries, and the category
/// records with their counts. Used by `check`, `check --repair` and imports.
pub fn catalog_entries(categories: &[Category], products: &[Product]) -> StoreResult<TreeEntries> {
    let mut out = entries_of(products);
    out.extend(entries_of(categories));
    out.push((CATEGORIES, counted(categories, products)?));
    Ok(out)
}

/// Every catalog tree that follows from the product and category records in the database.
pub fn expected_entries(db: &Db) -> StoreResult<TreeEntries> {
    let (categories, products) = (categories(db)?, db.scan(KeyOrder::Ascending)?);
    let mut out = catalog_entries(&categories, &products)?;
    out.extend(search_entries(&categories, &products));
    Ok(out)
}

/// What `check` finds wrong in the catalog's indexes: one line per tree.
pub fn check_indexes(db: &Db) -> StoreResult<Vec<String>> {
    crate::db::index::problems(db, &expected_entries(db)?)
}

/// Rebuilds every catalog index from the product and category records.
pub fn repair_indexes(db: &Db) -> StoreResult<()> {
    crate::db::index::rebuild(db, expected_entries(db)?)
}

/// The category records with the number of live products that name each.
fn counted(categories: &[Category], products: &[Product]) -> StoreResult<Entries> {
    let mut counts: HashMap<u64, u64> = HashMap::new();
    for p in products.iter().filter(|p| p.is_live()) {
        for &c in &p.category_ids {
            *counts.entry(c).or_default() += 1;
        }
    }
    let mut records = Vec::with_capacity(categories.len());
    for c in categories {
        let mut c = c.clone();
        c.product_count = counts.get(&c.id).copied().unwrap_or(0);
        records.push((id_key(c.id).to_vec(), encode(&c)?));
    }
    Ok(sorted(records))
}

/// The search postings of the live products, as `search::index` would write them.
pub fn search_entries(categories: &[Category], products: &[Product]) -> TreeEntries {
    let names: HashMap<u64, &str> = categories.iter().map(|c| (c.id, c.name.as_str())).collect();
    let postings = search::build(products.iter().filter(|p| p.is_live()).map(|p| {
        let cats = p
            .category_ids
            .iter()
            .filter_map(|c| names.get(c).map(|n| n.to_string()))
            .collect();
        (p, cats)
    }));
    vec![(SEARCH_POSTINGS, postings)]
}
