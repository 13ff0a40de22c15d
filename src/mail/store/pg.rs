//! The outbox on PostgreSQL: `outbox`, with the delivery state as JSON and the next
//! attempt of a queued mail beside it.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::db::pg::{id, key, micros, ts, PgDb, Prepared};
use crate::db::{StoreError, StoreResult};
use crate::mail::model::{Delivery, Mail};

const MAIL: &str = "id, recipient, subject, body, link, created_at, delivery::text";

fn mail_of(r: &Row) -> StoreResult<Mail> {
    let delivery: String = r.get(6);
    Ok(Mail {
        id: id(r.get(0)),
        to: r.get(1),
        subject: r.get(2),
        body: r.get(3),
        link: r.get(4),
        created_at: micros(r.get(5)),
        delivery: serde_json::from_str(&delivery)
            .map_err(|e| StoreError::Storage(format!("outbox delivery: {e}")))?,
    })
}

/// Keeps a mail inside a larger write; answers it with its new id.
pub async fn insert(c: &impl GenericClient, mut mail: Mail) -> StoreResult<Mail> {
    let delivery = serde_json::to_string(&mail.delivery)
        .map_err(|e| StoreError::Storage(format!("outbox delivery: {e}")))?;
    let next_attempt = match mail.delivery {
        Delivery::Queued { next_attempt, .. } => Some(ts(next_attempt)),
        _ => None,
    };
    let row = c
        .pquery_one(
            "INSERT INTO outbox (recipient, subject, body, link, created_at, delivery, \
             next_attempt) VALUES ($1, $2, $3, $4, $5, ($6::text)::jsonb, $7) RETURNING id",
            &[
                &mail.to,
                &mail.subject,
                &mail.body,
                &mail.link,
                &ts(mail.created_at),
                &delivery,
                &next_attempt,
            ],
        )
        .await?;
    mail.id = id(row.get(0));
    Ok(mail)
}

pub async fn record(pg: &PgDb, mail: Mail) -> StoreResult<Mail> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let mail = insert(&tx, mail).await?;
    pg.commit(tx).await?;
    Ok(mail)
}

pub async fn latest(pg: &PgDb, to: Option<&str>, limit: usize) -> StoreResult<Vec<Mail>> {
    let c = pg.client().await?;
    let limit = limit.min(i64::MAX as usize) as i64;
    let rows = match to {
        Some(to) => {
            c.pquery(
                &format!(
                    "SELECT {MAIL} FROM outbox WHERE lower(recipient) = lower($1) \
                     ORDER BY id DESC LIMIT $2"
                ),
                &[&to, &limit],
            )
            .await?
        }
        None => {
            c.pquery(
                &format!("SELECT {MAIL} FROM outbox ORDER BY id DESC LIMIT $1"),
                &[&limit],
            )
            .await?
        }
    };
    rows.iter().map(mail_of).collect()
}

/// How long a mail taken for sending stays away from the other instances.
pub const LEASE_MICROS: i64 = 5 * 60 * 1_000_000;

/// Queued mails due at `now`, earliest first, each leased to the caller: rows another
/// instance is taking at the same moment are skipped, not waited for.
pub async fn due(pg: &PgDb, now: i64, limit: usize) -> StoreResult<Vec<Mail>> {
    let c = pg.client().await?;
    let rows = c
        .pquery(
            &format!(
                "UPDATE outbox SET next_attempt = $2 WHERE id IN ( \
                   SELECT id FROM outbox WHERE next_attempt <= $1 \
                   ORDER BY next_attempt, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
                 RETURNING {MAIL}"
            ),
            &[
                &ts(now),
                &ts(now + LEASE_MICROS),
                &(limit.min(i64::MAX as usize) as i64),
            ],
        )
        .await?;
    let mut mails = rows.iter().map(mail_of).collect::<StoreResult<Vec<_>>>()?;
    mails.sort_by_key(|m| match m.delivery {
        Delivery::Queued { next_attempt, .. } => (next_attempt, m.id),
        _ => (i64::MAX, m.id),
    });
    Ok(mails)
}

/// Records where a mail's delivery stands: queued again with its next attempt, or out of
/// the queue.
pub async fn set_delivery(pg: &PgDb, mail_id: u64, delivery: Delivery) -> StoreResult<()> {
    let text = serde_json::to_string(&delivery)
        .map_err(|e| StoreError::Storage(format!("outbox delivery: {e}")))?;
    let next_attempt = match delivery {
        Delivery::Queued { next_attempt, .. } => Some(ts(next_attempt)),
        _ => None,
    };
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    tx.pexec(
        "UPDATE outbox SET delivery = ($2::text)::jsonb, next_attempt = $3 WHERE id = $1",
        &[&key(mail_id), &text, &next_attempt],
    )
    .await?;
    pg.commit(tx).await
}
