//! Index entries, described once per record type: a record says which entries it implies
//! (`Indexed`); `Tx::save` and `Tx::delete` keep them in step with the record, and
//! `check`, `check --repair` and imports build the expected trees from the same words.

use std::collections::BTreeMap;

use super::{id_key, pair_key, Db, KeyOrder, Record, StoreResult, Unique};

/// One entry of an index tree that a record implies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IndexEntry {
    pub tree: &'static str,
    pub key: Vec<u8>,
    pub value: Vec<u8>,
    /// Set for a unique key: another record holding it is a `Duplicate`.
    pub unique: Option<Unique>,
}

impl IndexEntry {
    /// `key -> id`, held by one record only.
    pub fn unique(tree: &'static str, key: impl Into<Vec<u8>>, id: u64, what: Unique) -> Self {
        IndexEntry {
            tree,
            key: key.into(),
            value: id_key(id).to_vec(),
            unique: Some(what),
        }
    }

    /// `parent|child`: one of a parent's children, listed in id order by a prefix scan.
    pub fn link(tree: &'static str, parent: u64, child: u64) -> Self {
        IndexEntry::key(tree, pair_key(parent, child).to_vec(), Vec::new())
    }

    /// Any other key, with what the reader needs beside it.
    pub fn key(tree: &'static str, key: Vec<u8>, value: Vec<u8>) -> Self {
        IndexEntry {
            tree,
            key,
            value,
            unique: None,
        }
    }
}

/// A record kept under a `u64` key with index entries derived from it.
pub trait Indexed: Record {
    /// Every tree the entries go to.
    const INDEXES: &'static [&'static str];
    /// The key the record is kept under.
    fn id(&self) -> u64;
    fn index_entries(&self) -> Vec<IndexEntry>;
}

/// A tree's `(key, value)` pairs, in key order, one per key.
pub type Entries = Vec<(Vec<u8>, Vec<u8>)>;

/// Whole trees' entries.
pub type TreeEntries = Vec<(&'static str, Entries)>;

/// Sorts gathered entries into key order, one per key.
pub fn sorted(mut entries: Entries) -> Entries {
    entries.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    entries.dedup_by(|a, b| a.0 == b.0);
    entries
}

/// Every index tree of `R` as these records imply it (trees without entries included).
pub fn entries_of<R: Indexed>(records: &[R]) -> TreeEntries {
    let mut trees: BTreeMap<&'static str, Entries> =
        R::INDEXES.iter().map(|t| (*t, Vec::new())).collect();
    for r in records {
        for e in r.index_entries() {
            trees.entry(e.tree).or_default().push((e.key, e.value));
        }
    }
    trees.into_iter().map(|(t, e)| (t, sorted(e))).collect()
}

/// Every index tree of `R` as the records in the database imply it.
pub fn scan_entries<R: Indexed>(db: &Db) -> StoreResult<TreeEntries> {
    Ok(entries_of(&db.scan::<R>(KeyOrder::Ascending)?))
}

/// What differs between the trees and what they should hold: one line per tree,
/// `"<tree>: <n> missing, <m> stale entries"`.
pub fn problems(db: &Db, expected: &TreeEntries) -> StoreResult<Vec<String>> {
    let mut out = Vec::new();
    for (tree, want) in expected {
        let have = db.tree_entries(tree)?;
        let missing = want.iter().filter(|(k, v)| have.get(k) != Some(v)).count();
        let stale = have
            .iter()
            .filter(|(k, v)| value_of(want, k) != Some(v))
            .count();
        if missing + stale > 0 {
            out.push(format!("{tree}: {missing} missing, {stale} stale entries"));
        }
    }
    Ok(out)
}

/// Replaces the trees with what they should hold, and flushes.
pub fn rebuild(db: &Db, expected: TreeEntries) -> StoreResult<()> {
    for (tree, want) in expected {
        db.replace_tree(tree, want)?;
    }
    db.flush_blocking()
}

fn value_of<'e>(entries: &'e Entries, key: &[u8]) -> Option<&'e Vec<u8>> {
    entries
        .binary_search_by(|e| e.0.as_slice().cmp(key))
        .ok()
        .map(|i| &entries[i].1)
}
