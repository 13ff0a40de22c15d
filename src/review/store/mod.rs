//! Reviews: one interface over the storage engines; each write keeps the product's
//! rating in step.

pub mod sled;

use crate::db::{pg::pending, Backend, StoreResult};
use crate::review::model::*;

pub async fn review(b: &Backend, id: u64) -> StoreResult<Option<Review>> {
    match b {
        Backend::Sled(db) => sled::review(db, id),
        Backend::Pg(_) => pending("review::review"),
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
        Backend::Pg(_) => pending("review::reviews_of"),
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
        Backend::Pg(_) => pending("review::insert_review"),
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
        Backend::Pg(_) => pending("review::edit_review"),
    }
}

pub async fn remove_review(b: &Backend, review: &Review) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::remove_review(db, review).await,
        Backend::Pg(_) => pending("review::remove_review"),
    }
}
