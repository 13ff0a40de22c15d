//! Full-text search: an inverted index with chunked posting lists.
//!
//! A posting list is split by product id into chunks of 1,024 ids (`term\0chunk`), so a
//! product write touches one known key per term (no scan, so it fits in a transaction)
//! and a common term is not one huge value. Each posting carries what BM25 needs: the
//! term's count in title, description and category names, and the document length.

use std::collections::{BTreeMap, HashMap};

use crate::core::text::words;
use crate::db::index::{sorted, Entries};
use crate::db::{abort, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult};
use crate::product::model::{Product, SEARCH_POSTINGS};

const CHUNK_BITS: u32 = 10;
const POSTING_LEN: usize = 13;
/// Key of `(live documents, total document length)`; terms never start with 0.
const STATS_KEY: &[u8] = b"\x00stats";

pub(crate) const TITLE_WEIGHT: f64 = 3.0;
pub(crate) const CATEGORY_WEIGHT: f64 = 2.0;
pub(crate) const DESCRIPTION_WEIGHT: f64 = 1.0;
pub(crate) const K1: f64 = 1.2;
pub(crate) const B: f64 = 0.75;

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Posting {
    id: u64,
    title: u8,
    description: u8,
    category: u8,
    length: u16,
}

impl Posting {
    fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        out.extend_from_slice(&[self.title, self.description, self.category]);
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    fn decode(b: &[u8]) -> Posting {
        Posting {
            id: u64::from_be_bytes(b[..8].try_into().unwrap_or_default()),
            title: b[8],
            description: b[9],
            category: b[10],
            length: u16::from_be_bytes([b[11], b[12]]),
        }
    }
}

fn chunk_key(term: &str, id: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(term.len() + 5);
    key.extend_from_slice(term.as_bytes());
    key.push(0);
    key.extend_from_slice(&((id >> CHUNK_BITS) as u32).to_be_bytes());
    key
}

fn saturate(n: usize) -> u8 {
    n.min(255) as u8
}

/// The postings one product contributes, by term.
fn document(p: &Product, category_names: &[String]) -> BTreeMap<String, Posting> {
    let title = words(&p.title);
    let description = words(&p.description);
    let categories: Vec<String> = category_names.iter().flat_map(|n| words(n)).collect();
    let length = (title.len() + description.len() + categories.len()).min(u16::MAX as usize) as u16;
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
    counts
        .into_iter()
        .map(|(term, (t, d, c))| {
            let posting = Posting {
                id: p.id,
                title: saturate(t),
                description: saturate(d),
                category: saturate(c),
                length,
            };
            (term, posting)
        })
        .collect()
}

fn read_stats(tx: &Tx<'_>) -> TxResult<(u64, u64)> {
    Ok(match tx.raw_get(SEARCH_POSTINGS, STATS_KEY)? {
        Some(v) if v.len() == 16 => (
            u64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
            u64::from_be_bytes(v[8..].try_into().unwrap_or_default()),
        ),
        _ => (0, 0),
    })
}

fn stats_value(docs: u64, total_length: u64) -> Vec<u8> {
    let mut v = docs.to_be_bytes().to_vec();
    v.extend_from_slice(&total_length.to_be_bytes());
    v
}

/// Writes the stats entry; an index with no document has none (as a fresh one).
fn write_stats(tx: &Tx<'_>, docs: u64, total_length: u64) -> TxResult<()> {
    if docs == 0 {
        tx.raw_remove(SEARCH_POSTINGS, STATS_KEY)
    } else {
        tx.raw_insert(SEARCH_POSTINGS, STATS_KEY, &stats_value(docs, total_length))
    }
}

/// Rewrites one chunk with `id`'s posting replaced by `posting` (or removed when `None`).
fn update_chunk(tx: &Tx<'_>, term: &str, id: u64, posting: Option<Posting>) -> TxResult<()> {
    let key = chunk_key(term, id);
    let old = tx.raw_get(SEARCH_POSTINGS, &key)?.unwrap_or_default();
    if old.len() % POSTING_LEN != 0 {
        return abort(StoreError::Storage(format!(
            "corrupt posting chunk for {term}"
        )));
    }
    let mut out = Vec::with_capacity(old.len() + POSTING_LEN);
    let mut placed = false;
    for entry in old.chunks_exact(POSTING_LEN) {
        let existing = Posting::decode(entry);
        if existing.id == id {
            continue;
        }
        if !placed && existing.id > id {
            if let Some(p) = posting {
                p.encode(&mut out);
            }
            placed = true;
        }
        out.extend_from_slice(entry);
    }
    if !placed {
        if let Some(p) = posting {
            p.encode(&mut out);
        }
    }
    if out.is_empty() {
        tx.raw_remove(SEARCH_POSTINGS, &key)
    } else {
        tx.raw_insert(SEARCH_POSTINGS, &key, &out)
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Change {
    Add,
    Remove,
}

/// Adds a live product to the index, or removes it as it was indexed.
fn apply(tx: &Tx<'_>, p: &Product, category_names: &[String], change: Change) -> TxResult<()> {
    let add = change == Change::Add;
    let doc = document(p, category_names);
    let length = doc
        .values()
        .next()
        .map(|p| u64::from(p.length))
        .unwrap_or(0);
    for (term, posting) in &doc {
        update_chunk(tx, term, p.id, add.then_some(*posting))?;
    }
    let (docs, total) = read_stats(tx)?;
    if add {
        write_stats(tx, docs + 1, total + length)
    } else {
        write_stats(tx, docs.saturating_sub(1), total.saturating_sub(length))
    }
}

pub fn index(tx: &Tx<'_>, p: &Product, category_names: &[String]) -> TxResult<()> {
    apply(tx, p, category_names, Change::Add)
}

pub fn unindex(tx: &Tx<'_>, p: &Product, category_names: &[String]) -> TxResult<()> {
    apply(tx, p, category_names, Change::Remove)
}

/// The whole index for these live products, built in memory exactly as `index` would
/// build it one product at a time (imports, integrity checks). Each product comes with
/// its category names.
pub fn build<'a>(products: impl Iterator<Item = (&'a Product, Vec<String>)>) -> Entries {
    let mut docs: Vec<(u64, BTreeMap<String, Posting>)> = products
        .map(|(p, names)| (p.id, document(p, &names)))
        .collect();
    docs.sort_unstable_by_key(|d| d.0);
    let mut out = Vec::new();
    let mut total_length = 0u64;
    // One chunk's documents at a time: their postings grouped by term, then one entry per
    // term. Ids ascend, so appending keeps every chunk in id order.
    for chunk in docs.chunk_by(|a, b| a.0 >> CHUNK_BITS == b.0 >> CHUNK_BITS) {
        let mut by_term: HashMap<&str, Vec<u8>> = HashMap::new();
        for (_, doc) in chunk {
            total_length += doc
                .values()
                .next()
                .map(|p| u64::from(p.length))
                .unwrap_or(0);
            for (term, posting) in doc {
                posting.encode(by_term.entry(term.as_str()).or_default());
            }
        }
        let first = chunk[0].0;
        out.extend(
            by_term
                .into_iter()
                .map(|(term, postings)| (chunk_key(term, first), postings)),
        );
    }
    if !docs.is_empty() {
        out.push((
            STATS_KEY.to_vec(),
            stats_value(docs.len() as u64, total_length),
        ));
    }
    sorted(out)
}

/// How many live products the index holds.
pub fn live_count(db: &Db) -> StoreResult<u64> {
    Ok(db
        .raw_get(SEARCH_POSTINGS, STATS_KEY)?
        .filter(|v| v.len() == 16)
        .map(|v| u64::from_be_bytes(v[..8].try_into().unwrap_or_default()))
        .unwrap_or(0))
}

/// BM25 contributions of one term's postings.
fn score_term(postings: &[Posting], n: f64, avg_length: f64, out: &mut Vec<(u64, f64)>) {
    let df = postings.len() as f64;
    let idf = (1.0 + (n - df + 0.5) / (df + 0.5)).ln();
    for p in postings {
        let tf = TITLE_WEIGHT * f64::from(p.title)
            + DESCRIPTION_WEIGHT * f64::from(p.description)
            + CATEGORY_WEIGHT * f64::from(p.category);
        let norm = K1 * (1.0 - B + B * f64::from(p.length) / avg_length);
        out.push((p.id, idf * tf * (K1 + 1.0) / (tf + norm)));
    }
}

/// Sorts by id and adds up the scores of repeated ids.
fn merge_by_id(mut scores: Vec<(u64, f64)>) -> Vec<(u64, f64)> {
    scores.sort_by_key(|s| s.0);
    let mut out: Vec<(u64, f64)> = Vec::with_capacity(scores.len());
    for (id, score) in scores {
        match out.last_mut() {
            Some(last) if last.0 == id => last.1 += score,
            _ => out.push((id, score)),
        }
    }
    out
}

/// The ids in both id-sorted lists, with their scores added.
fn intersect(a: &[(u64, f64)], b: &[(u64, f64)]) -> Vec<(u64, f64)> {
    let (mut i, mut j) = (0, 0);
    let mut out = Vec::with_capacity(a.len().min(b.len()));
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                out.push((a[i].0, a[i].1 + b[j].1));
                i += 1;
                j += 1;
            }
        }
    }
    out
}

/// Products matching every word of `query` (the last one as a prefix), with BM25 scores,
/// in id order (rank them with `rank`).
pub fn search(db: &Db, query: &str) -> StoreResult<Vec<(u64, f64)>> {
    let terms = words(query);
    if terms.is_empty() {
        return Ok(Vec::new());
    }
    let (docs, total_length) = match db.raw_get(SEARCH_POSTINGS, STATS_KEY)? {
        Some(v) if v.len() == 16 => (
            u64::from_be_bytes(v[..8].try_into().unwrap_or_default()),
            u64::from_be_bytes(v[8..].try_into().unwrap_or_default()),
        ),
        _ => return Ok(Vec::new()),
    };
    let n = docs.max(1) as f64;
    let avg_length = (total_length as f64 / n).max(1.0);
    let mut combined: Option<Vec<(u64, f64)>> = None;
    for (i, term) in terms.iter().enumerate() {
        let last = i == terms.len() - 1;
        let mut prefix = term.as_bytes().to_vec();
        if !last {
            prefix.push(0);
        }
        // Keys come sorted, so one term's chunks are contiguous (a prefix spans several).
        let mut scores = Vec::new();
        let mut current: Option<Vec<u8>> = None;
        let mut postings: Vec<Posting> = Vec::new();
        for kv in db.prefix(SEARCH_POSTINGS, &prefix, KeyOrder::Ascending)? {
            let (key, value) = kv?;
            let Some(zero) = key.iter().position(|b| *b == 0) else {
                continue;
            };
            if current.as_ref().is_some_and(|c| c[..] != key[..zero]) {
                score_term(&postings, n, avg_length, &mut scores);
                postings.clear();
            }
            if current.as_ref().is_none_or(|c| c[..] != key[..zero]) {
                current = Some(key[..zero].to_vec());
            }
            postings.extend(value.chunks_exact(POSTING_LEN).map(Posting::decode));
        }
        score_term(&postings, n, avg_length, &mut scores);
        // Chunks of one term are in id order already; several terms need a merge.
        let scores = merge_by_id(scores);
        let next = match combined {
            None => scores,
            Some(previous) => intersect(&previous, &scores),
        };
        let empty = next.is_empty();
        combined = Some(next);
        if empty {
            break;
        }
    }
    Ok(combined.unwrap_or_default())
}

/// Orders hits best first (ties by id), sorting only as far as `needed` requires.
pub fn rank(hits: &mut [(u64, f64)], needed: usize) {
    let better = |a: &(u64, f64), b: &(u64, f64)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    if needed > 0 && needed < hits.len() {
        hits.select_nth_unstable_by(needed - 1, better);
        hits[..needed].sort_unstable_by(better);
    } else {
        hits.sort_unstable_by(better);
    }
}
