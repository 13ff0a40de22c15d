//! `/api/shippings/addresses`: the user's addresses. (The shipping status routes live
//! with orders, since cancelling one cancels its order.)

use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, put, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::account::guard::CurrentUser;
use crate::http::{openapi, ApiError, ApiJson, ApiResult, AppState};
use crate::shipping::model::*;
use crate::shipping::store;

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
async fn list_addresses(
    state: &State<AppState>,
    user: CurrentUser,
) -> ApiResult<Json<Vec<AddressOut>>> {
    Ok(Json(
        store::addresses(&state.db, user.user.id)
            .await?
            .iter()
            .map(AddressOut::from)
            .collect(),
    ))
}

/// One address; another user's is a 404 (admins may read any).
#[openapi(tag = "Shipping")]
#[get("/addresses/<address_id>")]
async fn get_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
) -> ApiResult<Json<AddressOut>> {
    let a = user.mine_or_admin(store::address(&state.db, address_id).await?)?;
    Ok(Json(AddressOut::from(&a)))
}

/// How a body changes an address: PUT replaces every field, PATCH only those it sends.
#[derive(Clone, Copy)]
enum Edit {
    Replace,
    Patch,
}

async fn update(
    state: &AppState,
    user: &CurrentUser,
    address_id: u64,
    body: &AddressIn,
    edit: Edit,
) -> ApiResult<Json<AddressOut>> {
    user.mine(store::address(&state.db, address_id).await?)?;
    let a = store::update_address(&state.db, address_id, |old| {
        let base = match edit {
            Edit::Replace => None,
            Edit::Patch => Some(old),
        };
        body.apply(base).map_err(|errors| {
            let said: Vec<String> = errors
                .into_iter()
                .map(|e| {
                    let field = e.loc.last().and_then(|l| l.as_str()).unwrap_or("");
                    format!("{field}: {}", e.msg)
                })
                .collect();
            ApiError::Unprocessable(said.join("; "))
        })
    })
    .await??;
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
    update(state, &user, address_id, &body, Edit::Replace).await
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
    update(state, &user, address_id, &body, Edit::Patch).await
}

/// Deletes an address; orders keep their copy.
#[openapi(tag = "Shipping")]
#[delete("/addresses/<address_id>")]
async fn delete_address(
    state: &State<AppState>,
    user: CurrentUser,
    address_id: u64,
) -> ApiResult<NoContent> {
    user.mine(store::address(&state.db, address_id).await?)?;
    store::delete_address(&state.db, address_id).await?;
    Ok(NoContent)
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) = openapi_get_routes_spec![settings:
        create_address, list_addresses, get_address, replace_address, patch_address,
        delete_address
    ];
    openapi::require_body_fields(&mut spec, "post", "/addresses", &ADDRESS_REQUIRED);
    openapi::require_body_fields(
        &mut spec,
        "put",
        "/addresses/{address_id}",
        &ADDRESS_REQUIRED,
    );
    (routes, spec)
}
