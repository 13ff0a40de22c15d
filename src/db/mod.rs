//! Storage engines: the one a shop runs on (`Backend`), PostgreSQL (`pg`), and sled itself:
//! open and migrate, typed records, key encoding, indexes, ids, transactions and durable
//! (group-flushed) writes. Nothing outside this module sees a sled type.

pub mod backend;
mod flush;
pub mod index;
pub mod keys;
pub mod migrate;
pub mod pg;
mod scan;
pub mod snapshot;

use serde::de::DeserializeOwned;
use serde::Serialize;
use sled::transaction::{ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use std::any::Any;
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

pub use backend::Backend;
pub use index::{IndexEntry, Indexed};
pub use keys::{id_key, key_id, pair_key};
pub use scan::{Bytes, Scan};

/// What a caller keeps in the database: its trees (one per entity and per index) and the
/// steps that upgrade an older data folder. Each domain declares its part; the application
/// hands the union to `Db::open`. Every tree takes part in every `Db::write`, so a store
/// can touch any of them inside one transaction.
#[derive(Clone, Default)]
pub struct Schema {
    trees: Vec<&'static str>,
    steps: Vec<migrate::Migration>,
    derived: Vec<fn() -> Arc<dyn Derived>>,
}

/// What a domain keeps in memory beside its trees (e.g. the catalog's sorted listings),
/// derived from the records of `trees`. Built at open, after migrations, and told of every
/// committed change to those trees before the write returns (and before `version` moves),
/// so that it never drifts from the records: `changed` re-reads the keys it is given,
/// which makes applying two writes' changes in either order end in the same state.
pub trait Derived: Send + Sync + 'static {
    /// The trees whose records it follows.
    fn trees(&self) -> &'static [&'static str];
    /// Builds it afresh from the database.
    fn rebuild(&self, db: &Db) -> StoreResult<()>;
    /// Keys of `trees` that a committed write touched (several times, perhaps).
    fn changed(&self, db: &Db, changes: &[(&'static str, Vec<u8>)]) -> StoreResult<()>;
    fn as_any(&self) -> &dyn Any;
}

impl Schema {
    pub fn trees(mut self, trees: &[&'static str]) -> Self {
        self.trees.extend_from_slice(trees);
        self
    }

    pub fn migrations(mut self, steps: &[migrate::Migration]) -> Self {
        self.steps.extend_from_slice(steps);
        self
    }

    /// Something kept in memory beside the trees (see `Derived`); each `Db::open` makes
    /// its own with `make`.
    pub fn derived(mut self, make: fn() -> Arc<dyn Derived>) -> Self {
        self.derived.push(make);
        self
    }

    /// Every tree of the schema (tests read them all to see what is stored).
    pub fn tree_names(&self) -> &[&'static str] {
        &self.trees
    }

    /// The schema version this build writes: one past its last upgrade step.
    pub fn version(&self) -> u32 {
        self.steps.iter().map(|s| s.from + 1).max().unwrap_or(1)
    }
}

/// Which end of a tree a scan starts from. Ids are big-endian keys, so `Ascending` lists
/// records oldest first and `Descending` newest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyOrder {
    Ascending,
    Descending,
}

pub use crate::core::error::{StoreError, StoreResult, Unique};

impl From<sled::Error> for StoreError {
    fn from(e: sled::Error) -> Self {
        StoreError::Storage(format!("storage: {e}"))
    }
}

/// The result of a step inside a transaction.
pub type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

/// Ends a transaction with a store error; nothing it wrote is kept.
pub fn abort<T>(e: StoreError) -> TxResult<T> {
    Err(ConflictableTransactionError::Abort(e))
}

/// A value kept in a tree: `[version byte][bincode]`, keyed by its big-endian id.
pub trait Record: Serialize + DeserializeOwned {
    const TREE: &'static str;
    const VERSION: u8 = 1;
}

pub fn encode<R: Record>(record: &R) -> StoreResult<Vec<u8>> {
    let mut out = vec![R::VERSION];
    bincode::serde::encode_into_std_write(record, &mut out, bincode::config::standard())
        .map_err(|e| StoreError::Storage(format!("encode {}: {e}", R::TREE)))?;
    Ok(out)
}

pub fn decode<R: Record>(bytes: &[u8]) -> StoreResult<R> {
    match bytes.split_first() {
        Some((&version, rest)) if version == R::VERSION => {
            bincode::serde::decode_from_slice(rest, bincode::config::standard())
                .map(|(record, _)| record)
                .map_err(|e| StoreError::Storage(format!("decode {}: {e}", R::TREE)))
        }
        Some((&version, _)) => Err(StoreError::Storage(format!(
            "{} record has version {version}, expected {}",
            R::TREE,
            R::VERSION
        ))),
        None => Err(StoreError::Storage(format!("empty {} record", R::TREE))),
    }
}

/// Why the data folder could not be opened, in one line.
#[derive(Debug)]
pub struct OpenError(pub String);

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OpenError {}

struct Inner {
    sled: sled::Db,
    trees: Vec<sled::Tree>,
    index_of: BTreeMap<&'static str, usize>,
    /// In-memory structures that follow some trees, and which trees (by index) they follow.
    derived: Vec<Arc<dyn Derived>>,
    watched: Vec<bool>,
    flusher: flush::Flusher,
    decoded: AtomicU64,
    /// Moves after every committed write (see `version`).
    version: AtomicU64,
    path: PathBuf,
    /// Every write holds it shared; a snapshot holds it alone (see `snapshot`).
    gate: tokio::sync::RwLock<()>,
    gate_waited: AtomicU64,
    gate_longest_micros: AtomicU64,
}

/// The shop's database. Cheap to clone.
#[derive(Clone)]
pub struct Db {
    inner: Arc<Inner>,
}

/// The transactional view of every tree, for one `Db::write`.
pub struct Tx<'a> {
    trees: &'a [TransactionalTree],
    index_of: &'a BTreeMap<&'static str, usize>,
    watched: &'a [bool],
    /// Keys of watched trees written in this run of the closure.
    touched: &'a RefCell<Vec<(usize, Vec<u8>)>>,
}

/// sled bounds its page cache by the pages' size on disk; decoded in memory they take
/// about twice that (measured with `cargo bench --bench soak`: resident memory levels
/// off 1.8 MiB higher for every MiB more of sled's capacity, at 8, 32 and 64). sled is
/// given the configured capacity divided by this, so that what its cache holds in memory
/// is near `cache_capacity_mb`.
const SLED_MEMORY_PER_COUNTED_BYTE: u64 = 2;

impl Db {
    /// Opens (creating if needed) the database under `dir/db` with the trees of `schema`,
    /// after setting aside any snapshot that a killed process left half-written, then
    /// migrates it to `schema`'s version.
    pub fn open(dir: &Path, cache_capacity_bytes: u64, schema: &Schema) -> Result<Db, OpenError> {
        Self::open_with(dir, cache_capacity_bytes, schema, None)
    }

    /// `open` with a test seam: once the file `fail_when` exists, every flush fails
    /// without touching the disk, as a full disk would make it fail. sled's own periodic
    /// flush is then off, so that what was written since the last flush stays in memory
    /// only and is lost at the stop, as it is on a full disk. Never for a real shop.
    #[doc(hidden)]
    pub fn open_with(
        dir: &Path,
        cache_capacity_bytes: u64,
        schema: &Schema,
        fail_when: Option<PathBuf>,
    ) -> Result<Db, OpenError> {
        let path = dir.join("db");
        std::fs::create_dir_all(&path).map_err(|e| {
            OpenError(format!(
                "cannot create the data folder {}: {e}",
                path.display()
            ))
        })?;
        set_aside_unfinished_snapshots(&path)?;
        let mut sled_config = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_capacity_bytes / SLED_MEMORY_PER_COUNTED_BYTE);
        if fail_when.is_some() {
            sled_config = sled_config.flush_every_ms(None);
        }
        let sled = sled_config.open().map_err(|e| open_error(&path, e))?;
        let mut trees = Vec::with_capacity(schema.trees.len() + 1);
        let mut index_of = BTreeMap::new();
        for name in std::iter::once(&migrate::META).chain(&schema.trees) {
            if index_of.contains_key(name) {
                continue;
            }
            let tree = sled.open_tree(name).map_err(|e| open_error(&path, e))?;
            index_of.insert(*name, trees.len());
            trees.push(tree);
        }
        let derived: Vec<Arc<dyn Derived>> = schema.derived.iter().map(|make| make()).collect();
        let mut watched = vec![false; trees.len()];
        for d in &derived {
            for name in d.trees() {
                if let Some(&i) = index_of.get(name) {
                    watched[i] = true;
                }
            }
        }
        let db = Db {
            inner: Arc::new(Inner {
                flusher: flush::Flusher::new(sled.clone(), fail_when),
                sled,
                trees,
                index_of,
                derived,
                watched,
                decoded: AtomicU64::new(0),
                version: AtomicU64::new(0),
                path,
                gate: tokio::sync::RwLock::new(()),
                gate_waited: AtomicU64::new(0),
                gate_longest_micros: AtomicU64::new(0),
            }),
        };
        migrate::run(&db, &schema.steps, schema.version())
            .map_err(|e| OpenError(format!("cannot migrate {}: {e}", db.inner.path.display())))?;
        for d in &db.inner.derived {
            d.rebuild(&db)
                .map_err(|e| OpenError(format!("cannot load {}: {e}", db.inner.path.display())))?;
        }
        db.flush_blocking()
            .map_err(|e| OpenError(format!("cannot write {}: {e}", db.inner.path.display())))?;
        Ok(db)
    }

    fn tree(&self, name: &str) -> StoreResult<&sled::Tree> {
        self.inner
            .index_of
            .get(name)
            .map(|&i| &self.inner.trees[i])
            .ok_or_else(|| StoreError::Storage(format!("unknown tree {name}")))
    }

    /// Runs `f` in one sled transaction over every tree, retried on conflict, and waits
    /// until it is on disk. `f` may run more than once: decide ids, times and anything
    /// random before calling.
    pub async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(&Tx<'_>) -> TxResult<T>,
    {
        self.refuse_if_failed()?;
        let open = match self.inner.gate.try_read() {
            Ok(open) => open,
            Err(_) => {
                let start = std::time::Instant::now();
                let open = self.inner.gate.read().await;
                self.note_gate_wait(start.elapsed());
                open
            }
        };
        let turn = self.inner.flusher.commit_turn().await;
        let out = self
            .write_unflushed(f)
            .and_then(|out| Ok((out, self.inner.flusher.ticket()?)));
        drop(turn);
        drop(open);
        let (out, ticket) = out?;
        self.inner.flusher.flushed(ticket).await?;
        Ok(out)
    }

    /// Waits, blocking the thread, until no snapshot holds writes back. Polls rather than
    /// queueing, so that it can never be called where blocking on the lock would panic.
    /// Inside `paused` on this thread, writes are held back already: nothing to wait for.
    fn gate_blocking(&self) -> Option<tokio::sync::RwLockReadGuard<'_, ()>> {
        if self.paused_here() {
            return None;
        }
        let mut start = None;
        loop {
            if let Ok(open) = self.inner.gate.try_read() {
                if let Some(start) = start {
                    self.note_gate_wait(std::time::Instant::elapsed(&start));
                }
                return Some(open);
            }
            start.get_or_insert_with(std::time::Instant::now);
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// `write` for code without an async runtime (the CLI): flushes before returning.
    pub fn write_blocking<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(&Tx<'_>) -> TxResult<T>,
    {
        self.refuse_if_failed()?;
        let out = {
            let _open = self.gate_blocking();
            self.write_unflushed(f)?
        };
        self.flush_blocking()?;
        Ok(out)
    }

    fn write_unflushed<T, F>(&self, f: F) -> StoreResult<T>
    where
        F: Fn(&Tx<'_>) -> TxResult<T>,
    {
        let index_of = &self.inner.index_of;
        let touched = RefCell::new(Vec::new());
        let out = self
            .inner
            .trees
            .as_slice()
            .transaction(|trees: &Vec<TransactionalTree>| {
                touched.borrow_mut().clear();
                f(&Tx {
                    trees: trees.as_slice(),
                    index_of,
                    watched: &self.inner.watched,
                    touched: &touched,
                })
            })
            .map_err(|e| match e {
                TransactionError::Abort(e) => e,
                TransactionError::Storage(e) => self.storage_error(e),
            })?;
        self.tell_derived(&touched.into_inner());
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        Ok(out)
    }

    /// Tells the in-memory structures which of their trees' keys a committed write touched.
    fn tell_derived(&self, touched: &[(usize, Vec<u8>)]) {
        if touched.is_empty() {
            return;
        }
        let names: Vec<&'static str> = {
            let mut names = vec![""; self.inner.trees.len()];
            for (name, &i) in &self.inner.index_of {
                names[i] = name;
            }
            names
        };
        for d in &self.inner.derived {
            let mine: Vec<(&'static str, Vec<u8>)> = touched
                .iter()
                .filter(|(i, _)| d.trees().contains(&names[*i]))
                .map(|(i, k)| (names[*i], k.clone()))
                .collect();
            if mine.is_empty() {
                continue;
            }
            if let Err(e) = d.changed(self, &mine) {
                tracing::error!("updating an in-memory index failed, rebuilding it: {e}");
                if let Err(e) = d.rebuild(self) {
                    tracing::error!("rebuilding an in-memory index failed: {e}");
                }
            }
        }
    }

    /// Rebuilds the in-memory structures that follow `tree` (after writes outside `write`).
    fn rebuild_derived(&self, tree: &str) {
        for d in &self.inner.derived {
            if d.trees().contains(&tree) {
                if let Err(e) = d.rebuild(self) {
                    tracing::error!("rebuilding an in-memory index failed: {e}");
                }
            }
        }
    }

    /// The in-memory structure of type `T` this database keeps (see `Derived`).
    pub fn derived<T: Derived>(&self) -> Option<&T> {
        self.inner
            .derived
            .iter()
            .find_map(|d| d.as_any().downcast_ref::<T>())
    }

    /// A number that moves after every committed write: an answer built from reads that
    /// began at version `v` is current while the version is still `v` (response caches).
    pub fn version(&self) -> u64 {
        self.inner.version.load(Ordering::Acquire)
    }

    /// Waits until everything written so far is on disk; concurrent callers share a flush.
    pub async fn durable(&self) -> StoreResult<()> {
        self.inner.flusher.flush().await
    }

    /// How many shared flushes `durable` has run (concurrent writers share one).
    pub fn group_flushes(&self) -> u64 {
        self.inner.flusher.flushes()
    }

    pub fn flush_blocking(&self) -> StoreResult<()> {
        self.inner.flusher.flush_blocking()
    }

    /// Why the database failed (a flush or a write could not reach the disk), once it
    /// has: it then takes no writes and no flushes until it is opened again.
    pub fn failure(&self) -> Option<String> {
        self.inner.flusher.failure()
    }

    /// Resolves once the database has failed (see `failure`).
    pub async fn failed(&self) {
        self.inner.flusher.failed().await
    }

    fn refuse_if_failed(&self) -> StoreResult<()> {
        match self.failure() {
            Some(why) => Err(StoreError::Unwritable(why)),
            None => Ok(()),
        }
    }

    /// An I/O error of sled fails the database: sled itself refuses every write after
    /// one, until it is opened again.
    fn storage_error(&self, e: sled::Error) -> StoreError {
        match e {
            sled::Error::Io(io) => {
                let why = io.to_string();
                self.inner.flusher.fail(why.clone());
                StoreError::Unwritable(why)
            }
            other => StoreError::from(other),
        }
    }

    /// Allocates the next id of a sequence (1, 2, 3, ...). Call it before a transaction;
    /// an id taken by a write that then fails is simply never used.
    pub fn next_id(&self, sequence: &str) -> StoreResult<u64> {
        let meta = self.tree(migrate::META)?;
        let key = format!("seq:{sequence}");
        let next = meta.update_and_fetch(key.as_bytes(), |old| {
            let n = old.map(keys::key_id).unwrap_or(0) + 1;
            Some(id_key(n).to_vec())
        })?;
        Ok(next.map(|v| key_id(&v)).unwrap_or(1))
    }

    /// Allocates `n` consecutive ids of a sequence; answers the first.
    pub fn next_ids(&self, sequence: &str, n: u64) -> StoreResult<u64> {
        let meta = self.tree(migrate::META)?;
        let key = format!("seq:{sequence}");
        let last = meta.update_and_fetch(key.as_bytes(), |old| {
            let last = old.map(keys::key_id).unwrap_or(0) + n;
            Some(id_key(last).to_vec())
        })?;
        Ok(last.map(|v| key_id(&v)).unwrap_or(n) + 1 - n)
    }

    /// Makes sure a sequence will hand out ids above `id` (imports, repairs).
    pub fn bump_sequence(&self, sequence: &str, id: u64) -> StoreResult<()> {
        let meta = self.tree(migrate::META)?;
        let key = format!("seq:{sequence}");
        meta.update_and_fetch(key.as_bytes(), |old| {
            let n = old.map(keys::key_id).unwrap_or(0).max(id);
            Some(id_key(n).to_vec())
        })?;
        Ok(())
    }

    pub fn get<R: Record>(&self, id: u64) -> StoreResult<Option<R>> {
        match self.tree(R::TREE)?.get(id_key(id))? {
            Some(bytes) => self.decode_counted(&bytes).map(Some),
            None => Ok(None),
        }
    }

    /// Every record of a tree, in id order or reversed.
    pub fn scan<R: Record>(&self, order: KeyOrder) -> StoreResult<Vec<R>> {
        let tree = self.tree(R::TREE)?;
        let iter: Box<dyn Iterator<Item = sled::Result<(sled::IVec, sled::IVec)>>> = match order {
            KeyOrder::Ascending => Box::new(tree.iter()),
            KeyOrder::Descending => Box::new(tree.iter().rev()),
        };
        iter.map(|kv| {
            let (_, v) = kv?;
            self.decode_counted(&v)
        })
        .collect()
    }

    /// Records newest id first for as long as `keep` accepts them: the first one refused
    /// ends the walk, so only the records kept (and one more) are decoded.
    pub fn newest_while<R: Record>(&self, mut keep: impl FnMut(&R) -> bool) -> StoreResult<Vec<R>> {
        let mut out = Vec::new();
        for kv in self.tree(R::TREE)?.iter().rev() {
            let record: R = self.decode_counted(&kv?.1)?;
            if !keep(&record) {
                break;
            }
            out.push(record);
        }
        Ok(out)
    }

    /// How many entries a tree holds (counts every entry: use on small trees or rarely).
    pub fn tree_len(&self, tree: &str) -> StoreResult<usize> {
        Ok(self.tree(tree)?.len())
    }

    /// Every entry of a tree, in key order (integrity checks).
    pub fn tree_entries(&self, tree: &str) -> StoreResult<BTreeMap<Vec<u8>, Vec<u8>>> {
        self.tree(tree)?
            .iter()
            .map(|kv| {
                let (k, v) = kv?;
                Ok((k.to_vec(), v.to_vec()))
            })
            .collect()
    }

    /// Replaces a whole tree with `entries`, outside any transaction: for rebuilding
    /// derived indexes (`check --repair`) and filling a database that no server has open
    /// yet (imports). Answers how many entries it wrote; flush afterwards.
    ///
    /// Plain inserts, not batches: sled applies a batch under a lock that stops every
    /// other writer, so batches kept the import's two writer threads to one at a time
    /// (and 10,000-entry batches grew the process by about 3 KB an entry). Nothing is
    /// lost by it: the tree is half-written either way until the caller's flush.
    pub fn replace_tree(
        &self,
        tree: &str,
        entries: impl IntoIterator<Item = (Vec<u8>, Vec<u8>)>,
    ) -> StoreResult<u64> {
        let t = self.tree(tree)?;
        let _open = self.gate_blocking();
        t.clear()?;
        let mut n = 0u64;
        for (k, v) in entries {
            t.insert(k, v)?;
            n += 1;
        }
        self.rebuild_derived(tree);
        self.inner.version.fetch_add(1, Ordering::AcqRel);
        Ok(n)
    }

    /// Every entry of a tree that an older schema kept and this one does not (for
    /// migrations only).
    pub fn old_tree_entries(&self, name: &str) -> StoreResult<Scan> {
        Ok(Scan {
            iter: self.inner.sled.open_tree(name)?.iter(),
            order: KeyOrder::Ascending,
        })
    }

    /// Removes a tree of an older schema, once a migration has moved what it held.
    pub fn drop_old_tree(&self, name: &str) -> StoreResult<()> {
        self.inner.sled.drop_tree(name)?;
        Ok(())
    }

    /// The value under a key of a tree.
    pub fn raw_get(&self, tree: &str, key: &[u8]) -> StoreResult<Option<Bytes>> {
        Ok(self.tree(tree)?.get(key)?.map(Bytes))
    }

    /// Every entry of a tree.
    pub fn entries(&self, tree: &str, order: KeyOrder) -> StoreResult<Scan> {
        Ok(Scan {
            iter: self.tree(tree)?.iter(),
            order,
        })
    }

    /// The entries whose keys fall in `range`.
    pub fn range<K, R>(&self, tree: &str, range: R, order: KeyOrder) -> StoreResult<Scan>
    where
        K: AsRef<[u8]>,
        R: std::ops::RangeBounds<K>,
    {
        Ok(Scan {
            iter: self.tree(tree)?.range(range),
            order,
        })
    }

    /// The entries whose keys begin with `prefix`.
    pub fn prefix(&self, tree: &str, prefix: &[u8], order: KeyOrder) -> StoreResult<Scan> {
        Ok(Scan {
            iter: self.tree(tree)?.scan_prefix(prefix),
            order,
        })
    }

    /// Removes, outside any transaction, every entry `keep` refuses (housekeeping of
    /// entries nothing else refers to); answers how many went. Flush afterwards if it
    /// must survive a crash.
    pub fn retain(&self, tree: &str, keep: impl Fn(&[u8], &[u8]) -> bool) -> StoreResult<u64> {
        let t = self.tree(tree)?;
        let _open = self.gate_blocking();
        let mut removed = 0;
        for kv in t.iter() {
            let (k, v) = kv?;
            if !keep(&k, &v) {
                t.remove(k)?;
                removed += 1;
            }
        }
        if removed > 0 {
            self.rebuild_derived(tree);
            self.inner.version.fetch_add(1, Ordering::AcqRel);
        }
        Ok(removed)
    }

    /// Looks up a unique index (`key -> id`).
    pub fn unique_get(&self, index: &str, key: &[u8]) -> StoreResult<Option<u64>> {
        Ok(self.tree(index)?.get(key)?.map(|v| key_id(&v)))
    }

    /// The child ids of `parent` in a one-to-many index (`parent|child` keys), in id
    /// order or reversed.
    pub fn children(&self, index: &str, parent: u64, order: KeyOrder) -> StoreResult<Vec<u64>> {
        let tree = self.tree(index)?;
        let scan = tree.scan_prefix(id_key(parent));
        let keys: Vec<sled::IVec> = match order {
            KeyOrder::Ascending => scan.keys().collect::<sled::Result<_>>()?,
            KeyOrder::Descending => scan
                .rev()
                .map(|kv| kv.map(|(k, _)| k))
                .collect::<sled::Result<_>>()?,
        };
        Ok(keys.iter().map(|k| key_id(&k[8..])).collect())
    }

    fn decode_counted<R: Record>(&self, bytes: &[u8]) -> StoreResult<R> {
        self.inner.decoded.fetch_add(1, Ordering::Relaxed);
        decode(bytes)
    }

    /// Decodes a record that a store keeps in memory as the engine stored it (counted
    /// like a read from the tree).
    pub fn decode_kept<R: Record>(&self, bytes: &[u8]) -> StoreResult<R> {
        self.decode_counted(bytes)
    }

    /// How many records were decoded since open: lets tests prove a listing read a page,
    /// not the whole tree.
    pub fn decoded_count(&self) -> u64 {
        self.inner.decoded.load(Ordering::Relaxed)
    }

    /// True when the database answers a read.
    pub fn healthy(&self) -> bool {
        self.failure().is_none()
            && self
                .tree(migrate::META)
                .and_then(|t| t.get(migrate::SCHEMA_KEY).map_err(StoreError::from))
                .is_ok()
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }
}

impl Tx<'_> {
    fn tree(&self, name: &str) -> TxResult<&TransactionalTree> {
        match self.index_of.get(name) {
            Some(&i) => Ok(&self.trees[i]),
            None => abort(StoreError::Storage(format!("unknown tree {name}"))),
        }
    }

    /// A tree about to be written: notes the key when something in memory follows it.
    fn tree_for_write(&self, name: &str, key: &[u8]) -> TxResult<&TransactionalTree> {
        match self.index_of.get(name) {
            Some(&i) => {
                if self.watched[i] {
                    self.touched.borrow_mut().push((i, key.to_vec()));
                }
                Ok(&self.trees[i])
            }
            None => abort(StoreError::Storage(format!("unknown tree {name}"))),
        }
    }

    pub fn get<R: Record>(&self, id: u64) -> TxResult<Option<R>> {
        match self.tree(R::TREE)?.get(id_key(id))? {
            Some(bytes) => decode(&bytes).map(Some).or_else(abort),
            None => Ok(None),
        }
    }

    pub fn put<R: Record>(&self, id: u64, record: &R) -> TxResult<()> {
        let bytes = encode(record).or_else(abort)?;
        self.tree_for_write(R::TREE, &id_key(id))?
            .insert(&id_key(id), bytes)?;
        Ok(())
    }

    pub fn remove<R: Record>(&self, id: u64) -> TxResult<()> {
        self.tree_for_write(R::TREE, &id_key(id))?
            .remove(&id_key(id))?;
        Ok(())
    }

    /// Writes a record with its index entries: those the stored version had and this one
    /// has not go, the new ones come. A unique key that another record holds aborts with
    /// `Duplicate`, so nothing is half-written.
    pub fn save<R: Indexed>(&self, record: &R) -> TxResult<()> {
        let id = record.id();
        let old = match self.get::<R>(id)? {
            Some(stored) => stored.index_entries(),
            None => Vec::new(),
        };
        let new = record.index_entries();
        for e in old.iter().filter(|e| !new.contains(e)) {
            self.raw_remove(e.tree, &e.key)?;
        }
        for e in new.iter().filter(|e| !old.contains(e)) {
            match e.unique {
                Some(what) => self.claim_unique(e.tree, &e.key, id, what)?,
                None => self.raw_insert(e.tree, &e.key, &e.value)?,
            }
        }
        self.put(id, record)
    }

    /// Removes a record and its index entries; answers what it was.
    pub fn delete<R: Indexed>(&self, id: u64) -> TxResult<Option<R>> {
        let Some(old) = self.get::<R>(id)? else {
            return Ok(None);
        };
        for e in old.index_entries() {
            self.raw_remove(e.tree, &e.key)?;
        }
        self.remove::<R>(id)?;
        Ok(Some(old))
    }

    /// Takes the next id of a sequence inside the transaction. Safe when the transaction
    /// runs again: it reads the sequence afresh, so no id is lost or taken twice.
    pub fn next_id(&self, sequence: &str) -> TxResult<u64> {
        self.next_ids(sequence, 1)
    }

    /// Takes the next `n` consecutive ids of a sequence; answers the first.
    pub fn next_ids(&self, sequence: &str, n: u64) -> TxResult<u64> {
        let meta = self.tree(migrate::META)?;
        let key = format!("seq:{sequence}");
        let last = meta.get(key.as_bytes())?.map(|v| key_id(&v)).unwrap_or(0);
        meta.insert(key.as_bytes(), &id_key(last + n))?;
        Ok(last + 1)
    }

    /// Points a unique key at `id`; a key already held by another id aborts with
    /// `Duplicate(what)`, so the record and its index are never half-written.
    pub fn claim_unique(&self, index: &str, key: &[u8], id: u64, what: Unique) -> TxResult<()> {
        let tree = self.tree(index)?;
        match tree.get(key)? {
            Some(existing) if key_id(&existing) != id => abort(StoreError::Duplicate(what)),
            Some(_) => Ok(()),
            None => {
                tree.insert(key, &id_key(id))?;
                Ok(())
            }
        }
    }

    pub fn release_unique(&self, index: &str, key: &[u8]) -> TxResult<()> {
        self.tree(index)?.remove(key)?;
        Ok(())
    }

    pub fn unique_get(&self, index: &str, key: &[u8]) -> TxResult<Option<u64>> {
        Ok(self.tree(index)?.get(key)?.map(|v| key_id(&v)))
    }

    /// Adds `parent -> child` to a one-to-many index.
    pub fn link(&self, index: &str, parent: u64, child: u64) -> TxResult<()> {
        self.tree(index)?.insert(&pair_key(parent, child), &[])?;
        Ok(())
    }

    pub fn unlink(&self, index: &str, parent: u64, child: u64) -> TxResult<()> {
        self.tree(index)?.remove(&pair_key(parent, child))?;
        Ok(())
    }

    /// Raw key/value access for index shapes the helpers above do not cover.
    pub fn raw_insert(&self, tree: &str, key: &[u8], value: &[u8]) -> TxResult<()> {
        self.tree_for_write(tree, key)?.insert(key, value)?;
        Ok(())
    }

    pub fn raw_get(&self, tree: &str, key: &[u8]) -> TxResult<Option<Vec<u8>>> {
        Ok(self.tree(tree)?.get(key)?.map(|v| v.to_vec()))
    }

    pub fn raw_remove(&self, tree: &str, key: &[u8]) -> TxResult<()> {
        self.tree_for_write(tree, key)?.remove(key)?;
        Ok(())
    }
}

fn open_error(path: &Path, e: sled::Error) -> OpenError {
    let text = e.to_string();
    if text.contains("could not acquire lock") {
        OpenError(format!(
            "the data folder {} is in use by another process (is a shopbox server running on it?)",
            path.parent().unwrap_or(path).display()
        ))
    } else {
        OpenError(format!(
            "cannot open the database in {}: {text}",
            path.display()
        ))
    }
}

/// sled writes a snapshot only while opening; a kill during that leaves a truncated
/// `snap.*.generating` that sled would pick and fail on at every later open.
fn set_aside_unfinished_snapshots(path: &Path) -> Result<(), OpenError> {
    let entries = std::fs::read_dir(path)
        .map_err(|e| OpenError(format!("cannot read {}: {e}", path.display())))?;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        if name.starts_with("snap.") && name.ends_with(".generating") {
            // sled takes every file named `snap.*` as a candidate: keep it in a subfolder.
            let folder = path.join(UNFINISHED_SNAPSHOTS);
            let aside = folder.join(format!("{name}.{}", crate::core::time::now_micros()));
            std::fs::create_dir_all(&folder)
                .and_then(|_| std::fs::rename(entry.path(), &aside))
                .map_err(|e| {
                    OpenError(format!("cannot move aside {}: {e}", entry.path().display()))
                })?;
            tracing::warn!(
                file = %entry.path().display(),
                moved_to = %aside.display(),
                "moved aside a snapshot left unfinished by an interrupted start"
            );
        }
    }
    Ok(())
}

/// Where half-written snapshots go, inside the database folder.
pub const UNFINISHED_SNAPSHOTS: &str = "unfinished-snapshots";

#[cfg(test)]
mod tests;

/// Swaps two folders in one step where the kernel can (`renameat2` with
/// `RENAME_EXCHANGE`), else with two renames: imports put a finished database in place.
pub fn swap_folders(a: &Path, b: &Path) -> std::io::Result<()> {
    use std::ffi::CString;
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        CString::new(p.as_os_str().as_bytes())
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))
    };
    let (ca, cb) = (c(a)?, c(b)?);
    // SAFETY: both are valid NUL-terminated paths that outlive the call.
    let done = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            ca.as_ptr(),
            libc::AT_FDCWD,
            cb.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if done == 0 {
        return Ok(());
    }
    let aside = a.with_extension("swapping");
    std::fs::rename(a, &aside)?;
    std::fs::rename(b, a)?;
    std::fs::rename(&aside, b)
}
