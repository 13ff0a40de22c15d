//! The outbox on sled, and the delivery queue beside it.

use crate::db::{self, key_id, pair_key, Db, KeyOrder, StoreResult, Tx, TxResult};
use crate::mail::model::{Delivery, Mail, MailV1, OUTBOX, OUTBOX_QUEUE};

/// Keeps a mail in the outbox, with a new id.
pub async fn record(db: &Db, mut mail: Mail) -> StoreResult<Mail> {
    mail.id = db.next_id(OUTBOX)?;
    db.write(|tx| put(tx, &mail)).await?;
    Ok(mail)
}

fn queue_key(next_attempt: i64, id: u64) -> [u8; 16] {
    pair_key(next_attempt.max(0) as u64, id)
}

/// Keeps a mail inside a larger write (its id taken beforehand with `next_id(OUTBOX)`);
/// a queued one also goes into the delivery queue.
pub fn put(tx: &Tx<'_>, mail: &Mail) -> TxResult<()> {
    tx.put(mail.id, mail)?;
    if let Delivery::Queued { next_attempt, .. } = mail.delivery {
        tx.raw_insert(OUTBOX_QUEUE, &queue_key(next_attempt, mail.id), &[])?;
    }
    Ok(())
}

/// Queued mails whose next attempt is at or before `now`, the earliest first.
pub fn due(db: &Db, now: i64, limit: usize) -> StoreResult<Vec<Mail>> {
    let mut out = Vec::new();
    let until = queue_key(now, u64::MAX);
    for key in db
        .range(OUTBOX_QUEUE, ..=until.as_slice(), KeyOrder::Ascending)?
        .keys()
    {
        if out.len() >= limit {
            break;
        }
        if let Some(mail) = db.get::<Mail>(key_id(&key?[8..]))? {
            out.push(mail);
        }
    }
    Ok(out)
}

/// Records where a mail's delivery stands, moving it in (or out of) the queue.
pub async fn set_delivery(db: &Db, id: u64, delivery: Delivery) -> StoreResult<()> {
    db.write(|tx| {
        let Some(mut mail) = tx.get::<Mail>(id)? else {
            return Ok(());
        };
        if let Delivery::Queued { next_attempt, .. } = mail.delivery {
            tx.raw_remove(OUTBOX_QUEUE, &queue_key(next_attempt, id))?;
        }
        mail.delivery = delivery.clone();
        put(tx, &mail)
    })
    .await
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

/// Schema 3 to 4: outbox records gain a delivery state. Mail written before is queued as
/// of when it was written, so a shop that sets up SMTP later delivers what is recent
/// enough (see `smtp.give_up_hours`).
pub fn add_delivery_states(db: &Db) -> StoreResult<()> {
    let queued = std::sync::Mutex::new(Vec::new());
    db::migrate::rewrite_tree(db, OUTBOX, 1, |bytes| {
        let (old, _): (MailV1, _) =
            bincode::serde::decode_from_slice(bytes, bincode::config::standard())
                .map_err(|e| db::StoreError::Storage(format!("decode outbox: {e}")))?;
        if let Ok(mut q) = queued.lock() {
            q.push((queue_key(old.created_at, old.id).to_vec(), Vec::new()));
        }
        db::encode(&Mail {
            id: old.id,
            to: old.to,
            subject: old.subject,
            body: old.body,
            link: old.link,
            created_at: old.created_at,
            delivery: Delivery::queued(old.created_at),
        })
    })?;
    let queued = queued.into_inner().unwrap_or_default();
    db.replace_tree(OUTBOX_QUEUE, queued)?;
    Ok(())
}
