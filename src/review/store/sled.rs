//! Reviews on sled; each write keeps the product's rating in step.

use crate::db::{abort, Db, KeyOrder, StoreError, StoreResult};
use crate::product::store::sled as products;
use crate::review::model::*;

pub fn review(db: &Db, id: u64) -> StoreResult<Option<Review>> {
    db.get(id)
}

/// One page of a product's reviews, newest first, and how many there are.
pub fn reviews_of(
    db: &Db,
    product_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Review>, u64)> {
    let ids = db.children(REVIEWS_BY_PRODUCT, product_id, KeyOrder::Descending)?;
    let mut page = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        if let Some(r) = db.get::<Review>(*id)? {
            page.push(r);
        }
    }
    Ok((page, ids.len() as u64))
}

/// Writes a new review and adds its rating; a second review by the same author is a conflict.
pub async fn insert_review(db: &Db, review: &Review) -> StoreResult<()> {
    db.write(|tx| {
        tx.save(review)?;
        products::change_rating(tx, review.product_id, i64::from(review.rating), 1)
    })
    .await
}

/// Changes an author's review of a product, keeping the product's rating in step.
pub async fn edit_review(
    db: &Db,
    user_id: u64,
    product_id: u64,
    change: &ReviewIn,
    now: i64,
) -> StoreResult<Review> {
    db.write(|tx| {
        let Some(id) = tx.unique_get(REVIEWS_BY_AUTHOR, &author_key(user_id, product_id))? else {
            return abort(StoreError::NotReviewed);
        };
        let Some(mut r) = tx.get::<Review>(id)? else {
            return abort(StoreError::NotFound("Review"));
        };
        let old_rating = i64::from(r.rating);
        r.rating = change.rating as u8;
        if let Some(t) = &change.title {
            r.title = t.clone();
        }
        if let Some(b) = &change.body {
            r.body = b.clone();
        }
        r.updated_at = now;
        tx.save(&r)?;
        products::change_rating(tx, product_id, i64::from(r.rating) - old_rating, 0)?;
        Ok(r)
    })
    .await
}

pub async fn remove_review(db: &Db, review: &Review) -> StoreResult<()> {
    db.write(|tx| {
        tx.delete::<Review>(review.id)?;
        products::change_rating(tx, review.product_id, -i64::from(review.rating), -1)
    })
    .await
}
