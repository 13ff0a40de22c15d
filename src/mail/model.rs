//! The outbox: every email the shop wrote, with where its delivery stands.

use serde::{Deserialize, Serialize};

use crate::db::Record;

pub const OUTBOX: &str = "outbox";
/// Mails still to deliver, keyed `next attempt (micros) | mail id`, so the sender reads
/// only the due ones.
pub const OUTBOX_QUEUE: &str = "outbox_queue";

pub const TREES: &[&str] = &[OUTBOX, OUTBOX_QUEUE];

/// An email the shop wrote, kept in the outbox.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Mail {
    pub id: u64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: i64,
    pub delivery: Delivery,
}

impl Record for Mail {
    const TREE: &'static str = OUTBOX;
    const VERSION: u8 = 2;
}

/// Where a mail's delivery through SMTP stands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Delivery {
    /// Waiting for its next attempt (the first one at `next_attempt` = when it was written).
    Queued {
        attempts: u32,
        next_attempt: i64,
        last_error: Option<String>,
    },
    /// The SMTP server accepted it, with this answer.
    Sent { at: i64, answer: String },
    /// Given up: the server refused it for good, or retries ran out.
    Failed {
        attempts: u32,
        at: i64,
        error: String,
    },
}

impl Delivery {
    pub fn queued(now: i64) -> Delivery {
        Delivery::Queued {
            attempts: 0,
            next_attempt: now,
            last_error: None,
        }
    }
}

/// The outbox record before delivery states existed (record version 1).
#[derive(Deserialize)]
pub struct MailV1 {
    pub id: u64,
    pub to: String,
    pub subject: String,
    pub body: String,
    pub link: Option<String>,
    pub created_at: i64,
}

/// A message before it is addressed and kept.
pub struct Letter {
    pub subject: String,
    pub body: String,
}
