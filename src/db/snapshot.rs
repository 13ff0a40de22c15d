//! A copy of the whole database at one instant, and filling a new database from one:
//! the storage side of backups. While a snapshot is read, no transaction can commit
//! (`Db::write` waits at the write gate), so every tree shows the same moment.

use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::{Db, OpenError, StoreResult};

/// One tree's entries, encoded as `[u32 key length][key][u32 value length][value]`...
pub struct TreeDump {
    pub name: String,
    pub entries: u64,
    pub bytes: Vec<u8>,
}

/// The database as it was at one instant: a copy of its files, taken while no write
/// could commit, opened on its own. Its trees are read from the copy at leisure.
pub struct Snapshot {
    copy: sled::Db,
    /// How long writes were held back while it was copied.
    pub paused: Duration,
}

impl Snapshot {
    pub fn tree_names(&self) -> Vec<String> {
        self.copy
            .tree_names()
            .iter()
            .map(|n| String::from_utf8_lossy(n).to_string())
            .collect()
    }

    /// One tree's entries.
    pub fn dump(&self, name: &str) -> StoreResult<TreeDump> {
        let tree = self.copy.open_tree(name)?;
        let mut dump = TreeDump {
            name: name.to_string(),
            entries: 0,
            bytes: Vec::new(),
        };
        for kv in tree.iter() {
            let (k, v) = kv?;
            push(&mut dump.bytes, &k);
            push(&mut dump.bytes, &v);
            dump.entries += 1;
        }
        Ok(dump)
    }
}

/// How long writes waited at the gate, since the database opened.
#[derive(Debug, Clone, Copy, Default)]
pub struct GateWaits {
    pub writes: u64,
    pub longest: Duration,
}

fn push(out: &mut Vec<u8>, part: &[u8]) {
    out.extend_from_slice(&(part.len() as u32).to_be_bytes());
    out.extend_from_slice(part);
}

/// The `(key, value)` pairs of a dump, or `None` where it is malformed.
pub fn entries(bytes: &[u8]) -> impl Iterator<Item = Option<(&[u8], &[u8])>> {
    let mut rest = bytes;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut take = || {
            let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
            let part = rest.get(4..4 + len)?;
            rest = &rest[4 + len..];
            Some(part)
        };
        let pair = take().zip(take());
        if pair.is_none() {
            rest = &[];
        }
        Some(pair)
    })
}

impl Db {
    /// Copies the database's files into `stage` (a new folder on the same disk) while no
    /// write can commit, runs `also` in the same pause, and opens the copy. Copying the
    /// files is what keeps the pause short: reading a big shop's trees takes seconds.
    /// Blocks: call it from a thread that may wait (the CLI, `spawn_blocking`).
    pub fn snapshot<T>(
        &self,
        stage: &Path,
        also: impl FnOnce() -> T,
    ) -> StoreResult<(Snapshot, T)> {
        let fail = |e: std::io::Error| {
            super::StoreError::Storage(format!(
                "cannot copy the database to {}: {e}",
                stage.display()
            ))
        };
        let (paused, also) = {
            let _closed = self.inner.gate.blocking_write();
            let start = Instant::now();
            // `gate_waits().longest` then tells the longest wait for this snapshot.
            self.inner.gate_longest_micros.store(0, Ordering::Relaxed);
            // Through the flusher: after a failed flush there is no other (what failed to
            // become durable must not reach a copy or a backup).
            self.inner.flusher.flush_blocking()?;
            copy_files(&self.inner.path, stage).map_err(fail)?;
            let also = also();
            (start.elapsed(), also)
        };
        let copy = sled::Config::new()
            .path(stage)
            .cache_capacity(64 * 1024 * 1024)
            .open()?;
        Ok((Snapshot { copy, paused }, also))
    }

    /// Runs `f` while no write can commit: writes wait at the gate, as for a snapshot.
    /// Plain reads go on; `replace_tree` called by `f` on this thread does not wait.
    /// Blocks: call it from a thread that may wait (the CLI, `spawn_blocking`).
    pub fn paused<T>(&self, f: impl FnOnce() -> T) -> T {
        struct Here(usize);
        impl Drop for Here {
            fn drop(&mut self) {
                PAUSED_HERE.with(|p| p.set(self.0));
            }
        }
        let _closed = self.inner.gate.blocking_write();
        let _here = Here(PAUSED_HERE.with(|p| p.replace(self.id())));
        f()
    }

    /// Whether this thread runs inside `paused` of this database.
    pub(super) fn paused_here(&self) -> bool {
        PAUSED_HERE.with(|p| p.get() == self.id())
    }

    fn id(&self) -> usize {
        std::sync::Arc::as_ptr(&self.inner) as usize
    }

    /// How many writes had to wait for a snapshot since the database opened, and the
    /// longest wait since the last snapshot began.
    pub fn gate_waits(&self) -> GateWaits {
        GateWaits {
            writes: self.inner.gate_waited.load(Ordering::Relaxed),
            longest: Duration::from_micros(self.inner.gate_longest_micros.load(Ordering::Relaxed)),
        }
    }

    pub(super) fn note_gate_wait(&self, waited: Duration) {
        self.inner.gate_waited.fetch_add(1, Ordering::Relaxed);
        self.inner
            .gate_longest_micros
            .fetch_max(waited.as_micros() as u64, Ordering::Relaxed);
    }
}

thread_local! {
    /// The database (`Db::id`) whose writes this thread holds back, or 0.
    static PAUSED_HERE: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Copies the files of a database folder (not the snapshots set aside at open).
fn copy_files(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let name = entry.file_name();
        if name == super::UNFINISHED_SNAPSHOTS {
            continue;
        }
        if entry.file_type()?.is_dir() {
            copy_files(&entry.path(), &to.join(&name))?;
        } else {
            std::fs::copy(entry.path(), to.join(&name))?;
        }
    }
    Ok(())
}

/// Fills the database folder `dir/db` (which must not hold one) with trees of a
/// snapshot, as raw entries; `Db::open` then migrates it like any older folder.
pub struct Restorer {
    sled: sled::Db,
}

impl Restorer {
    pub fn create(dir: &Path) -> Result<Restorer, OpenError> {
        let path = dir.join("db");
        let sled = sled::Config::new().path(&path).open().map_err(|e| {
            OpenError(format!(
                "cannot create the database in {}: {e}",
                path.display()
            ))
        })?;
        Ok(Restorer { sled })
    }

    /// Writes one tree's dump; answers how many entries it held.
    pub fn tree(&self, name: &str, dump: &[u8]) -> Result<u64, OpenError> {
        let fail = |e: sled::Error| OpenError(format!("cannot write tree {name}: {e}"));
        let tree = self.sled.open_tree(name).map_err(fail)?;
        let mut n = 0;
        for pair in entries(dump) {
            let (k, v) = pair.ok_or_else(|| OpenError(format!("tree {name} is malformed")))?;
            tree.insert(k, v).map_err(fail)?;
            n += 1;
        }
        Ok(n)
    }

    pub fn finish(self) -> Result<(), OpenError> {
        self.sled
            .flush()
            .map(|_| ())
            .map_err(|e| OpenError(format!("cannot write the database: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dumps_read_back_and_stop_at_garbage() {
        let mut bytes = Vec::new();
        push(&mut bytes, b"k1");
        push(&mut bytes, b"value one");
        push(&mut bytes, b"");
        push(&mut bytes, b"v2");
        let pairs: Vec<_> = entries(&bytes).collect();
        assert_eq!(
            pairs,
            [
                Some((&b"k1"[..], &b"value one"[..])),
                Some((&b""[..], &b"v2"[..]))
            ]
        );
        bytes.extend_from_slice(&[0, 0, 0, 9, 1]);
        assert_eq!(entries(&bytes).last(), Some(None));
    }
}
