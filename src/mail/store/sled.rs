//! The outbox on sled.

use crate::db::{Db, KeyOrder, StoreResult, Tx, TxResult};
use crate::mail::model::{Mail, OUTBOX};

/// Keeps a mail in the outbox, with a new id.
pub async fn record(db: &Db, mut mail: Mail) -> StoreResult<Mail> {
    mail.id = db.next_id(OUTBOX)?;
    db.write(|tx| put(tx, &mail)).await?;
    Ok(mail)
}

/// Keeps a mail inside a larger write (its id taken beforehand with `next_id(OUTBOX)`).
pub fn put(tx: &Tx<'_>, mail: &Mail) -> TxResult<()> {
    tx.put(mail.id, mail)
}

/// The latest mails, newest first, optionally only those to one address.
pub fn latest(db: &Db, to: Option<&str>, limit: usize) -> StoreResult<Vec<Mail>> {
    let all: Vec<Mail> = db.scan(KeyOrder::Descending)?;
    Ok(all
        .into_iter()
        .filter(|m| to.is_none_or(|t| m.to.eq_ignore_ascii_case(t)))
        .take(limit)
        .collect())
}
