//! Reads over key ranges: the stores page through indexes with these, never with the
//! engine's own types.

use std::ops::Deref;

use super::{KeyOrder, StoreResult};

/// A key or value as the tree keeps it, shared with the engine rather than copied.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Bytes(pub(super) sled::IVec);

impl Deref for Bytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        &self.0
    }
}

impl AsRef<[u8]> for Bytes {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

/// The `(key, value)` entries of a key range, in the order asked for. Lazy: a page of an
/// index reads only as far as it is taken.
pub struct Scan {
    pub(super) iter: sled::Iter,
    pub(super) order: KeyOrder,
}

impl Iterator for Scan {
    type Item = StoreResult<(Bytes, Bytes)>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = match self.order {
            KeyOrder::Ascending => self.iter.next(),
            KeyOrder::Descending => self.iter.next_back(),
        };
        next.map(|kv| kv.map(|(k, v)| (Bytes(k), Bytes(v))).map_err(Into::into))
    }
}

impl Scan {
    /// Only the keys.
    pub fn keys(self) -> impl Iterator<Item = StoreResult<Bytes>> {
        self.map(|kv| kv.map(|(k, _)| k))
    }
}
