//! The catalog in memory, for reads on sled: every live product's facets, one sorted
//! sequence per sort order and the search postings. Listing page N costs what page 1
//! costs (the N-th entry of a sorted vector), a filtered listing is computed once per
//! catalog version and then sliced, and a search intersects in-memory posting lists.
//!
//! It is a `db::Derived`: built from the product and category records at open and told
//! of every committed write to them before the write returns, so it cannot drift from
//! the records. Each product carries a revision that moves whenever its record changes,
//! and `order_version` moves whenever a change could alter which products a listing or
//! search holds or their order (not on a stock change that keeps a product in stock):
//! response caches check those instead of every write of the shop.

use std::any::Any;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Mutex, RwLock};

use crate::core::text::{fold, words};
use crate::db::{key_id, Db, Derived, KeyOrder, StoreResult};
use crate::product::listing::{Cursor, Filters, Sort};
use crate::product::model::{Category, CategoryRef, Product, CATEGORIES, PRODUCTS};
use crate::product::search::{B, CATEGORY_WEIGHT, DESCRIPTION_WEIGHT, K1, TITLE_WEIGHT};

/// At most this many filtered listings and searches are kept per catalog version.
const KEPT_RESULTS: usize = 256;
/// The order version of a stamp that does not depend on listings' order.
const ANY_ORDER: u64 = u64::MAX;
/// Batches larger than this rebuild a sorted vector by one merge instead of one insert each.
const MERGE_ABOVE: usize = 32;

/// A product record and the bytes it is stored as.
type Stored = (Product, Arc<[u8]>);

/// One live product, as listings and search need it.
struct Doc {
    /// The record as stored: reads decode it from here, never waiting for the engine
    /// (whose transactions hold every reader back while they run).
    record: Arc<[u8]>,
    slug: Box<str>,
    price: i64,
    stock: i64,
    rating_rank: u64,
    /// Folded.
    title: Arc<str>,
    categories: Box<[u64]>,
    /// The terms it is posted under, and a hash of the text they came from.
    terms: Box<[u32]>,
    text_hash: u64,
    length: u16,
}

/// One product's entry in a term's posting list (its length is in its `Doc`).
#[derive(Clone, Copy)]
struct Post {
    id: u32,
    title: u8,
    description: u8,
    category: u8,
}

#[derive(Default)]
struct State {
    built: bool,
    /// Set when a product id does not fit the in-memory ids: reads go to the trees.
    too_big: bool,
    docs: Vec<Option<Doc>>,
    /// Revision of each product record (live or not) seen since open.
    revs: HashMap<u64, u64>,
    next_rev: u64,
    live: u64,
    total_length: u64,
    /// Live ids ascending (newest first is the reverse).
    newest: Vec<u32>,
    by_price: Vec<(i64, u32)>,
    by_title: Vec<(Arc<str>, u32)>,
    by_rating: Vec<(u64, u32)>,
    categories: HashMap<u64, CategoryRef>,
    slugs: HashMap<Box<str>, u32>,
    /// Terms ever posted since open (a term whose list empties keeps its empty list).
    term_ids: BTreeMap<Box<str>, u32>,
    postings: Vec<Vec<Post>>,
    order_version: u64,
}

/// Results computed for one catalog version: filtered listings and search hits.
#[derive(Default)]
struct Kept {
    version: u64,
    lists: HashMap<String, Arc<Vec<u32>>>,
    hits: HashMap<String, Arc<Vec<(u32, f64)>>>,
}

#[derive(Default)]
pub struct Catalog {
    state: RwLock<State>,
    kept: Mutex<Kept>,
}

/// One page of a listing or search, as ids, with what a response cache needs to know
/// whether it is still current.
pub struct Listed {
    pub ids: Vec<u64>,
    /// The stored records of `ids`.
    pub records: Vec<Arc<[u8]>>,
    pub total: u64,
    /// Position of the first item in the whole result.
    pub start: usize,
    /// The cursor of the last item, when more follow.
    pub next: Option<Cursor>,
    pub stamp: Stamp,
}

/// The catalog version an answer was built at and the revision of each product in it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stamp {
    pub order_version: u64,
    pub revs: Vec<(u64, u64)>,
}

fn rating_rank(p: &Product) -> u64 {
    if p.rating_count == 0 {
        u64::MAX
    } else {
        u64::MAX - 1 - (p.rating_avg() * 1000.0) as u64
    }
}

fn ordered_i64(v: i64) -> u64 {
    (v as u64) ^ (1 << 63)
}

fn ordered_f64(v: f64) -> u64 {
    let bits = v.to_bits();
    if bits >> 63 == 1 {
        !bits
    } else {
        bits ^ (1 << 63)
    }
}

fn saturate(n: usize) -> u8 {
    n.min(255) as u8
}

/// Removes `remove` from and adds `add` to a sorted vector.
fn update_sorted<K: Ord + Clone>(v: &mut Vec<K>, mut remove: Vec<K>, mut add: Vec<K>) {
    if remove.len() + add.len() <= MERGE_ABOVE {
        for r in &remove {
            if let Ok(i) = v.binary_search(r) {
                v.remove(i);
            }
        }
        for a in add {
            if let Err(i) = v.binary_search(&a) {
                v.insert(i, a);
            }
        }
        return;
    }
    if !remove.is_empty() {
        remove.sort_unstable();
        v.retain(|k| remove.binary_search(k).is_err());
    }
    if add.is_empty() {
        return;
    }
    add.sort_unstable();
    add.dedup();
    let old = std::mem::take(v);
    let mut out = Vec::with_capacity(old.len() + add.len());
    let mut a = add.into_iter().peekable();
    for k in old {
        while a.peek().is_some_and(|x| *x < k) {
            out.extend(a.next());
        }
        if a.peek().is_some_and(|x| *x == k) {
            a.next();
        }
        out.push(k);
    }
    out.extend(a);
    *v = out;
}

/// The key of a product in a sort order, ascending in the order's direction.
fn key_of(sort: Sort, id: u32, d: &Doc, score: f64) -> Cursor {
    let id = u64::from(id);
    let (a, text, b) = match sort {
        Sort::Newest => (u64::MAX - id, None, 0),
        Sort::PriceAsc => (ordered_i64(d.price), None, id),
        Sort::PriceDesc => (u64::MAX - ordered_i64(d.price), None, u64::MAX - id),
        Sort::Title => (0, Some(d.title.to_string()), id),
        Sort::Rating => (d.rating_rank, None, id),
        Sort::Relevance => (u64::MAX - ordered_f64(score), None, id),
    };
    Cursor { sort, a, text, b }
}

fn cursor_cmp(x: &Cursor, y: &Cursor) -> Ordering {
    (x.a, x.text.as_deref().unwrap_or(""), x.b).cmp(&(y.a, y.text.as_deref().unwrap_or(""), y.b))
}

fn bm25(p: &Post, length: u16, idf: f64, avg_length: f64) -> f64 {
    let tf = TITLE_WEIGHT * f64::from(p.title)
        + DESCRIPTION_WEIGHT * f64::from(p.description)
        + CATEGORY_WEIGHT * f64::from(p.category);
    let norm = K1 * (1.0 - B + B * f64::from(length) / avg_length);
    idf * tf * (K1 + 1.0) / (tf + norm)
}

/// First index at or after `from` whose id is not below `id` (galloping).
fn seek<T>(list: &[T], from: usize, id: u32, id_of: impl Fn(&T) -> u32) -> usize {
    let mut step = 1;
    let mut low = from;
    let mut high = from;
    while high < list.len() && id_of(&list[high]) < id {
        low = high + 1;
        high += step;
        step *= 2;
    }
    let high = high.min(list.len());
    low + list[low..high].partition_point(|x| id_of(x) < id)
}

/// One search word's matches: a single posting list scored lazily, or several (a prefix)
/// merged into `(id, score)`.
enum Word<'a> {
    One(&'a [Post], f64),
    Merged(Vec<(u32, f64)>),
}

impl Word<'_> {
    fn len(&self) -> usize {
        match self {
            Word::One(l, _) => l.len(),
            Word::Merged(m) => m.len(),
        }
    }
}

impl State {
    fn usable(&self) -> bool {
        self.built && !self.too_big
    }

    fn doc(&self, id: u32) -> Option<&Doc> {
        self.docs.get(id as usize).and_then(Option::as_ref)
    }

    fn bump_rev(&mut self, id: u64) {
        self.next_rev += 1;
        self.revs.insert(id, self.next_rev);
    }

    fn rev(&self, id: u64) -> u64 {
        self.revs.get(&id).copied().unwrap_or(0)
    }

    fn term_id(&mut self, term: &str) -> u32 {
        if let Some(&t) = self.term_ids.get(term) {
            return t;
        }
        self.postings.push(Vec::new());
        let t = (self.postings.len() - 1) as u32;
        self.term_ids.insert(term.into(), t);
        t
    }

    fn names_of(&self, categories: &[u64]) -> Vec<String> {
        categories
            .iter()
            .filter_map(|c| self.categories.get(c).map(|c| c.name.clone()))
            .collect()
    }

    fn length(&self, id: u32) -> u16 {
        self.doc(id).map(|d| d.length).unwrap_or(0)
    }

    /// Postings of a product by term (as `search::document` counts them).
    fn postings_of(p: &Product, names: &[String]) -> (BTreeMap<String, (u8, u8, u8)>, u16) {
        let title = words(&p.title);
        let description = words(&p.description);
        let categories: Vec<String> = names.iter().flat_map(|n| words(n)).collect();
        let length =
            (title.len() + description.len() + categories.len()).min(u16::MAX as usize) as u16;
        let mut counts: BTreeMap<String, (usize, usize, usize)> = BTreeMap::new();
        for w in title {
            counts.entry(w).or_default().0 += 1;
        }
        for w in description {
            counts.entry(w).or_default().1 += 1;
        }
        for w in categories {
            counts.entry(w).or_default().2 += 1;
        }
        let out = counts
            .into_iter()
            .map(|(w, (t, d, c))| (w, (saturate(t), saturate(d), saturate(c))))
            .collect();
        (out, length)
    }

    fn unpost(&mut self, id: u32, doc: &Doc) {
        for &t in doc.terms.iter() {
            let list = &mut self.postings[t as usize];
            if let Ok(i) = list.binary_search_by_key(&id, |p| p.id) {
                list.remove(i);
            }
            if list.is_empty() {
                *list = Vec::new();
            }
        }
        self.total_length = self.total_length.saturating_sub(u64::from(doc.length));
    }

    /// Posts a product under its terms; answers the term ids and document length.
    fn post(&mut self, id: u32, p: &Product, names: &[String]) -> (Box<[u32]>, u16) {
        let (postings, length) = State::postings_of(p, names);
        let mut terms = Vec::with_capacity(postings.len());
        for (term, (title, description, category)) in postings {
            let t = self.term_id(&term);
            let post = Post {
                id,
                title,
                description,
                category,
            };
            let list = &mut self.postings[t as usize];
            match list.last() {
                Some(last) if last.id >= id => match list.binary_search_by_key(&id, |p| p.id) {
                    Ok(i) => list[i] = post,
                    Err(i) => list.insert(i, post),
                },
                _ => list.push(post),
            }
            terms.push(t);
        }
        self.total_length += u64::from(length);
        (terms.into_boxed_slice(), length)
    }

    /// Brings the products `products` (id, record now and its stored bytes, or none) into
    /// the state.
    fn apply(&mut self, products: Vec<(u64, Option<Stored>)>) {
        let mut rm_newest = Vec::new();
        let mut add_newest = Vec::new();
        let mut rm_price = Vec::new();
        let mut add_price = Vec::new();
        let mut rm_title = Vec::new();
        let mut add_title = Vec::new();
        let mut rm_rating = Vec::new();
        let mut add_rating = Vec::new();
        let mut reordered = false;
        for (id, record) in products {
            self.bump_rev(id);
            let Ok(small) = u32::try_from(id) else {
                if record.as_ref().is_some_and(|r| r.0.is_live()) {
                    self.too_big = true;
                }
                continue;
            };
            let slot = small as usize;
            if self.docs.len() <= slot {
                self.docs.resize_with(slot + 1, || None);
            }
            let old = self.docs[slot].take();
            if let Some(o) = &old {
                if self.slugs.get(&o.slug) == Some(&small) {
                    self.slugs.remove(&o.slug);
                }
            }
            let new = record.filter(|r| r.0.is_live());
            let Some((p, bytes)) = new else {
                if let Some(old) = old {
                    self.unpost(small, &old);
                    self.live -= 1;
                    rm_newest.push(small);
                    rm_price.push((old.price, small));
                    rm_title.push((old.title.clone(), small));
                    rm_rating.push((old.rating_rank, small));
                    reordered = true;
                }
                continue;
            };
            let title: Arc<str> = fold(&p.title).into();
            let names = self.names_of(&p.category_ids);
            let text_hash = {
                use std::hash::{Hash, Hasher};
                let mut h = std::collections::hash_map::DefaultHasher::new();
                (&p.title, &p.description, &names).hash(&mut h);
                h.finish()
            };
            let rank = rating_rank(&p);
            let (terms, length) = match &old {
                Some(o) if o.text_hash == text_hash => (o.terms.clone(), o.length),
                _ => {
                    if let Some(o) = &old {
                        self.unpost(small, o);
                    }
                    self.post(small, &p, &names)
                }
            };
            match &old {
                None => {
                    self.live += 1;
                    add_newest.push(small);
                    add_price.push((p.price, small));
                    add_title.push((title.clone(), small));
                    add_rating.push((rank, small));
                    reordered = true;
                }
                Some(o) => {
                    if o.price != p.price {
                        rm_price.push((o.price, small));
                        add_price.push((p.price, small));
                    }
                    if o.title != title {
                        rm_title.push((o.title.clone(), small));
                        add_title.push((title.clone(), small));
                    }
                    if o.rating_rank != rank {
                        rm_rating.push((o.rating_rank, small));
                        add_rating.push((rank, small));
                    }
                    reordered |= o.price != p.price
                        || o.text_hash != text_hash
                        || o.rating_rank != rank
                        || *o.categories != p.category_ids[..]
                        || (o.stock > 0) != (p.stock_quantity > 0);
                }
            }
            self.slugs.insert(p.slug.as_str().into(), small);
            self.docs[slot] = Some(Doc {
                record: bytes,
                slug: p.slug.as_str().into(),
                price: p.price,
                stock: p.stock_quantity,
                rating_rank: rank,
                title,
                categories: p.category_ids.clone().into_boxed_slice(),
                terms,
                text_hash,
                length,
            });
        }
        update_sorted(&mut self.newest, rm_newest, add_newest);
        update_sorted(&mut self.by_price, rm_price, add_price);
        update_sorted(&mut self.by_title, rm_title, add_title);
        update_sorted(&mut self.by_rating, rm_rating, add_rating);
        if reordered {
            self.order_version += 1;
        }
    }

    fn matches(&self, f: &Filters, d: &Doc) -> bool {
        let in_any = |set: &Option<Vec<u64>>| {
            set.as_ref()
                .is_none_or(|ids| d.categories.iter().any(|c| ids.contains(c)))
        };
        in_any(&f.category_any)
            && in_any(&f.category_named_any)
            && f.min_price.is_none_or(|m| d.price >= m)
            && f.max_price.is_none_or(|m| d.price <= m)
            && f.in_stock.is_none_or(|s| (d.stock > 0) == s)
            && (f.title.is_empty() || f.title.iter().any(|t| d.title.contains(t.as_str())))
            && (f.description.is_empty() || {
                let p: Option<Product> = crate::db::decode(&d.record).ok();
                p.is_some_and(|p| {
                    let folded = fold(&p.description);
                    f.description.iter().any(|t| folded.contains(t.as_str()))
                })
            })
    }

    /// The live ids in `sort`'s order, position `i`.
    fn nth(&self, sort: Sort, i: usize) -> u32 {
        let n = self.newest.len();
        match sort {
            Sort::Newest | Sort::Relevance => self.newest[n - 1 - i],
            Sort::PriceAsc => self.by_price[i].1,
            Sort::PriceDesc => self.by_price[n - 1 - i].1,
            Sort::Title => self.by_title[i].1,
            Sort::Rating => self.by_rating[i].1,
        }
    }

    fn key(&self, sort: Sort, id: u32) -> Option<Cursor> {
        self.doc(id).map(|d| key_of(sort, id, d, 0.0))
    }

    /// Every live id matching `f`, in `sort`'s order.
    fn filtered(&self, f: &Filters, sort: Sort) -> Vec<u32> {
        (0..self.newest.len())
            .map(|i| self.nth(sort, i))
            .filter(|id| self.doc(*id).is_some_and(|d| self.matches(f, d)))
            .collect()
    }

    /// Products matching every word of `query` (the last as a prefix) with BM25 scores,
    /// in id order; the same as `search::search` over the stored postings.
    fn hits(&self, query: &str) -> Vec<(u32, f64)> {
        let terms = words(query);
        if terms.is_empty() || self.live == 0 {
            return Vec::new();
        }
        let n = self.live.max(1) as f64;
        let avg_length = (self.total_length as f64 / n).max(1.0);
        let idf = |df: usize| {
            let df = df as f64;
            (1.0 + (n - df + 0.5) / (df + 0.5)).ln()
        };
        let mut matched: Vec<Word> = Vec::with_capacity(terms.len());
        for (i, term) in terms.iter().enumerate() {
            let lists: Vec<&[Post]> = if i == terms.len() - 1 {
                self.term_ids
                    .range::<str, _>((
                        std::ops::Bound::Included(term.as_str()),
                        std::ops::Bound::Unbounded,
                    ))
                    .take_while(|(t, _)| t.starts_with(term.as_str()))
                    .map(|(_, &id)| self.postings[id as usize].as_slice())
                    .filter(|l| !l.is_empty())
                    .collect()
            } else {
                self.term_ids
                    .get(term.as_str())
                    .map(|&id| self.postings[id as usize].as_slice())
                    .filter(|l| !l.is_empty())
                    .into_iter()
                    .collect()
            };
            match lists.len() {
                0 => return Vec::new(),
                1 => matched.push(Word::One(lists[0], idf(lists[0].len()))),
                _ => {
                    let mut all: Vec<(u32, f64)> = Vec::new();
                    for list in lists {
                        let w = idf(list.len());
                        all.extend(
                            list.iter()
                                .map(|p| (p.id, bm25(p, self.length(p.id), w, avg_length))),
                        );
                    }
                    all.sort_by_key(|a| a.0);
                    let mut merged: Vec<(u32, f64)> = Vec::with_capacity(all.len());
                    for (id, s) in all {
                        match merged.last_mut() {
                            Some(last) if last.0 == id => last.1 += s,
                            _ => merged.push((id, s)),
                        }
                    }
                    matched.push(Word::Merged(merged));
                }
            }
        }
        // Walk the shortest word's matches; find each id in the others by galloping.
        let driver = (0..matched.len())
            .min_by_key(|&i| matched[i].len())
            .unwrap_or(0);
        let ids: Vec<u32> = match &matched[driver] {
            Word::One(l, _) => l.iter().map(|p| p.id).collect(),
            Word::Merged(m) => m.iter().map(|m| m.0).collect(),
        };
        let mut at = vec![0usize; matched.len()];
        let mut out = Vec::with_capacity(ids.len().min(1024));
        let mut scores = vec![0.0; matched.len()];
        'ids: for id in ids {
            for (w, word) in matched.iter().enumerate() {
                match word {
                    Word::One(list, idf) => {
                        let i = seek(list, at[w], id, |p| p.id);
                        at[w] = i;
                        match list.get(i) {
                            Some(p) if p.id == id => {
                                scores[w] = bm25(p, self.length(id), *idf, avg_length)
                            }
                            _ => continue 'ids,
                        }
                    }
                    Word::Merged(m) => {
                        let i = seek(m, at[w], id, |m| m.0);
                        at[w] = i;
                        match m.get(i) {
                            Some(&(mid, s)) if mid == id => scores[w] = s,
                            _ => continue 'ids,
                        }
                    }
                }
            }
            let mut total = scores[0];
            for s in &scores[1..] {
                total += s;
            }
            out.push((id, total));
        }
        out
    }

    fn records(&self, ids: &[u64]) -> Vec<Arc<[u8]>> {
        ids.iter()
            .filter_map(|id| u32::try_from(*id).ok())
            .filter_map(|id| self.doc(id).map(|d| d.record.clone()))
            .collect()
    }

    fn stamp(&self, ids: &[u64]) -> Stamp {
        Stamp {
            order_version: self.order_version,
            revs: ids.iter().map(|id| (*id, self.rev(*id))).collect(),
        }
    }
}

/// Best first, ties by id: the relevance order.
#[derive(PartialEq)]
struct Ranked(f64, u32);

impl Eq for Ranked {}

impl PartialOrd for Ranked {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Ranked {
    /// "Greater" is worse, so a max-heap keeps the worst of the best k on top.
    fn cmp(&self, other: &Self) -> Ordering {
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

impl Catalog {
    pub fn make() -> Arc<dyn Derived> {
        Arc::new(Catalog::default())
    }

    /// The catalog of a sled database (every database the app opens has one).
    pub fn of(db: &Db) -> Option<&Catalog> {
        db.derived::<Catalog>()
            .filter(|c| c.state.read().is_ok_and(|s| s.usable()))
    }

    /// Moves when anything in the catalog changes that could alter a listing's members
    /// or order.
    pub fn order_version(&self) -> u64 {
        self.state.read().map(|s| s.order_version).unwrap_or(0)
    }

    /// Whether an answer stamped with `stamp` still holds.
    pub fn current(&self, stamp: &Stamp) -> bool {
        self.state.read().is_ok_and(|s| {
            (stamp.order_version == ANY_ORDER || s.order_version == stamp.order_version)
                && stamp.revs.iter().all(|(id, rev)| s.rev(*id) == *rev)
        })
    }

    fn kept_list(&self, version: u64, key: &str) -> Option<Arc<Vec<u32>>> {
        let kept = self.kept.lock().ok()?;
        (kept.version == version)
            .then(|| kept.lists.get(key).cloned())
            .flatten()
    }

    fn keep_list(&self, version: u64, key: String, list: Arc<Vec<u32>>) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.version != version {
                *kept = Kept {
                    version,
                    ..Kept::default()
                };
            }
            if kept.lists.len() >= KEPT_RESULTS {
                kept.lists.clear();
            }
            kept.lists.insert(key, list);
        }
    }

    fn kept_hits(&self, version: u64, q: &str) -> Option<Arc<Vec<(u32, f64)>>> {
        let kept = self.kept.lock().ok()?;
        (kept.version == version)
            .then(|| kept.hits.get(q).cloned())
            .flatten()
    }

    fn keep_hits(&self, version: u64, q: String, hits: Arc<Vec<(u32, f64)>>) {
        if let Ok(mut kept) = self.kept.lock() {
            if kept.version != version {
                *kept = Kept {
                    version,
                    ..Kept::default()
                };
            }
            if kept.hits.len() >= KEPT_RESULTS {
                kept.hits.clear();
            }
            kept.hits.insert(q, hits);
        }
    }

    /// One page of live products matching `filters` (and `q`'s words), in `sort`'s order,
    /// from `offset` or after `after`, at most `limit`.
    pub fn list(
        &self,
        filters: &Filters,
        sort: Sort,
        offset: usize,
        limit: usize,
        after: Option<&Cursor>,
        q: Option<&str>,
    ) -> Option<Listed> {
        let state = self.state.read().ok()?;
        let s = &*state;
        let version = s.order_version;
        let empty_filter = filters.category_any.as_ref().is_some_and(Vec::is_empty)
            || filters
                .category_named_any
                .as_ref()
                .is_some_and(Vec::is_empty);
        if empty_filter {
            return Some(Listed {
                ids: Vec::new(),
                records: Vec::new(),
                total: 0,
                start: offset,
                next: None,
                stamp: s.stamp(&[]),
            });
        }
        if let Some(q) = q {
            return Some(self.search_page(s, filters, sort, offset, limit, after, q));
        }
        let sort = if sort == Sort::Relevance {
            Sort::Newest
        } else {
            sort
        };
        let plain = filters.category_any.is_none()
            && filters.category_named_any.is_none()
            && filters.in_stock.is_none()
            && filters.title.is_empty()
            && filters.description.is_empty();
        let has_price = filters.min_price.is_some() || filters.max_price.is_some();
        // A sequence given by its length and its n-th id.
        let kept;
        let (len, nth): (usize, Box<dyn Fn(usize) -> u32 + '_>) = if plain && !has_price {
            (s.newest.len(), Box::new(move |i| s.nth(sort, i)))
        } else if plain && matches!(sort, Sort::PriceAsc | Sort::PriceDesc) {
            let low = filters.min_price.unwrap_or(i64::MIN);
            let high = filters.max_price.unwrap_or(i64::MAX);
            let from = s.by_price.partition_point(|e| e.0 < low);
            let to = s.by_price.partition_point(|e| e.0 <= high).max(from);
            let n = to - from;
            if sort == Sort::PriceAsc {
                (n, Box::new(move |i| s.by_price[from + i].1))
            } else {
                (n, Box::new(move |i| s.by_price[to - 1 - i].1))
            }
        } else {
            let key = format!("{sort:?} {filters:?}");
            kept = match self.kept_list(version, &key) {
                Some(list) => list,
                None => {
                    let list = Arc::new(s.filtered(filters, sort));
                    self.keep_list(version, key, list.clone());
                    list
                }
            };
            let list = &kept;
            (list.len(), Box::new(move |i| list[i]))
        };
        let start = match after {
            Some(c) => {
                // The first position whose key comes after the cursor.
                let (mut low, mut high) = (0, len);
                while low < high {
                    let mid = (low + high) / 2;
                    let after_cursor = s
                        .key(sort, nth(mid))
                        .is_some_and(|k| cursor_cmp(&k, c) == Ordering::Greater);
                    if after_cursor {
                        high = mid;
                    } else {
                        low = mid + 1;
                    }
                }
                low
            }
            None => offset,
        };
        let end = (start + limit).min(len).max(start);
        let ids: Vec<u64> = (start..end).map(|i| u64::from(nth(i))).collect();
        let next = if end < len && end > start {
            s.key(sort, nth(end - 1))
        } else {
            None
        };
        Some(Listed {
            stamp: s.stamp(&ids),
            records: s.records(&ids),
            ids,
            total: len as u64,
            start,
            next,
        })
    }

    #[allow(clippy::too_many_arguments)]
    fn search_page(
        &self,
        s: &State,
        filters: &Filters,
        sort: Sort,
        offset: usize,
        limit: usize,
        after: Option<&Cursor>,
        q: &str,
    ) -> Listed {
        let version = s.order_version;
        let folded = words(q).join(" ");
        let hits = match self.kept_hits(version, &folded) {
            Some(h) => h,
            None => {
                let h = Arc::new(s.hits(q));
                self.keep_hits(version, folded, h.clone());
                h
            }
        };
        let unfiltered = filters.category_any.is_none()
            && filters.category_named_any.is_none()
            && filters.min_price.is_none()
            && filters.max_price.is_none()
            && filters.in_stock.is_none()
            && filters.title.is_empty()
            && filters.description.is_empty();
        let keep = |&&(id, _): &&(u32, f64)| {
            unfiltered || s.doc(id).is_some_and(|d| s.matches(filters, d))
        };
        let key = |id: u32, score: f64| s.doc(id).map(|d| key_of(sort, id, d, score));
        let beyond = |id: u32, score: f64| {
            after.is_none_or(|c| {
                key(id, score).is_some_and(|k| cursor_cmp(&k, c) == Ordering::Greater)
            })
        };
        let mut total = 0usize;
        let mut skipped = 0usize;
        let (start, needed) = match after {
            Some(_) => (0, limit),
            None => (offset, offset + limit),
        };
        let mut page: Vec<(u32, f64)>;
        if sort == Sort::Relevance {
            // Top-k by a heap: only the best `needed` are ever kept in order.
            let mut heap: BinaryHeap<Ranked> = BinaryHeap::with_capacity(needed + 1);
            for &(id, score) in hits.iter().filter(keep) {
                total += 1;
                if !beyond(id, score) {
                    skipped += 1;
                    continue;
                }
                if needed == 0 {
                    continue;
                }
                let r = Ranked(score, id);
                if heap.len() < needed {
                    heap.push(r);
                } else if heap.peek().is_some_and(|worst| r < *worst) {
                    heap.pop();
                    heap.push(r);
                }
            }
            page = heap
                .into_sorted_vec()
                .into_iter()
                .map(|r| (r.1, r.0))
                .collect();
        } else {
            let mut keyed: Vec<(Cursor, u32, f64)> = Vec::new();
            for &(id, score) in hits.iter().filter(keep) {
                total += 1;
                match key(id, score) {
                    Some(k) if after.is_none_or(|c| cursor_cmp(&k, c) == Ordering::Greater) => {
                        keyed.push((k, id, score))
                    }
                    _ => skipped += 1,
                }
            }
            if needed > 0 && needed < keyed.len() {
                keyed.select_nth_unstable_by(needed - 1, |a, b| cursor_cmp(&a.0, &b.0));
                keyed.truncate(needed);
            }
            keyed.sort_unstable_by(|a, b| cursor_cmp(&a.0, &b.0));
            page = keyed.into_iter().map(|k| (k.1, k.2)).collect();
        }
        let remaining = total - skipped;
        if page.len() > start {
            page.drain(..start);
        } else {
            page.clear();
        }
        let position = skipped + start;
        let ids: Vec<u64> = page.iter().map(|p| u64::from(p.0)).collect();
        let next = match page.last() {
            Some(&(id, score)) if start + page.len() < remaining => key(id, score),
            _ => None,
        };
        Listed {
            stamp: s.stamp(&ids),
            records: s.records(&ids),
            ids,
            total: total as u64,
            start: position,
            next,
        }
    }

    /// A live product's id by slug.
    pub fn by_slug(&self, slug: &str) -> Option<u64> {
        let s = self.state.read().ok()?;
        s.slugs.get(slug).map(|id| u64::from(*id))
    }

    /// A live product's stored record, with its stamp (taken together).
    pub fn record(&self, id: u64) -> (Option<Arc<[u8]>>, Stamp) {
        let Ok(s) = self.state.read() else {
            return (None, Stamp::default());
        };
        let record = u32::try_from(id)
            .ok()
            .and_then(|id| s.doc(id))
            .map(|d| d.record.clone());
        // One product's answer depends on its record alone (a renamed category moves the
        // revisions of its products), not on the order of listings.
        let stamp = Stamp {
            order_version: ANY_ORDER,
            revs: vec![(id, s.rev(id))],
        };
        (record, stamp)
    }

    /// The categories of `ids` that exist.
    pub fn category_refs(&self, ids: &[u64]) -> Vec<CategoryRef> {
        let Ok(s) = self.state.read() else {
            return Vec::new();
        };
        ids.iter()
            .filter_map(|id| s.categories.get(id).cloned())
            .collect()
    }

    /// Live products with at most `at_most` in stock, fewest first (then oldest).
    pub fn low_stock(&self, at_most: i64, limit: usize) -> Vec<u64> {
        let Ok(s) = self.state.read() else {
            return Vec::new();
        };
        let mut low: Vec<(i64, u32)> = s
            .newest
            .iter()
            .filter_map(|&id| {
                s.doc(id)
                    .filter(|d| d.stock <= at_most)
                    .map(|d| (d.stock, id))
            })
            .collect();
        low.sort_unstable();
        low.into_iter()
            .take(limit)
            .map(|l| u64::from(l.1))
            .collect()
    }
}

impl Derived for Catalog {
    fn trees(&self) -> &'static [&'static str] {
        &[PRODUCTS, CATEGORIES]
    }

    fn rebuild(&self, db: &Db) -> StoreResult<()> {
        // Until this rebuild has finished, reads go to the trees: one that fails leaves no
        // stale answers behind.
        if let Ok(mut state) = self.state.write() {
            state.built = false;
        }
        let categories: Vec<Category> = db.scan(KeyOrder::Ascending)?;
        let mut fresh = State {
            built: true,
            categories: categories
                .into_iter()
                .map(|c| {
                    let r = CategoryRef {
                        id: c.id,
                        name: c.name,
                        slug: c.slug,
                    };
                    (r.id, r)
                })
                .collect(),
            ..State::default()
        };
        let mut state = self
            .state
            .write()
            .map_err(|_| crate::db::StoreError::Storage("catalog lock poisoned".into()))?;
        fresh.next_rev = state.next_rev;
        fresh.order_version = state.order_version + 1;
        let mut batch = Vec::with_capacity(4096);
        for kv in db.entries(PRODUCTS, KeyOrder::Ascending)? {
            let (key, value) = kv?;
            let p: Product = crate::db::decode(&value)?;
            batch.push((key_id(&key), Some((p, Arc::from(&value[..])))));
            if batch.len() == 4096 {
                fresh.apply(std::mem::take(&mut batch));
            }
        }
        fresh.apply(batch);
        // `apply` gave every product a revision above any handed out before.
        *state = fresh;
        Ok(())
    }

    fn changed(&self, db: &Db, changes: &[(&'static str, Vec<u8>)]) -> StoreResult<()> {
        let mut state = self
            .state
            .write()
            .map_err(|_| crate::db::StoreError::Storage("catalog lock poisoned".into()))?;
        if !state.built {
            return Ok(());
        }
        let mut ids: Vec<u64> = Vec::new();
        let mut renamed = false;
        for (tree, key) in changes {
            if key.len() != 8 {
                continue;
            }
            let id = key_id(key);
            if *tree == CATEGORIES {
                let now = db.get::<Category>(id)?.map(|c| CategoryRef {
                    id: c.id,
                    name: c.name,
                    slug: c.slug,
                });
                if state.categories.get(&id) != now.as_ref() {
                    renamed = true;
                    match now {
                        Some(c) => state.categories.insert(id, c),
                        None => state.categories.remove(&id),
                    };
                    let members: Vec<u64> = state
                        .newest
                        .iter()
                        .filter(|&&p| state.doc(p).is_some_and(|d| d.categories.contains(&id)))
                        .map(|&p| u64::from(p))
                        .collect();
                    ids.extend(members);
                }
            } else {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        ids.dedup();
        let mut products = Vec::with_capacity(ids.len());
        for id in ids {
            let record = match db.raw_get(PRODUCTS, &crate::db::id_key(id))? {
                Some(bytes) => {
                    let p: Product = crate::db::decode(&bytes)?;
                    Some((p, Arc::from(&bytes[..])))
                }
                None => None,
            };
            products.push((id, record));
        }
        state.apply(products);
        if renamed {
            state.order_version += 1;
        }
        Ok(())
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}
