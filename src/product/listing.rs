//! Listing the catalog: the keys of the listing indexes (one place to change them), the
//! entries a live product adds to them, and one page of products for any filters and
//! sort, served from those indexes.

use std::collections::{BTreeSet, HashMap};

use crate::core::page::{Page, Pagination};
use crate::core::text::fold;
use crate::db::keys::ordered_i64;
use crate::db::{id_key, key_id, Db, IndexEntry, KeyOrder, Scan, StoreResult};
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

/// The listing entries of a live product (archived ones have none).
pub fn entries(p: &Product) -> Vec<IndexEntry> {
    let id = p.id;
    let mut out = vec![
        IndexEntry::key(
            PRODUCTS_LIVE,
            newest_first_key(id).to_vec(),
            Facet::of(p).encode(),
        ),
        IndexEntry::key(PRODUCTS_BY_PRICE, price_key(p.price, id), Vec::new()),
        IndexEntry::key(PRODUCTS_BY_TITLE, title_key(&p.title, id), Vec::new()),
        IndexEntry::key(PRODUCTS_BY_RATING, rating_key(p, id), Vec::new()),
    ];
    for &c in &p.category_ids {
        out.push(IndexEntry::link(PRODUCTS_BY_CATEGORY, c, id));
        out.push(IndexEntry::key(
            PRODUCTS_BY_CATEGORY_PRICE,
            category_price_key(c, p.price, id),
            Vec::new(),
        ));
    }
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Newest,
    PriceAsc,
    PriceDesc,
    Title,
    Rating,
    Relevance,
}

/// A position in a sorted listing: the sort key of the last item a client has seen. Sent
/// as an opaque text (`after`, answered as `next`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cursor {
    pub sort: Sort,
    pub a: u64,
    pub text: Option<String>,
    pub b: u64,
}

impl Sort {
    fn tag(self) -> u8 {
        match self {
            Sort::Newest => 1,
            Sort::PriceAsc => 2,
            Sort::PriceDesc => 3,
            Sort::Title => 4,
            Sort::Rating => 5,
            Sort::Relevance => 6,
        }
    }

    fn from_tag(tag: u8) -> Option<Sort> {
        Some(match tag {
            1 => Sort::Newest,
            2 => Sort::PriceAsc,
            3 => Sort::PriceDesc,
            4 => Sort::Title,
            5 => Sort::Rating,
            6 => Sort::Relevance,
            _ => return None,
        })
    }
}

impl Cursor {
    pub fn encode(&self) -> String {
        let mut bytes = vec![self.sort.tag()];
        bytes.extend_from_slice(&self.a.to_be_bytes());
        bytes.extend_from_slice(&self.b.to_be_bytes());
        if let Some(t) = &self.text {
            bytes.extend_from_slice(t.as_bytes());
        }
        hex::encode(bytes)
    }

    /// A cursor as `encode` wrote it, or `None`.
    pub fn parse(text: &str) -> Option<Cursor> {
        let bytes = hex::decode(text.trim()).ok()?;
        if bytes.len() < 17 {
            return None;
        }
        let sort = Sort::from_tag(bytes[0])?;
        let text = String::from_utf8(bytes[17..].to_vec()).ok()?;
        Some(Cursor {
            sort,
            a: key_id(&bytes[1..9]),
            b: key_id(&bytes[9..17]),
            text: (sort == Sort::Title).then_some(text),
        })
    }
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
            .filter(|p| p.is_live() && filters.matches(p))
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
