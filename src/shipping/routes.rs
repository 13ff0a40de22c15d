//! `/api/shippings`: the user's addresses and each order's shipping status.

use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, put, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::core::auth::{AdminUser, CurrentUser};
use crate::core::time::now_micros;
use crate::core::{ApiError, ApiJson, ApiResult};
use crate::db::StoreError;
use crate::order;
use crate::shipping::store;
use crate::shipping::*;
use crate::AppState;

fn own_address(state: &AppState, user: &CurrentUser, id: u64) -> ApiResult<Address> {
    store::address(&state.db, id)?
        .filter(|a| a.user_id == user.user.id || user.user.is_admin)
        .ok_or_else(|| ApiError::NotFound("Address not found".into()))
}

/// Adds an address (`pin_code` is accepted for `postal_code`).
#[openapi(tag = "Shipping")]
#[post("/addresses", data = "<body>")]
async fn create_address(
    state: &State<AppState>,
    user: CurrentUser,
    body: ApiJson<AddressIn>,
) -> ApiResult<Created<Json<AddressOut>>> {
    let fields = body.apply(None).map_err(ApiError::Validation)?;
    let a = store::create_address(&state.db, user.user.id, fields).await?;
    Ok(Created::new(format!("/api/shippings/addresses/{}", a.id)).body(Json(AddressOut::from(&a))))
}

/// The user's addresses.
#[openapi(tag = "Shipping")]
#[get("/addresses")]
fn list_addresses(state: &State<AppState>, user: CurrentUser) -> ApiResult<Json<Vec<AddressOut>>> {
    Ok(Json(
        store::addresses(&state.db, user.user.id)?
            .iter()
            .map(AddressOut::from)
            .collect(),
    ))
}

/// One address; another user's is a 404 (admins may read any).
#[openapi(tag = "Shipping")]
#[get("/addresses/<address_id>")]
fn get_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
) -> ApiResult<Json<AddressOut>> {
    Ok(Json(AddressOut::from(&own_address(
        state, &user, address_id,
    )?)))
}

async fn update(
    state: &AppState,
    user: &CurrentUser,
    address_id: u64,
    body: &AddressIn,
    partial: bool,
) -> ApiResult<Json<AddressOut>> {
    store::address(&state.db, address_id)?
        .filter(|a| a.user_id == user.user.id)
        .ok_or_else(|| ApiError::NotFound("Address not found".into()))?;
    let a = store::update_address(&state.db, address_id, |old| {
        body.apply(partial.then_some(old)).map_err(|errors| {
            StoreError::Invalid(
                errors
                    .into_iter()
                    .map(|e| {
                        format!(
                            "{}: {}",
                            e.loc.last().and_then(|l| l.as_str()).unwrap_or(""),
                            e.msg
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            )
        })
    })
    .await?;
    Ok(Json(AddressOut::from(&a)))
}

/// Replaces an address (every required field).
#[openapi(tag = "Shipping")]
#[put("/addresses/<address_id>", data = "<body>")]
async fn replace_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
    body: ApiJson<AddressIn>,
) -> ApiResult<Json<AddressOut>> {
    body.apply(None).map_err(ApiError::Validation)?;
    update(state, &user, address_id, &body, false).await
}

/// Changes some fields of an address.
#[openapi(tag = "Shipping")]
#[patch("/addresses/<address_id>", data = "<body>")]
async fn patch_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
    body: ApiJson<AddressIn>,
) -> ApiResult<Json<AddressOut>> {
    update(state, &user, address_id, &body, true).await
}

/// Deletes an address; orders keep their copy.
#[openapi(tag = "Shipping")]
#[delete("/addresses/<address_id>")]
async fn delete_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
) -> ApiResult<NoContent> {
    store::address(&state.db, address_id)?
        .filter(|a| a.user_id == user.user.id)
        .ok_or_else(|| ApiError::NotFound("Address not found".into()))?;
    store::delete_address(&state.db, address_id).await?;
    Ok(NoContent)
}

/// An order's shipping status with its history (oldest first). An order whose payment
/// failed has none: 404.
#[openapi(tag = "Shipping")]
#[get("/status/<order_id>")]
fn get_status(
    state: &State<AppState>,
    user: CurrentUser,
    order_id: u64,
) -> ApiResult<Json<ShippingWithHistory>> {
    order::store::order(&state.db, order_id)?
        .filter(|o| o.user_id == user.user.id || user.user.is_admin)
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    let s = store::shipping(&state.db, order_id)?
        .ok_or_else(|| ApiError::NotFound("This order has no shipping status".into()))?;
    Ok(Json(ShippingWithHistory::from(&s)))
}

async fn set_status(
    state: &AppState,
    order_id: u64,
    to: ShipState,
) -> ApiResult<Json<ShippingWithHistory>> {
    let (s, changed) = order::store::set_shipping(&state.db, order_id, to, now_micros()).await?;
    if changed {
        if let Some(o) = order::store::order(&state.db, order_id)? {
            order::routes::shipping_mail(state, &o, to).await;
        }
    }
    Ok(Json(ShippingWithHistory::from(&s)))
}

/// Admin: moves the shipping status forward along pending → processing → shipped →
/// delivered (steps may be skipped). The current status again changes nothing (200).
/// `cancelled` only from pending or processing, and it cancels the order. Anything else,
/// or an order whose payment failed: 409.
#[openapi(tag = "Shipping admin")]
#[put("/status/<order_id>", data = "<body>")]
async fn put_status(
    state: &State<AppState>,
    _admin: AdminUser,
    order_id: u64,
    body: ApiJson<StatusIn>,
) -> ApiResult<Json<ShippingWithHistory>> {
    set_status(state, order_id, body.status).await
}

/// Admin: same as PUT.
#[openapi(tag = "Shipping admin")]
#[patch("/status/<order_id>", data = "<body>")]
async fn patch_status(
    state: &State<AppState>,
    _admin: AdminUser,
    order_id: u64,
    body: ApiJson<StatusIn>,
) -> ApiResult<Json<ShippingWithHistory>> {
    set_status(state, order_id, body.status).await
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings:
        create_address, list_addresses, get_address, replace_address, patch_address,
        delete_address, get_status, put_status, patch_status
    ]
}
