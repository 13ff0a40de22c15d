//! `/api/products/.../reviews`: reviews of products, by customers with a confirmed order
//! of the product.

use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, post, put, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::account::guard::CurrentUser;
use crate::db::{Backend, StoreError};
use crate::http::{openapi, ApiError, ApiJson, ApiResult, AppState, Page, PageQuery};
use crate::product::model::Product;
use crate::review::model::*;
use crate::review::store;

async fn live_product(db: &Backend, id: u64) -> ApiResult<Product> {
    crate::product::store::product(db, id)
        .await?
        .filter(|p| p.archived_at.is_none())
        .ok_or_else(|| StoreError::NotFound("Product").into())
}

/// A product's reviews, newest first.
#[openapi(tag = "Reviews")]
#[get("/<product_id>/reviews?<page..>")]
async fn list_reviews(
    state: &State<AppState>,
    product_id: u64,
    page: PageQuery,
) -> ApiResult<Json<Page<ReviewOut>>> {
    let p = page.checked()?;
    live_product(&state.db, product_id).await?;
    let (reviews, total) =
        store::reviews_of(&state.db, product_id, p.offset(), p.limit as usize).await?;
    Ok(Json(p.page_of(
        reviews.iter().map(ReviewOut::from).collect(),
        total,
    )))
}

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
    live_product(db, product_id).await?;
    if !crate::order::store::has_confirmed_purchase(db, user.user.id, product_id).await? {
        return Err(ApiError::Forbidden(
            "Only customers with a confirmed order of this product may review it".into(),
        ));
    }
    let now = state.clock.now();
    let review = Review {
        id: 0,
        product_id,
        user_id: user.user.id,
        user_name: user.user.name.clone(),
        rating: body.rating as u8,
        title: body.title.clone().unwrap_or_default(),
        body: body.body.clone().unwrap_or_default(),
        created_at: now,
        updated_at: now,
    };
    let review = store::insert_review(db, review).await?;
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
    let now = state.clock.now();
    let review = store::edit_review(db, user.user.id, product_id, &body, now).await?;
    Ok(Json(ReviewOut::from(&review)))
}

/// Deletes a review: its author or an admin (another customer's review is a 404).
#[openapi(tag = "Reviews")]
#[delete("/reviews/<review_id>")]
async fn delete_review(
    state: &State<AppState>,
    user: CurrentUser,
    review_id: u64,
) -> ApiResult<NoContent> {
    let review = user.mine_or_admin(store::review(&state.db, review_id).await?)?;
    store::remove_review(&state.db, &review).await?;
    Ok(NoContent)
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) = openapi_get_routes_spec![settings:
        list_reviews, create_review, update_my_review, delete_review
    ];
    openapi::answers(
        &mut spec,
        &[
            (
                "post",
                "/{product_id}/reviews",
                403,
                "No confirmed order of this product, or a cross-site cookie request",
            ),
            (
                "post",
                "/{product_id}/reviews",
                409,
                "You have reviewed this product already",
            ),
        ],
    );
    (routes, spec)
}
