//! The order store: one interface over the storage engines.

mod sled;
pub use self::sled::*;
