//! What an import reads, whichever layout the source has: the SQL per kind of record,
//! and the list of changes it made on the way in.

use std::collections::BTreeMap;

/// What an import changed on the way in, by kind of change, with the ids it touched.
#[derive(Debug, Default)]
pub struct Changes(BTreeMap<String, Vec<u64>>);

impl Changes {
    pub fn note(&mut self, what: impl Into<String>, id: u64) {
        self.0.entry(what.into()).or_default().push(id);
    }

    /// Adds another reader's changes to these.
    pub fn absorb(&mut self, other: Changes) {
        for (what, ids) in other.0 {
            self.0.entry(what).or_default().extend(ids);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub(super) fn lines(&self) -> Vec<String> {
        const IDS_SHOWN: usize = 10;
        self.0
            .iter()
            .map(|(what, ids)| {
                let shown: Vec<String> =
                    ids.iter().take(IDS_SHOWN).map(|i| i.to_string()).collect();
                let more = if ids.len() > IDS_SHOWN { ", ..." } else { "" };
                format!("{what}: {} (ids {}{more})", ids.len(), shown.join(", "))
            })
            .collect()
    }
}

/// The SQL that reads each kind of record, in the row shapes `read_shop` maps. Every
/// column is cast to int8, text or bool; times are microseconds since the epoch and money
/// is whole cents.
pub struct Queries {
    pub users: String,
    pub categories: String,
    pub products: String,
    pub product_categories: String,
    pub cart_items: String,
    pub addresses: String,
    pub orders: String,
    pub order_items: String,
    pub payments: String,
    pub shippings: String,
    pub history: String,
    /// The reference backend has no reviews.
    pub reviews: Option<String>,
}

/// A timestamp column as microseconds since the epoch.
pub fn micros(column: &str) -> String {
    format!("(extract(epoch from {column}) * 1000000)::int8")
}

/// A money column as whole cents, rounded to the nearest cent.
pub fn cents(column: &str) -> String {
    format!("round(({column})::numeric * 100)::int8")
}
