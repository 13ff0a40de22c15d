//! Payment reads on PostgreSQL (`payments` as `export-pg` writes it).

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use crate::db::pg::{id, key, micros, PgDb};
use crate::db::StoreResult;
use crate::payment::model::{Payment, PaymentStatus};

pub const PAYMENT: &str = "id, order_id, user_id, (amount * 100)::int8, status, payment_gateway, \
                           transaction_id, is_paid, created_at";

pub fn payment_of(r: &Row) -> Payment {
    Payment {
        id: id(r.get(0)),
        order_id: id(r.get(1)),
        user_id: id(r.get(2)),
        amount: r.get(3),
        status: match r.get::<_, &str>(4) {
            "failed" => PaymentStatus::Failed,
            "refunded" => PaymentStatus::Refunded,
            _ => PaymentStatus::Success,
        },
        payment_gateway: r.get(5),
        transaction_id: r.get(6),
        is_paid: r.get(7),
        created_at: micros(r.get(8)),
    }
}

pub async fn find(c: &impl GenericClient, pid: u64) -> StoreResult<Option<Payment>> {
    let row = c
        .query_opt(
            &format!("SELECT {PAYMENT} FROM payments WHERE id = $1"),
            &[&key(pid)],
        )
        .await?;
    Ok(row.as_ref().map(payment_of))
}

pub async fn payment(pg: &PgDb, pid: u64) -> StoreResult<Option<Payment>> {
    find(&pg.client().await?, pid).await
}

pub async fn user_payments(
    pg: &PgDb,
    user_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Payment>, u64)> {
    let c = pg.client().await?;
    let total: i64 = c
        .query_one(
            "SELECT count(*) FROM payments WHERE user_id = $1",
            &[&key(user_id)],
        )
        .await?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT {PAYMENT} FROM payments WHERE user_id = $1 \
                 ORDER BY id DESC LIMIT $2 OFFSET $3"
            ),
            &[
                &key(user_id),
                &(limit.min(i64::MAX as usize) as i64),
                &(offset.min(i64::MAX as usize) as i64),
            ],
        )
        .await?;
    Ok((rows.iter().map(payment_of).collect(), total.max(0) as u64))
}
