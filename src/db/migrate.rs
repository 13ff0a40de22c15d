//! Schema versions: recorded in the `meta` tree and upgraded in place at open.

use super::{Db, StoreError, StoreResult};

pub const META: &str = "meta";
pub const SCHEMA_KEY: &[u8] = b"schema_version";

/// One upgrade step: turns a database at `from` into one at `from + 1`. A domain that
/// changes a record's version declares a step that rewrites the old values (see
/// `rewrite_tree`), and the schema's version moves one past it.
#[derive(Clone, Copy)]
pub struct Migration {
    pub from: u32,
    pub run: fn(&Db) -> StoreResult<()>,
}

pub fn schema_version(db: &Db) -> StoreResult<Option<u32>> {
    let meta = db.tree(META)?;
    Ok(meta.get(SCHEMA_KEY)?.map(|v| {
        let bytes: [u8; 4] = v.as_ref().try_into().unwrap_or([0; 4]);
        u32::from_be_bytes(bytes)
    }))
}

fn set_schema_version(db: &Db, version: u32) -> StoreResult<()> {
    db.tree(META)?.insert(SCHEMA_KEY, &version.to_be_bytes())?;
    Ok(())
}

/// Brings the database to `target`: a new one is stamped, an older one is upgraded step
/// by step (each step recorded as it finishes), a newer one is refused.
pub fn run(db: &Db, steps: &[Migration], target: u32) -> StoreResult<()> {
    let mut version = match schema_version(db)? {
        Some(v) => v,
        None => {
            set_schema_version(db, target)?;
            return Ok(());
        }
    };
    if version > target {
        return Err(StoreError::Storage(format!(
            "the data folder has schema version {version}, newer than this shopbox ({target}); use a newer release"
        )));
    }
    while version < target {
        let step = steps
            .iter()
            .find(|s| s.from == version)
            .ok_or_else(|| StoreError::Storage(format!("no migration from schema {version}")))?;
        (step.run)(db)?;
        version += 1;
        set_schema_version(db, version)?;
        db.flush_blocking()?;
        tracing::info!(version, "migrated the database");
    }
    Ok(())
}

/// The body (after the version byte) of a value an older version wrote, as that version's
/// shape `T` (which the migration keeps for the purpose).
pub fn decode_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> StoreResult<T> {
    bincode::serde::decode_from_slice(body, bincode::config::standard())
        .map(|(value, _)| value)
        .map_err(|e| StoreError::Storage(format!("decode an old record: {e}")))
}

/// Rewrites every value of a tree whose version byte is `from` with `upgrade`'s result.
pub fn rewrite_tree(
    db: &Db,
    tree: &str,
    from: u8,
    upgrade: impl Fn(&[u8]) -> StoreResult<Vec<u8>>,
) -> StoreResult<u64> {
    let tree = db.inner.sled.open_tree(tree)?;
    let mut rewritten = 0;
    for kv in tree.iter() {
        let (key, value) = kv?;
        if value.first() == Some(&from) {
            tree.insert(key, upgrade(&value[1..])?)?;
            rewritten += 1;
        }
    }
    Ok(rewritten)
}
