//! Reviews: one interface over the storage engines; each write keeps the product's
//! rating in step.

pub mod pg;
pub mod sled;

use crate::db::{Backend, StoreResult};
use crate::review::model::*;

pub async fn review(b: &Backend, id: u64) -> StoreResult<Option<Review>> {
    match b {
        Backend::Sled(db) => sled::review(db, id),
        Backend::Pg(pg) => pg::review(pg, id).await,
    }
}

/// One page of a product's reviews, newest first, and how many there are.
pub async fn reviews_of(
    b: &Backend,
    product_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Review>, u64)> {
    match b {
        Backend::Sled(db) => sled::reviews_of(db, product_id, offset, limit),
        Backend::Pg(pg) => pg::reviews_of(pg, product_id, offset, limit).await,
    }
}

/// Writes a new review with a new id and adds its rating; a second review by the same
/// author is a conflict.
pub async fn insert_review(b: &Backend, mut review: Review) -> StoreResult<Review> {
    match b {
        Backend::Sled(db) => {
            review.id = db.next_id(REVIEWS)?;
            sled::insert_review(db, &review).await?;
            Ok(review)
        }
        Backend::Pg(pg) => pg::insert_review(pg, review).await,
    }
}

/// Changes an author's review of a product, keeping the product's rating in step.
pub async fn edit_review(
    b: &Backend,
    user_id: u64,
    product_id: u64,
    change: &ReviewIn,
    now: i64,
) -> StoreResult<Review> {
    match b {
        Backend::Sled(db) => sled::edit_review(db, user_id, product_id, change, now).await,
        Backend::Pg(pg) => pg::edit_review(pg, user_id, product_id, change, now).await,
    }
}

pub async fn remove_review(b: &Backend, review: &Review) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::remove_review(db, review).await,
        Backend::Pg(pg) => pg::remove_review(pg, review).await,
    }
}
