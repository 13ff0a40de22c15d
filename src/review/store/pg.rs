//! Reviews on PostgreSQL (`reviews` as `export-pg` writes it, plus the author's name as
//! it was when they wrote); each write keeps the product's rating in step.

use tokio_postgres::Row;

use crate::db::pg::{duplicate, id, key, micros, ts, PgDb};
use crate::db::{StoreError, StoreResult, Unique};
use crate::product::store::pg as products;
use crate::review::model::*;

const REVIEW: &str = "r.id, r.product_id, r.user_id, \
    COALESCE(r.user_name, (SELECT u.name FROM users u WHERE u.id = r.user_id), ''), \
    r.rating, r.title, r.body, r.created_at, r.updated_at";

const TAKEN: &[(&str, Unique)] = &[("reviews_user_product_key", Unique::Review)];

fn review_of(r: &Row) -> Review {
    Review {
        id: id(r.get(0)),
        product_id: id(r.get(1)),
        user_id: id(r.get(2)),
        user_name: r.get(3),
        rating: r.get::<_, i16>(4).clamp(0, 255) as u8,
        title: r.get(5),
        body: r.get(6),
        created_at: micros(r.get(7)),
        updated_at: micros(r.get(8)),
    }
}

pub async fn review(pg: &PgDb, rid: u64) -> StoreResult<Option<Review>> {
    let c = pg.client().await?;
    let row = c
        .query_opt(
            &format!("SELECT {REVIEW} FROM reviews r WHERE r.id = $1"),
            &[&key(rid)],
        )
        .await?;
    Ok(row.as_ref().map(review_of))
}

pub async fn reviews_of(
    pg: &PgDb,
    product_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Review>, u64)> {
    let c = pg.client().await?;
    let total: i64 = c
        .query_one(
            "SELECT count(*) FROM reviews WHERE product_id = $1",
            &[&key(product_id)],
        )
        .await?
        .get(0);
    let rows = c
        .query(
            &format!(
                "SELECT {REVIEW} FROM reviews r WHERE r.product_id = $1 \
                 ORDER BY r.id DESC LIMIT $2 OFFSET $3"
            ),
            &[
                &key(product_id),
                &(limit.min(i64::MAX as usize) as i64),
                &(offset.min(i64::MAX as usize) as i64),
            ],
        )
        .await?;
    Ok((rows.iter().map(review_of).collect(), total.max(0) as u64))
}

pub async fn insert_review(pg: &PgDb, mut review: Review) -> StoreResult<Review> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let row = tx
        .query_one(
            "INSERT INTO reviews (product_id, user_id, user_name, rating, title, body, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING id",
            &[
                &key(review.product_id),
                &key(review.user_id),
                &review.user_name,
                &i16::from(review.rating),
                &review.title,
                &review.body,
                &ts(review.created_at),
                &ts(review.updated_at),
            ],
        )
        .await
        .map_err(|e| duplicate(e, TAKEN))?;
    review.id = id(row.get(0));
    products::change_rating(&tx, review.product_id, i64::from(review.rating), 1).await?;
    pg.commit(tx).await?;
    Ok(review)
}

pub async fn edit_review(
    pg: &PgDb,
    user_id: u64,
    product_id: u64,
    change: &ReviewIn,
    now: i64,
) -> StoreResult<Review> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt(
            &format!(
                "SELECT {REVIEW} FROM reviews r WHERE r.user_id = $1 AND r.product_id = $2 \
                 FOR UPDATE"
            ),
            &[&key(user_id), &key(product_id)],
        )
        .await?
    else {
        return Err(StoreError::NotReviewed);
    };
    let mut r = review_of(&row);
    let old_rating = i64::from(r.rating);
    r.rating = change.rating.clamp(0, 255) as u8;
    if let Some(t) = &change.title {
        r.title = t.clone();
    }
    if let Some(b) = &change.body {
        r.body = b.clone();
    }
    r.updated_at = now;
    tx.execute(
        "UPDATE reviews SET rating = $2, title = $3, body = $4, updated_at = $5 WHERE id = $1",
        &[
            &key(r.id),
            &i16::from(r.rating),
            &r.title,
            &r.body,
            &ts(now),
        ],
    )
    .await?;
    products::change_rating(&tx, product_id, i64::from(r.rating) - old_rating, 0).await?;
    pg.commit(tx).await?;
    Ok(r)
}

pub async fn remove_review(pg: &PgDb, review: &Review) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    let n = tx
        .execute("DELETE FROM reviews WHERE id = $1", &[&key(review.id)])
        .await?;
    if n > 0 {
        products::change_rating(&tx, review.product_id, -i64::from(review.rating), -1).await?;
    }
    pg.commit(tx).await
}
