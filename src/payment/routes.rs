//! `/api/payments`: the logged-in user's payments.

use rocket::serde::json::Json;
use rocket::{get, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::account::guard::CurrentUser;
use crate::http::{ApiResult, AppState, Page, PageQuery};
use crate::payment::model::PaymentOut;
use crate::payment::store;

/// The user's payments, newest first.
#[openapi(tag = "Payments")]
#[get("/?<page..>")]
async fn list_payments(
    state: &State<AppState>,
    user: CurrentUser,
    page: PageQuery,
) -> ApiResult<Json<Page<PaymentOut>>> {
    let pagination = page.checked()?;
    let (payments, total) = store::user_payments(
        &state.db,
        user.user.id,
        pagination.offset(),
        pagination.limit as usize,
    )
    .await?;
    let items = payments.iter().map(PaymentOut::from).collect();
    Ok(Json(pagination.page_of(items, total)))
}

/// One payment; another user's is a 404 (admins may read any).
#[openapi(tag = "Payments")]
#[get("/<payment_id>")]
async fn get_payment(
    state: &State<AppState>,
    user: CurrentUser,
    payment_id: u64,
) -> ApiResult<Json<PaymentOut>> {
    let p = user.mine_or_admin(store::payment(&state.db, payment_id).await?)?;
    Ok(Json(PaymentOut::from(&p)))
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: list_payments, get_payment]
}
