//! `/api/carts`: the logged-in user's cart.

use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use serde::Serialize;

use crate::account::guard::CurrentUser;
use crate::cart::model::{AddIn, CartItemOut, CartLine, CartOut};
use crate::cart::store;
use crate::core::money::Money;
use crate::db::{Backend, StoreError};
use crate::http::{openapi, ApiJson, ApiResult, AppState, Message};

async fn item_out(db: &Backend, line: &CartLine) -> ApiResult<Option<CartItemOut>> {
    let Some(p) = crate::product::store::product(db, line.product_id)
        .await?
        .filter(|p| p.archived_at.is_none())
    else {
        return Ok(None);
    };
    Ok(Some(CartItemOut {
        id: line.id,
        product_id: p.id,
        product_title: p.title.clone(),
        slug: p.slug.clone(),
        image_url: p.image_url(),
        quantity: line.quantity,
        price: Money(p.price),
        total: Money(p.price * line.quantity),
    }))
}

/// The cart with each line at the product's current price. Deleted products drop out.
#[openapi(tag = "Cart")]
#[get("/")]
async fn get_cart(state: &State<AppState>, user: CurrentUser) -> ApiResult<Json<CartOut>> {
    let cart = store::cart(&state.db, user.user.id).await?;
    let mut items = Vec::new();
    for line in &cart.lines {
        if let Some(item) = item_out(&state.db, line).await? {
            items.push(item);
        }
    }
    Ok(Json(CartOut {
        total_quantity: items.iter().map(|i| i.quantity).sum(),
        total_price: Money(items.iter().map(|i| i.total.0).sum()),
        items,
    }))
}

async fn line_out(state: &AppState, line: Option<CartLine>) -> ApiResult<CartItemOut> {
    let item = match line {
        Some(l) => item_out(&state.db, &l).await?,
        None => None,
    };
    item.ok_or_else(|| StoreError::NotFound("Product").into())
}

/// Adds a quantity of a product (to its line if there is one). More than in stock is a
/// 409; an unknown product a 404.
#[openapi(tag = "Cart")]
#[post("/add", data = "<body>")]
async fn add(
    state: &State<AppState>,
    user: CurrentUser,
    body: ApiJson<AddIn>,
) -> ApiResult<Created<Json<CartItemOut>>> {
    let line = store::add(&state.db, user.user.id, body.product_id, body.quantity).await?;
    Ok(Created::new("/api/carts").body(Json(line_out(state, line).await?)))
}

/// One more of a product (a new line with 1 if absent); beyond stock is a 409.
#[openapi(tag = "Cart")]
#[patch("/increase/<product_id>")]
async fn increase(
    state: &State<AppState>,
    user: CurrentUser,
    product_id: u64,
) -> ApiResult<Json<CartItemOut>> {
    let line = store::add(&state.db, user.user.id, product_id, 1).await?;
    Ok(Json(line_out(state, line).await?))
}

#[derive(Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DecreaseOut {
    Item(CartItemOut),
    Removed(Message),
}

/// One less of a product: the line, or `{message}` when it reached 0 and was removed. Not
/// in the cart: 404.
#[openapi(tag = "Cart")]
#[patch("/decrease/<product_id>")]
async fn decrease(
    state: &State<AppState>,
    user: CurrentUser,
    product_id: u64,
) -> ApiResult<Json<DecreaseOut>> {
    match store::decrease(&state.db, user.user.id, product_id).await? {
        Some(line) => Ok(Json(DecreaseOut::Item(line_out(state, Some(line)).await?))),
        None => Ok(Json(DecreaseOut::Removed(Message::new(
            "Item removed from cart",
        )))),
    }
}

/// Removes a line; another user's line is a 404.
#[openapi(tag = "Cart")]
#[delete("/delete/<item_id>")]
async fn delete_item(
    state: &State<AppState>,
    user: CurrentUser,
    item_id: u64,
) -> ApiResult<NoContent> {
    store::remove_line(&state.db, user.user.id, item_id).await?;
    Ok(NoContent)
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) =
        openapi_get_routes_spec![settings: get_cart, add, increase, decrease, delete_item];
    openapi::answers(
        &mut spec,
        &[
            ("post", "/add", 409, "More than is in stock"),
            (
                "patch",
                "/increase/{product_id}",
                409,
                "More than is in stock",
            ),
        ],
    );
    (routes, spec)
}
