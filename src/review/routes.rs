//! Reviews of products: by customers with a confirmed order of the product.

use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::auth::CurrentUser;
use crate::core::time::{now_micros, rfc3339};
use crate::core::{ApiError, ApiJson, ApiResult, FieldError, Page, PageQuery, Validate};
use crate::db::{abort, pair_key, Db, Record, StoreError, StoreResult};
use crate::product::model::Product;
use crate::product::store;

pub const REVIEWS: &str = "reviews";
pub const REVIEWS_BY_PRODUCT: &str = "reviews_by_product";
/// `user|product` -> review id: one review per user and product.
pub const REVIEWS_BY_AUTHOR: &str = "reviews_by_author";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    pub product_id: u64,
    pub user_id: u64,
    pub user_name: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for Review {
    const TREE: &'static str = REVIEWS;
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewOut {
    pub id: u64,
    pub product_id: u64,
    pub user_id: u64,
    pub user_name: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Review> for ReviewOut {
    fn from(r: &Review) -> Self {
        ReviewOut {
            id: r.id,
            product_id: r.product_id,
            user_id: r.user_id,
            user_name: r.user_name.clone(),
            rating: r.rating,
            title: r.title.clone(),
            body: r.body.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReviewIn {
    /// 1 to 5.
    pub rating: i64,
    pub title: Option<String>,
    pub body: Option<String>,
}

impl Validate for ReviewIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if !(1..=5).contains(&self.rating) {
            errors.push(FieldError::body("rating", "Rating must be 1 to 5"));
        }
        if self.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
            errors.push(FieldError::body("title", "At most 200 characters"));
        }
        if self.body.as_ref().is_some_and(|t| t.chars().count() > 5000) {
            errors.push(FieldError::body("body", "At most 5,000 characters"));
        }
    }
}

pub fn author_key(user_id: u64, product_id: u64) -> [u8; 16] {
    pair_key(user_id, product_id)
}

fn live_product(db: &Db, id: u64) -> ApiResult<Product> {
    store::product(db, id)?
        .filter(|p| p.archived_at.is_none())
        .ok_or_else(|| ApiError::NotFound("Product not found".into()))
}

/// A product's reviews, newest first.
#[openapi(tag = "Reviews")]
#[get("/<product_id>/reviews?<page..>")]
fn list_reviews(
    state: &State<AppState>,
    product_id: u64,
    page: PageQuery,
) -> ApiResult<Json<Page<ReviewOut>>> {
    let p = page.checked()?;
    live_product(&state.db, product_id)?;
    let (reviews, total) = reviews_of(&state.db, product_id, p.offset(), p.limit as usize)?;
    Ok(Json(p.page_of(
        reviews.iter().map(ReviewOut::from).collect(),
        total,
    )))
}

use crate::AppState;

/// Reviews a product; only with a confirmed order of it (else 403), once (else 409; edit
/// with `PUT /{product_id}/reviews/mine`).
#[openapi(tag = "Reviews")]
#[post("/<product_id>/reviews", data = "<body>")]
async fn create_review(
    state: &State<AppState>,
    user: CurrentUser,
    product_id: u64,
    body: ApiJson<ReviewIn>,
) -> ApiResult<Created<Json<ReviewOut>>> {
    let db = &state.db;
    live_product(db, product_id)?;
    if !crate::order::store::has_confirmed_purchase(db, user.user.id, product_id)? {
        return Err(ApiError::Forbidden(
            "Only customers with a confirmed order of this product may review it".into(),
        ));
    }
    let now = now_micros();
    let review = Review {
        id: db.next_id(REVIEWS)?,
        product_id,
        user_id: user.user.id,
        user_name: user.user.name.clone(),
        rating: body.rating as u8,
        title: body.title.clone().unwrap_or_default(),
        body: body.body.clone().unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    insert_review(db, &review).await?;
    Ok(Created::new(format!("/api/products/{product_id}/reviews"))
        .body(Json(ReviewOut::from(&review))))
}

/// Edits the logged-in user's review of a product.
#[openapi(tag = "Reviews")]
#[put("/<product_id>/reviews/mine", data = "<body>")]
async fn update_my_review(
    state: &State<AppState>,
    user: CurrentUser,
    product_id: u64,
    body: ApiJson<ReviewIn>,
) -> ApiResult<Json<ReviewOut>> {
    let db = &state.db;
    let now = now_micros();
    let review = edit_review(db, user.user.id, product_id, &body, now).await?;
    Ok(Json(ReviewOut::from(&review)))
}

fn review(db: &Db, id: u64) -> StoreResult<Option<Review>> {
    db.get(id)
}

/// One page of a product's reviews, newest first, and how many there are.
fn reviews_of(
    db: &Db,
    product_id: u64,
    offset: usize,
    limit: usize,
) -> StoreResult<(Vec<Review>, u64)> {
    let ids = db.children(REVIEWS_BY_PRODUCT, product_id, true)?;
    let mut page = Vec::new();
    for id in ids.iter().skip(offset).take(limit) {
        if let Some(r) = db.get::<Review>(*id)? {
            page.push(r);
        }
    }
    Ok((page, ids.len() as u64))
}

/// Writes a new review and adds its rating; a second review by the same author is a conflict.
async fn insert_review(db: &Db, review: &Review) -> StoreResult<()> {
    let key = author_key(review.user_id, review.product_id);
    db.write(|tx| {
        if tx.unique_get(REVIEWS_BY_AUTHOR, &key)?.is_some() {
            return abort(StoreError::Conflict(
                "You have reviewed this product already".into(),
            ));
        }
        tx.claim_unique(REVIEWS_BY_AUTHOR, &key, review.id, "Review")?;
        tx.link(REVIEWS_BY_PRODUCT, review.product_id, review.id)?;
        tx.put(review.id, review)?;
        store::change_rating(tx, review.product_id, i64::from(review.rating), 1)
    })
    .await
}

/// Changes an author's review of a product, keeping the product's rating in step.
async fn edit_review(
    db: &Db,
    user_id: u64,
    product_id: u64,
    change: &ReviewIn,
    now: i64,
) -> StoreResult<Review> {
    db.write(|tx| {
        let Some(id) = tx.unique_get(REVIEWS_BY_AUTHOR, &author_key(user_id, product_id))? else {
            return abort(StoreError::NotFound(
                "You have not reviewed this product".into(),
            ));
        };
        let Some(mut r) = tx.get::<Review>(id)? else {
            return abort(StoreError::NotFound("Review not found".into()));
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
        tx.put(id, &r)?;
        store::change_rating(tx, product_id, i64::from(r.rating) - old_rating, 0)?;
        Ok(r)
    })
    .await
}

async fn remove_review(db: &Db, review: &Review) -> StoreResult<()> {
    db.write(|tx| {
        tx.remove::<Review>(review.id)?;
        tx.unlink(REVIEWS_BY_PRODUCT, review.product_id, review.id)?;
        tx.release_unique(
            REVIEWS_BY_AUTHOR,
            &author_key(review.user_id, review.product_id),
        )?;
        store::change_rating(tx, review.product_id, -i64::from(review.rating), -1)
    })
    .await
}

/// Deletes a review: its author or an admin (another customer's review is a 404).
#[openapi(tag = "Reviews")]
#[delete("/reviews/<review_id>")]
async fn delete_review(
    state: &State<AppState>,
    user: CurrentUser,
    review_id: u64,
) -> ApiResult<NoContent> {
    let review = review(&state.db, review_id)?
        .filter(|r| r.user_id == user.user.id || user.user.is_admin)
        .ok_or_else(|| ApiError::NotFound("Review not found".into()))?;
    remove_review(&state.db, &review).await?;
    Ok(NoContent)
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: list_reviews, create_review, update_my_review, delete_review]
}
