//! The outbox: every email the shop sent.

use serde::{Deserialize, Serialize};

use crate::db::Record;

pub const OUTBOX: &str = "outbox";

pub const TREES: &[&str] = &[OUTBOX];

/// An email the shop sent, kept in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    pub id: u64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: i64,
}

impl Record for Mail {
    const TREE: &'static str = OUTBOX;
}

/// A message before it is addressed and kept.
pub struct Letter {
    pub subject: String,
    pub body: String,
}
