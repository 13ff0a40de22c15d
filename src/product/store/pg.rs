//! The catalog on PostgreSQL: `products`, `categories` and `product_categories` as
//! `export-pg` writes them, plus the columns serving keeps (ratings, the search vector).
//!
//! Search: `products.search` holds the folded words of the title (weight A), the category
//! names (B) and the description (C) under the `simple` configuration, with a GIN index;
//! a query matches every word, the last one as a prefix, ranked by `ts_rank` with those
//! weights. Listing: each documented sort is served by an index (see the migration).

use std::collections::HashMap;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

use super::{sorted_unique, Deleted, ProductChanges};
use crate::core::page::{Page, Pagination};
use crate::core::text::{fold, slugify, words};
use crate::db::pg::{duplicate, id, key, micros, ts, PgDb, Prepared};
use crate::db::{StoreError, StoreResult, Unique};
use crate::product::listing::{Cursor, Filters, Sort};
use crate::product::model::*;

/// A product's columns, in the order `product_of` reads them.
const PRODUCT: &str = "p.id, p.title, p.description, p.slug, (p.price * 100)::int8, \
    p.stock_quantity, p.image_url, \
    COALESCE((SELECT array_agg(pc.category_id ORDER BY pc.category_id) \
              FROM product_categories pc WHERE pc.product_id = p.id), '{}'::int8[]), \
    p.rating_sum, p.rating_count, p.archived_at, \
    EXISTS (SELECT 1 FROM order_items oi WHERE oi.product_id = p.id), \
    p.created_at, p.updated_at";

const PRODUCT_COLUMNS: usize = 14;

const SLUG_TAKEN: &[(&str, Unique)] = &[("products_slug_key", Unique::Slug)];

const CATEGORY_TAKEN: &[(&str, Unique)] = &[
    ("categories_name_key", Unique::CategoryName),
    ("categories_name_lower_key", Unique::CategoryName),
    ("categories_slug_key", Unique::CategorySlug),
];

/// The ranking weights of `ts_rank`: {D, C, B, A} = {-, description, categories, title}.
const RANK: &str = "ts_rank('{0.0, 0.3333, 0.6667, 1.0}', p.search, to_tsquery('simple', $Q))";

/// Highest rating first, unrated last (`rating_rank` of the listing, as a number).
const RATING: &str =
    "(CASE WHEN p.rating_count = 0 THEN -1 ELSE p.rating_sum * 1000 / p.rating_count END)";

const TITLE: &str = "lower(p.title) COLLATE \"C\"";

pub fn product_of(row: &Row) -> Product {
    let image: Option<String> = row.get(6);
    let categories: Vec<i64> = row.get(7);
    let archived: Option<std::time::SystemTime> = row.get(10);
    Product {
        id: id(row.get(0)),
        title: row.get(1),
        description: row.get(2),
        slug: row.get(3),
        price: row.get(4),
        stock_quantity: row.get(5),
        image: image.map(|url| url.strip_prefix("/media/").unwrap_or(&url).to_string()),
        category_ids: categories.into_iter().map(id).collect(),
        rating_sum: row.get::<_, i64>(8).max(0) as u64,
        rating_count: row.get::<_, i64>(9).max(0) as u64,
        archived_at: archived.map(micros),
        referenced: row.get(11),
        created_at: micros(row.get(12)),
        updated_at: micros(row.get(13)),
    }
}

/// A product, live or archived; `lock` takes its row for the transaction.
pub async fn find(c: &impl GenericClient, pid: u64, lock: bool) -> StoreResult<Option<Product>> {
    let lock = if lock { " FOR UPDATE OF p" } else { "" };
    let statement = c
        .prepare_cached(&format!(
            "SELECT {PRODUCT} FROM products p WHERE p.id = $1{lock}"
        ))
        .await?;
    let row = c.query_opt(&statement, &[&key(pid)]).await?;
    Ok(row.as_ref().map(product_of))
}

fn keys(ids: &[u64]) -> Vec<i64> {
    ids.iter().map(|i| key(*i)).collect()
}

async fn check_categories(c: &impl GenericClient, ids: &[u64]) -> StoreResult<()> {
    if ids.is_empty() {
        return Ok(());
    }
    let found: Vec<i64> = c
        .query(
            "SELECT id FROM categories WHERE id = ANY($1)",
            &[&keys(ids)],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    match ids.iter().find(|i| !found.contains(&key(**i))) {
        Some(missing) => Err(StoreError::UnknownCategory(*missing)),
        None => Ok(()),
    }
}

/// `wanted`, or with `-2`, `-3`... when another row of `table` holds it.
async fn free_slug(
    c: &impl GenericClient,
    table: &str,
    wanted: &str,
    own: u64,
    what: Unique,
) -> StoreResult<String> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {table} WHERE slug = $1 AND id <> $2)");
    for n in 1..10_000u32 {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        let taken: bool = c.query_one(&sql, &[&candidate, &key(own)]).await?.get(0);
        if !taken {
            return Ok(candidate);
        }
    }
    Err(StoreError::Duplicate(what))
}

/// A slug the client chose: a 409 when another product (archived ones included) holds it.
async fn chosen_slug(c: &impl GenericClient, wanted: &str, own: u64) -> StoreResult<String> {
    let taken: bool = c
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM products WHERE slug = $1 AND id <> $2)",
            &[&wanted, &key(own)],
        )
        .await?
        .get(0);
    if taken {
        return Err(StoreError::Duplicate(Unique::Slug));
    }
    Ok(wanted.to_string())
}

/// Rewrites a product's search vector from its title, categories and description, folded
/// as the search words are.
pub async fn reindex(c: &impl GenericClient, pids: &[u64]) -> StoreResult<()> {
    if pids.is_empty() {
        return Ok(());
    }
    let rows = c
        .query(
            "SELECT p.id, p.title, p.description, \
             COALESCE((SELECT string_agg(c.name, ' ') FROM product_categories pc \
                       JOIN categories c ON c.id = pc.category_id \
                       WHERE pc.product_id = p.id), '') \
             FROM products p WHERE p.id = ANY($1)",
            &[&keys(pids)],
        )
        .await?;
    let mut ids = Vec::with_capacity(rows.len());
    let (mut titles, mut categories, mut descriptions) = (Vec::new(), Vec::new(), Vec::new());
    for r in &rows {
        ids.push(r.get::<_, i64>(0));
        titles.push(words(r.get(1)).join(" "));
        descriptions.push(words(r.get(2)).join(" "));
        categories.push(words(r.get(3)).join(" "));
    }
    c.execute(
        "UPDATE products p SET search = \
         setweight(to_tsvector('simple', u.t), 'A') || \
         setweight(to_tsvector('simple', u.c), 'B') || \
         setweight(to_tsvector('simple', u.d), 'C') \
         FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[]) AS u(id, t, c, d) \
         WHERE p.id = u.id",
        &[&ids, &titles, &categories, &descriptions],
    )
    .await?;
    Ok(())
}

/// Fills the search vector of products that have none (those `export-pg` wrote), a
/// thousand at a time. Having rewritten rows, it vacuums and analyzes the catalog's
/// tables: an export leaves them without statistics and the rewrite leaves every old row
/// dead, so until autovacuum came by the planner guessed (a sort of all products for
/// one page) and no listing could be an index-only scan.
pub async fn backfill_search(pg: &PgDb) -> StoreResult<u64> {
    let c = pg.client().await?;
    let mut done = 0;
    loop {
        let ids: Vec<u64> = c
            .query(
                "SELECT id FROM products WHERE search IS NULL ORDER BY id LIMIT 1000",
                &[],
            )
            .await?
            .iter()
            .map(|r| id(r.get(0)))
            .collect();
        if ids.is_empty() {
            if done > 0 {
                c.batch_execute("VACUUM (ANALYZE) products, product_categories, categories")
                    .await?;
            }
            return Ok(done);
        }
        reindex(&c, &ids).await?;
        done += ids.len() as u64;
    }
}

async fn set_categories(c: &impl GenericClient, pid: u64, ids: &[u64]) -> StoreResult<()> {
    c.execute(
        "DELETE FROM product_categories WHERE product_id = $1",
        &[&key(pid)],
    )
    .await?;
    c.execute(
        "INSERT INTO product_categories (product_id, category_id) \
         SELECT $1::int8, unnest($2::int8[])",
        &[&key(pid), &keys(ids)],
    )
    .await?;
    Ok(())
}

fn image_url(p: &Product) -> Option<String> {
    p.image_url()
}

/// Moves the count of live products (a row every instance shares).
async fn count_live(c: &impl GenericClient, delta: i64) -> StoreResult<()> {
    if delta != 0 {
        c.execute(
            "UPDATE counters SET value = value + $1 WHERE name = 'live_products'",
            &[&delta],
        )
        .await?;
    }
    Ok(())
}

/// Writes a product row; with `with_id` under its own id, else under a new one.
async fn insert(c: &impl GenericClient, p: &Product, with_id: bool) -> StoreResult<u64> {
    // Without an id, the sequence's next.
    let sql = "INSERT INTO products (id, title, description, slug, price, stock_quantity, \
               image_url, archived_at, created_at, updated_at) \
               VALUES (COALESCE($1::int8, nextval(pg_get_serial_sequence('products', 'id'))), \
               $2, $3, $4, ($5::int8)::numeric / 100, $6, $7, $8, $9, $10) RETURNING id";
    let id_value: Option<i64> = with_id.then(|| key(p.id));
    let row = c
        .query_one(
            sql,
            &[
                &id_value,
                &p.title,
                &p.description,
                &p.slug,
                &p.price,
                &p.stock_quantity,
                &image_url(p),
                &p.archived_at.map(ts),
                &ts(p.created_at),
                &ts(p.updated_at),
            ],
        )
        .await
        .map_err(|e| duplicate(e, SLUG_TAKEN))?;
    Ok(id(row.get(0)))
}

pub async fn create_product(pg: &PgDb, c: ProductChanges, now: i64) -> StoreResult<Product> {
    let mut p = c.new_product(0, now);
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    check_categories(&tx, &p.category_ids).await?;
    p.slug = match &c.slug {
        Some(slug) => chosen_slug(&tx, slug, 0).await?,
        None => {
            let wanted = slugify(&p.title, "product");
            free_slug(&tx, "products", &wanted, 0, Unique::Slug).await?
        }
    };
    p.id = insert(&tx, &p, false).await?;
    set_categories(&tx, p.id, &p.category_ids).await?;
    reindex(&tx, &[p.id]).await?;
    count_live(&tx, 1).await?;
    pg.commit(tx).await?;
    Ok(p)
}

pub async fn insert_products_batch(pg: &PgDb, products: &[Product]) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let mut ids = Vec::with_capacity(products.len());
    for p in products {
        let mut p = p.clone();
        p.slug = free_slug(&tx, "products", &p.slug, p.id, Unique::Slug).await?;
        insert(&tx, &p, true).await?;
        set_categories(&tx, p.id, &sorted_unique(&p.category_ids)).await?;
        ids.push(p.id);
    }
    for chunk in ids.chunks(1000) {
        reindex(&tx, chunk).await?;
    }
    let live = products.iter().filter(|p| p.is_live()).count() as i64;
    count_live(&tx, live).await?;
    tx.batch_execute(
        "SELECT setval(pg_get_serial_sequence('products', 'id'), \
         GREATEST((SELECT max(id) FROM products), 1))",
    )
    .await?;
    pg.commit(tx).await
}

pub async fn update_product(
    pg: &PgDb,
    pid: u64,
    c: ProductChanges,
    now: i64,
) -> StoreResult<(Product, Product)> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let Some(old) = find(&tx, pid, true).await?.filter(Product::is_live) else {
        return Err(StoreError::NotFound("Product"));
    };
    let mut p = c.applied_to(&old, now);
    if c.category_ids.is_some() {
        check_categories(&tx, &p.category_ids).await?;
    }
    if let Some(slug) = c.slug.as_ref().filter(|s| **s != old.slug) {
        p.slug = chosen_slug(&tx, slug, pid).await?;
    }
    tx.execute(
        "UPDATE products SET title = $2, description = $3, slug = $4, \
         price = ($5::int8)::numeric / 100, stock_quantity = $6, image_url = $7, updated_at = $8 \
         WHERE id = $1",
        &[
            &key(pid),
            &p.title,
            &p.description,
            &p.slug,
            &p.price,
            &p.stock_quantity,
            &image_url(&p),
            &ts(p.updated_at),
        ],
    )
    .await
    .map_err(|e| duplicate(e, SLUG_TAKEN))?;
    if p.category_ids != old.category_ids {
        set_categories(&tx, pid, &p.category_ids).await?;
    }
    if (&p.title, &p.description, &p.category_ids)
        != (&old.title, &old.description, &old.category_ids)
    {
        reindex(&tx, &[pid]).await?;
    }
    pg.commit(tx).await?;
    Ok((old, p))
}

pub async fn delete_product(pg: &PgDb, pid: u64, now: i64) -> StoreResult<Deleted> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let Some(p) = find(&tx, pid, true).await?.filter(Product::is_live) else {
        return Err(StoreError::NotFound("Product"));
    };
    let out = if p.referenced {
        tx.execute(
            "UPDATE products SET archived_at = $2, updated_at = $2 WHERE id = $1",
            &[&key(pid), &ts(now)],
        )
        .await?;
        let mut archived = p;
        archived.archived_at = Some(now);
        archived.updated_at = now;
        Deleted::Archived(archived)
    } else {
        tx.execute("DELETE FROM products WHERE id = $1", &[&key(pid)])
            .await?;
        Deleted::Removed(p)
    };
    count_live(&tx, -1).await?;
    pg.commit(tx).await?;
    Ok(out)
}

pub async fn product(pg: &PgDb, pid: u64) -> StoreResult<Option<Product>> {
    find(&pg.client().await?, pid, false).await
}

/// A live product by id or slug. Its statements stay prepared on each pooled connection
/// (as `find`'s and `category_refs`'): parsing and planning them anew took as long as
/// running them.
pub async fn live_product_by_slug_or_id(pg: &PgDb, text: &str) -> StoreResult<Option<Product>> {
    let c = pg.client().await?;
    let row = match text.parse::<u64>() {
        Ok(pid) => {
            let statement = c
                .prepare_cached(&format!(
                    "SELECT {PRODUCT} FROM products p WHERE p.id = $1 AND p.archived_at IS NULL"
                ))
                .await?;
            c.query_opt(&statement, &[&key(pid)]).await?
        }
        Err(_) => {
            let statement = c
                .prepare_cached(&format!(
                    "SELECT {PRODUCT} FROM products p WHERE p.slug = $1 AND p.archived_at IS NULL"
                ))
                .await?;
            c.query_opt(&statement, &[&text]).await?
        }
    };
    Ok(row.as_ref().map(product_of))
}

pub async fn low_stock(pg: &PgDb, at_most: i64, limit: usize) -> StoreResult<Vec<Product>> {
    let c = pg.client().await?;
    let rows = c
        .query(
            &format!(
                "SELECT {PRODUCT} FROM products p \
                 WHERE p.archived_at IS NULL AND p.stock_quantity <= $1 \
                 ORDER BY p.stock_quantity, p.id LIMIT $2"
            ),
            &[&at_most, &(limit.min(i64::MAX as usize) as i64)],
        )
        .await?;
    Ok(rows.iter().map(product_of).collect())
}

/// A query's words as a `tsquery`: every word, the last one as a prefix.
fn tsquery(q: &str) -> Option<String> {
    let terms = words(q);
    let last = terms.len().checked_sub(1)?;
    let parts: Vec<String> = terms
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let quoted = format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''"));
            if i == last {
                format!("{quoted}:*")
            } else {
                quoted
            }
        })
        .collect();
    Some(parts.join(" & "))
}

/// A query under construction: conditions and their parameters.
struct Query {
    conditions: Vec<String>,
    params: Vec<Box<dyn ToSql + Sync + Send>>,
}

impl Query {
    /// `$N` for a new parameter.
    fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }

    fn condition(&self) -> String {
        self.conditions.join(" AND ")
    }
}

fn in_categories(query: &mut Query, ids: &[u64]) {
    let n = query.param(keys(ids));
    query.conditions.push(format!(
        "EXISTS (SELECT 1 FROM product_categories pc \
         WHERE pc.product_id = p.id AND pc.category_id = ANY({n}))"
    ));
}

fn contains_any(query: &mut Query, column: &str, folded: &[String]) {
    if folded.is_empty() {
        return;
    }
    let n = query.param(folded.to_vec());
    query.conditions.push(format!(
        "EXISTS (SELECT 1 FROM unnest({n}::text[]) f WHERE strpos(lower(p.{column}), f) > 0)"
    ));
}

/// The sort key a listing orders by, as `(SQL expression of its key, ORDER BY)`.
fn order_of(sort: Sort, rank: Option<&str>) -> (String, &'static str) {
    match (sort, rank) {
        (Sort::Relevance, Some(rank)) => (rank.to_string(), "k DESC, p.id"),
        (Sort::Newest | Sort::Relevance, _) => ("p.id".into(), "p.id DESC"),
        (Sort::PriceAsc, _) => ("(p.price * 100)::int8".into(), "p.price, p.id"),
        (Sort::PriceDesc, _) => ("(p.price * 100)::int8".into(), "p.price DESC, p.id DESC"),
        (Sort::Title, _) => (TITLE.into(), "k, p.id"),
        (Sort::Rating, _) => (RATING.into(), "k DESC, p.id"),
    }
}

/// The cursor of a listed product, from its sort key.
fn cursor_of(sort: Sort, has_rank: bool, row: &Row) -> Cursor {
    let pid = id(row.get(0));
    let (a, text, b) = match (sort, has_rank) {
        (Sort::Relevance, true) => (
            row.get::<_, f32>(PRODUCT_COLUMNS).to_bits() as u64,
            None,
            pid,
        ),
        (Sort::Newest | Sort::Relevance, _) => (u64::MAX - pid, None, 0),
        (Sort::PriceAsc | Sort::PriceDesc, _) => {
            (row.get::<_, i64>(PRODUCT_COLUMNS) as u64, None, pid)
        }
        (Sort::Title, _) => (0, Some(row.get::<_, String>(PRODUCT_COLUMNS)), pid),
        (Sort::Rating, _) => ((row.get::<_, i64>(PRODUCT_COLUMNS) + 1) as u64, None, pid),
    };
    Cursor { sort, a, text, b }
}

/// The condition for the products that follow `c` in its sort.
fn after_cursor(query: &mut Query, key: &str, c: &Cursor, has_rank: bool) {
    let condition = match (c.sort, has_rank) {
        (Sort::Relevance, true) => {
            let s = query.param(f32::from_bits(c.a as u32));
            let i = query.param(key_i64(c.b));
            format!("({key} < {s}::real OR ({key} = {s}::real AND p.id > {i}))")
        }
        (Sort::Newest | Sort::Relevance, _) => {
            let i = query.param(key_i64(u64::MAX - c.a));
            format!("p.id < {i}")
        }
        (Sort::PriceAsc, _) => {
            let v = query.param(c.a as i64);
            let i = query.param(key_i64(c.b));
            format!("(p.price, p.id) > (({v}::int8)::numeric / 100, {i})")
        }
        (Sort::PriceDesc, _) => {
            let v = query.param(c.a as i64);
            let i = query.param(key_i64(c.b));
            format!("(p.price, p.id) < (({v}::int8)::numeric / 100, {i})")
        }
        (Sort::Title, _) => {
            let t = query.param(c.text.clone().unwrap_or_default());
            let i = query.param(key_i64(c.b));
            format!("(({key}) > ({t}::text COLLATE \"C\") OR (({key}) = ({t}::text COLLATE \"C\") AND p.id > {i}))")
        }
        (Sort::Rating, _) => {
            let r = query.param(c.a as i64 - 1);
            let i = query.param(key_i64(c.b));
            format!("({key} < {r} OR ({key} = {r} AND p.id > {i}))")
        }
    };
    query.conditions.push(condition);
}

fn key_i64(v: u64) -> i64 {
    key(v)
}

pub async fn list(
    pg: &PgDb,
    filters: &Filters,
    sort: Sort,
    page: Pagination,
    after: Option<&Cursor>,
    q: Option<&str>,
) -> StoreResult<Page<Product>> {
    let empty_filter = filters.category_any.as_ref().is_some_and(Vec::is_empty)
        || filters
            .category_named_any
            .as_ref()
            .is_some_and(Vec::is_empty);
    if empty_filter {
        return Ok(page.page_of(Vec::new(), 0));
    }
    let mut query = Query {
        conditions: vec!["p.archived_at IS NULL".into()],
        params: Vec::new(),
    };
    let mut rank = None;
    if let Some(q) = q {
        let Some(ts) = tsquery(q) else {
            return Ok(page.page_of(Vec::new(), 0));
        };
        let n = query.param(ts);
        query
            .conditions
            .push(format!("p.search @@ to_tsquery('simple', {n})"));
        rank = Some(RANK.replace("$Q", &n));
    }
    if let Some(ids) = &filters.category_any {
        in_categories(&mut query, ids);
    }
    if let Some(ids) = &filters.category_named_any {
        in_categories(&mut query, ids);
    }
    if let Some(min) = filters.min_price {
        let n = query.param(min);
        query
            .conditions
            .push(format!("p.price >= ({n}::int8)::numeric / 100"));
    }
    if let Some(max) = filters.max_price {
        let n = query.param(max);
        query
            .conditions
            .push(format!("p.price <= ({n}::int8)::numeric / 100"));
    }
    match filters.in_stock {
        Some(true) => query.conditions.push("p.stock_quantity > 0".into()),
        Some(false) => query.conditions.push("p.stock_quantity <= 0".into()),
        None => {}
    }
    contains_any(&mut query, "title", &filters.title);
    contains_any(&mut query, "description", &filters.description);
    let c = pg.client().await?;
    let only_categories = rank.is_none()
        && filters.min_price.is_none()
        && filters.max_price.is_none()
        && filters.in_stock.is_none()
        && filters.title.is_empty()
        && filters.description.is_empty();
    let total: i64 = match (&filters.category_any, &filters.category_named_any) {
        // No filter: the count every write keeps, not a scan of the products.
        (None, None) if only_categories => c
            .query_one(
                "SELECT value FROM counters WHERE name = 'live_products'",
                &[],
            )
            .await?
            .get(0),
        // Categories only: from their rows in `product_categories`.
        (Some(ids), None) | (None, Some(ids)) if only_categories => c
            .query_one(
                "SELECT count(DISTINCT pc.product_id) FROM product_categories pc \
                 JOIN products p ON p.id = pc.product_id \
                 WHERE pc.category_id = ANY($1) AND p.archived_at IS NULL",
                &[&keys(ids)],
            )
            .await?
            .get(0),
        _ => c
            .query_one(
                &format!(
                    "SELECT count(*) FROM products p WHERE {}",
                    query.condition()
                ),
                &query.refs(),
            )
            .await?
            .get(0),
    };
    let total = total.max(0) as u64;
    let has_rank = rank.is_some();
    let (key_sql, order) = order_of(sort, rank.as_deref());
    let limit = page.limit.max(1) as usize;
    let start = match after {
        Some(cursor) => {
            after_cursor(&mut query, &key_sql, cursor, has_rank);
            let remaining: i64 = c
                .query_one(
                    &format!(
                        "SELECT count(*) FROM products p WHERE {}",
                        query.condition()
                    ),
                    &query.refs(),
                )
                .await?
                .get(0);
            total.saturating_sub(remaining.max(0) as u64) as usize
        }
        None => page.offset(),
    };
    let offset = if after.is_some() { 0 } else { start };
    let l = query.param(limit as i64);
    let o = query.param(offset as i64);
    // The page's ids first, then their columns: the subqueries of `PRODUCT` run for the
    // page's rows only, not for every row OFFSET skips.
    let rows = c
        .query(
            &format!(
                "SELECT {PRODUCT}, s.k AS k FROM (SELECT p.id, {key_sql} AS k FROM products p \
                 WHERE {} ORDER BY {order} LIMIT {l} OFFSET {o}) s \
                 JOIN products p ON p.id = s.id ORDER BY {order}",
                query.condition()
            ),
            &query.refs(),
        )
        .await?;
    let next = match rows.last() {
        Some(last) if (start + rows.len()) < total as usize => {
            Some(cursor_of(sort, has_rank, last).encode())
        }
        _ => None,
    };
    let at = Pagination {
        page: (start / limit + 1).min(u32::MAX as usize) as u32,
        limit: page.limit,
    };
    let mut out = at.page_of(rows.iter().map(product_of).collect(), total);
    out.next = next;
    Ok(out)
}

// Categories.

const CATEGORY: &str = "c.id, c.name, c.slug, \
    (SELECT count(*) FROM product_categories pc JOIN products p ON p.id = pc.product_id \
     WHERE pc.category_id = c.id AND p.archived_at IS NULL)";

fn category_of(row: &Row) -> Category {
    Category {
        id: id(row.get(0)),
        name: row.get(1),
        slug: row.get(2),
        product_count: row.get::<_, i64>(3).max(0) as u64,
    }
}

async fn find_category(
    c: &impl GenericClient,
    where_: &str,
    param: &(dyn ToSql + Sync),
) -> StoreResult<Option<Category>> {
    let row = c
        .query_opt(
            &format!("SELECT {CATEGORY} FROM categories c WHERE {where_}"),
            &[param],
        )
        .await?;
    Ok(row.as_ref().map(category_of))
}

pub async fn categories(pg: &PgDb) -> StoreResult<Vec<Category>> {
    let c = pg.client().await?;
    let rows = c
        .query(
            &format!("SELECT {CATEGORY} FROM categories c ORDER BY c.id"),
            &[],
        )
        .await?;
    Ok(rows.iter().map(category_of).collect())
}

pub async fn category(pg: &PgDb, cid: u64) -> StoreResult<Option<Category>> {
    find_category(&pg.client().await?, "c.id = $1", &key(cid)).await
}

pub async fn category_by_id_or_slug(pg: &PgDb, text: &str) -> StoreResult<Option<Category>> {
    let c = pg.client().await?;
    match text.parse::<u64>() {
        Ok(cid) => find_category(&c, "c.id = $1", &key(cid)).await,
        Err(_) => find_category(&c, "c.slug = $1", &text).await,
    }
}

pub async fn category_by_name(pg: &PgDb, name: &str) -> StoreResult<Option<Category>> {
    let c = pg.client().await?;
    let folded = fold(name.trim());
    let rows = c
        .query(
            &format!(
                "SELECT {CATEGORY} FROM categories c WHERE lower(c.name) = lower($1) ORDER BY c.id"
            ),
            &[&name.trim()],
        )
        .await?;
    // `lower` does not take accents off as `fold` does: the folded name decides.
    Ok(rows
        .iter()
        .map(category_of)
        .find(|c| fold(&c.name) == folded))
}

pub async fn create_category(pg: &PgDb, name: &str) -> StoreResult<Category> {
    let name = name.trim().to_string();
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let slug = free_slug(
        &tx,
        "categories",
        &slugify(&name, "category"),
        0,
        Unique::CategorySlug,
    )
    .await?;
    let row = tx
        .query_one(
            "INSERT INTO categories (name, slug) VALUES ($1, $2) RETURNING id",
            &[&name, &slug],
        )
        .await
        .map_err(|e| duplicate(e, CATEGORY_TAKEN))?;
    pg.commit(tx).await?;
    Ok(Category {
        id: id(row.get(0)),
        name,
        slug,
        product_count: 0,
    })
}

async fn live_members(c: &impl GenericClient, cid: u64) -> StoreResult<Vec<u64>> {
    Ok(c.query(
        "SELECT pc.product_id FROM product_categories pc JOIN products p ON p.id = pc.product_id \
         WHERE pc.category_id = $1 AND p.archived_at IS NULL ORDER BY pc.product_id",
        &[&key(cid)],
    )
    .await?
    .iter()
    .map(|r| id(r.get(0)))
    .collect())
}

pub async fn rename_category(pg: &PgDb, cid: u64, name: &str) -> StoreResult<Category> {
    let name = name.trim().to_string();
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let locked = tx
        .query_opt(
            "SELECT id FROM categories WHERE id = $1 FOR UPDATE",
            &[&key(cid)],
        )
        .await?;
    if locked.is_none() {
        return Err(StoreError::NotFound("Category"));
    }
    let slug = free_slug(
        &tx,
        "categories",
        &slugify(&name, "category"),
        cid,
        Unique::CategorySlug,
    )
    .await?;
    tx.execute(
        "UPDATE categories SET name = $2, slug = $3 WHERE id = $1",
        &[&key(cid), &name, &slug],
    )
    .await
    .map_err(|e| duplicate(e, CATEGORY_TAKEN))?;
    let members = live_members(&tx, cid).await?;
    for chunk in members.chunks(1000) {
        reindex(&tx, chunk).await?;
    }
    let category = find_category(&tx, "c.id = $1", &key(cid))
        .await?
        .ok_or(StoreError::NotFound("Category"))?;
    pg.commit(tx).await?;
    Ok(category)
}

pub async fn delete_category(pg: &PgDb, cid: u64, now: i64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let locked = tx
        .query_opt(
            "SELECT id FROM categories WHERE id = $1 FOR UPDATE",
            &[&key(cid)],
        )
        .await?;
    if locked.is_none() {
        return Err(StoreError::NotFound("Category"));
    }
    let members = live_members(&tx, cid).await?;
    tx.execute(
        "UPDATE products SET updated_at = $2 WHERE id = ANY($1)",
        &[&keys(&members), &ts(now)],
    )
    .await?;
    // Archived products lose it too (the rows go with the category).
    tx.execute("DELETE FROM categories WHERE id = $1", &[&key(cid)])
        .await?;
    for chunk in members.chunks(1000) {
        reindex(&tx, chunk).await?;
    }
    pg.commit(tx).await
}

pub async fn category_refs(
    pg: &PgDb,
    ids: &[u64],
    cache: &mut HashMap<u64, Option<CategoryRef>>,
) -> StoreResult<Vec<CategoryRef>> {
    let missing: Vec<u64> = ids
        .iter()
        .copied()
        .filter(|i| !cache.contains_key(i))
        .collect();
    if !missing.is_empty() {
        let c = pg.client().await?;
        let statement = c
            .prepare_cached("SELECT id, name, slug FROM categories WHERE id = ANY($1)")
            .await?;
        let rows = c.query(&statement, &[&keys(&missing)]).await?;
        for m in &missing {
            cache.insert(*m, None);
        }
        for r in &rows {
            let cref = CategoryRef {
                id: id(r.get(0)),
                name: r.get(1),
                slug: r.get(2),
            };
            cache.insert(cref.id, Some(cref));
        }
    }
    Ok(ids
        .iter()
        .filter_map(|i| cache.get(i).cloned().flatten())
        .collect())
}

/// Takes the rows of the products `ids` names for the transaction, in id order (every
/// writer of stock takes them so, so two never wait for each other); answers those that
/// exist, by id.
/// The products of these ids, read without taking their rows (checkout takes the stock
/// last, with `take_stock`).
pub async fn products_by_ids(
    c: &impl GenericClient,
    ids: &[u64],
) -> StoreResult<HashMap<u64, Product>> {
    let rows = c
        .pquery(
            &format!("SELECT {PRODUCT} FROM products p WHERE p.id = ANY($1) ORDER BY p.id"),
            &[&keys(&sorted_unique(ids))],
        )
        .await?;
    Ok(rows.iter().map(product_of).map(|p| (p.id, p)).collect())
}

/// Takes `quantity` of a live product's stock in one statement, which holds its row only
/// from here to the commit: `Err` with what is left when that is not enough (or the
/// product was archived meanwhile), and nothing changed.
pub async fn take_stock(
    c: &impl GenericClient,
    p: &Product,
    quantity: i64,
) -> StoreResult<Result<(), StoreError>> {
    let taken = c
        .pquery_opt(
            "UPDATE products SET stock_quantity = stock_quantity - $2 \
             WHERE id = $1 AND archived_at IS NULL AND stock_quantity >= $2 RETURNING id",
            &[&key(p.id), &quantity],
        )
        .await?;
    if taken.is_some() {
        return Ok(Ok(()));
    }
    let left = c
        .pquery_opt(
            "SELECT stock_quantity FROM products WHERE id = $1 AND archived_at IS NULL",
            &[&key(p.id)],
        )
        .await?
        .map(|r| r.get::<_, i64>(0))
        .unwrap_or(0);
    Ok(Err(StoreError::OutOfStock {
        product_id: p.id,
        title: p.title.clone(),
        left,
    }))
}

/// Changes a product's stock by `delta` (its row taken already); going below zero is a
/// conflict naming the product.
pub async fn change_stock(c: &impl GenericClient, p: &Product, delta: i64) -> StoreResult<()> {
    let stock = p.stock_quantity + delta;
    if stock < 0 {
        return Err(StoreError::OutOfStock {
            product_id: p.id,
            title: p.title.clone(),
            left: p.stock_quantity,
        });
    }
    c.execute(
        "UPDATE products SET stock_quantity = $2 WHERE id = $1",
        &[&key(p.id), &stock],
    )
    .await?;
    Ok(())
}

/// Adds (or with negative numbers removes) a review rating.
pub async fn change_rating(
    c: &impl GenericClient,
    pid: u64,
    sum_delta: i64,
    count_delta: i64,
) -> StoreResult<()> {
    c.execute(
        "UPDATE products SET rating_sum = GREATEST(rating_sum + $2, 0), \
         rating_count = GREATEST(rating_count + $3, 0) WHERE id = $1",
        &[&key(pid), &sum_delta, &count_delta],
    )
    .await?;
    Ok(())
}
