//! `/api/orders`: the user's orders, cancellation, and the admin list (checkout is its own
//! flow, in `checkout/`); and
//! `/api/shippings/status`: an order's shipping status, which an admin moves forward or
//! cancels (cancelling the order with it).

use rocket::serde::json::Json;
use rocket::{get, patch, put, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::account::guard::{AdminUser, CurrentUser};
use crate::db::Backend;
use crate::http::openapi;
use crate::http::pagination::once;
use crate::http::{schema, ApiError, ApiJson, ApiResult, AppState, FieldError, Page, PageQuery};
use crate::mail;
use crate::order::model::*;
use crate::order::store;
use crate::shipping::model::{ShipState, ShippingWithHistory, StatusIn};

async fn order_out(db: &Backend, order: &Order) -> ApiResult<OrderOut> {
    let payment = crate::payment::store::payment(db, order.payment_id)
        .await?
        .ok_or_else(|| ApiError::Internal(format!("order {} has no payment", order.id)))?;
    let shipping = crate::shipping::store::shipping(db, order.id).await?;
    Ok(OrderOut::new(order, &payment, shipping.as_ref()))
}

/// The user's orders, newest first.
#[openapi(tag = "Orders")]
#[get("/?<page..>")]
async fn list_orders(
    state: &State<AppState>,
    user: CurrentUser,
    page: PageQuery,
) -> ApiResult<Json<Page<OrderOut>>> {
    let p = page.checked()?;
    let ids = store::user_order_ids(&state.db, user.user.id).await?;
    let mut items = Vec::new();
    for id in ids.iter().skip(p.offset()).take(p.limit as usize) {
        if let Some(o) = store::order(&state.db, *id).await? {
            items.push(order_out(&state.db, &o).await?);
        }
    }
    Ok(Json(p.page_of(items, ids.len() as u64)))
}

/// One order; another user's is a 404 (admins may read any).
#[openapi(tag = "Orders")]
#[get("/<order_id>")]
async fn get_order(
    state: &State<AppState>,
    user: CurrentUser,
    order_id: u64,
) -> ApiResult<Json<OrderOut>> {
    let o = user.mine_or_admin(store::order(&state.db, order_id).await?)?;
    Ok(Json(order_out(&state.db, &o).await?))
}

/// Cancels the user's order while shipping is `pending` or `processing`: stock returned,
/// payment `refunded`, shipping `cancelled`. Otherwise (shipped, cancelled, failed
/// payment) a 409.
#[openapi(tag = "Orders")]
#[patch("/cancel/<order_id>")]
async fn cancel_order(
    state: &State<AppState>,
    user: CurrentUser,
    order_id: u64,
) -> ApiResult<Json<OrderOut>> {
    user.mine(store::order(&state.db, order_id).await?)?;
    let o = store::cancel(&state.db, order_id, state.clock.now()).await?;
    Ok(Json(order_out(&state.db, &o).await?))
}

/// Query of the admin order list.
#[derive(Debug, Default, rocket::form::FromForm, schemars::JsonSchema)]
pub struct AdminOrdersQuery {
    /// `payment_failed`, `confirmed` or `cancelled`; repeat to match any.
    #[field(default = Vec::new())]
    #[schemars(schema_with = "status_schema")]
    pub status: Vec<String>,
    /// `pending`, `processing`, `shipped`, `delivered` or `cancelled`; repeat to match any.
    #[field(default = Vec::new())]
    #[schemars(schema_with = "shipping_status_schema")]
    pub shipping_status: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::Id>")]
    pub user_id: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageNumber>")]
    pub page: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageSize>")]
    pub limit: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageSize>")]
    pub size: Vec<String>,
}

const ORDER_STATUSES: [&str; 3] = ["payment_failed", "confirmed", "cancelled"];
const SHIPPING_STATUSES: [&str; 5] = ["pending", "processing", "shipped", "delivered", "cancelled"];

fn status_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    schema::optional(schema::strings(schema::one_of(&ORDER_STATUSES)))
}

fn shipping_status_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    schema::optional(schema::strings(schema::one_of(&SHIPPING_STATUSES)))
}

/// Admin: all orders, newest first, filtered by `status`, `shipping_status`, `user_id`.
#[openapi(tag = "Orders admin")]
#[get("/admin/all?<query..>")]
async fn admin_orders(
    state: &State<AppState>,
    _admin: AdminUser,
    query: AdminOrdersQuery,
) -> ApiResult<Json<Page<OrderOut>>> {
    let mut errors = Vec::new();
    let p = PageQuery {
        page: query.page.clone(),
        limit: query.limit.clone(),
        size: query.size.clone(),
    }
    .parse(&mut errors);
    let parse_all = |name: &str, values: &[String], errors: &mut Vec<FieldError>| -> Vec<String> {
        values
            .iter()
            .filter(|v| {
                let ok = match name {
                    "status" => ORDER_STATUSES.contains(&v.as_str()),
                    _ => SHIPPING_STATUSES.contains(&v.as_str()),
                };
                if !ok {
                    errors.push(FieldError::query(name, format!("Unknown value {v}")));
                }
                ok
            })
            .cloned()
            .collect()
    };
    let statuses = parse_all("status", &query.status, &mut errors);
    let ships = parse_all("shipping_status", &query.shipping_status, &mut errors);
    for u in &query.user_id {
        match u.parse::<u64>() {
            Ok(id) if id <= schema::MAX_ID => {}
            Ok(_) => errors.push(FieldError::new(
                "query",
                "user_id",
                format!("Input should be at most {}", schema::MAX_ID),
                "value_error",
            )),
            Err(_) => errors.push(FieldError::new(
                "query",
                "user_id",
                "Input should be a valid integer",
                "int_parsing",
            )),
        }
    }
    let user_id = once("user_id", &query.user_id, &mut errors).and_then(|u| u.parse::<u64>().ok());
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let db = &state.db;
    let orders = match user_id {
        Some(u) => {
            let mut v = Vec::new();
            for id in store::user_order_ids(db, u).await? {
                if let Some(o) = store::order(db, id).await? {
                    v.push(o);
                }
            }
            v
        }
        None => store::all_orders(db).await?,
    };
    let mut matching = Vec::new();
    for o in orders {
        if !statuses.is_empty() && !statuses.iter().any(|s| s == o.status.as_str()) {
            continue;
        }
        if !ships.is_empty() {
            let ship = crate::shipping::store::shipping(db, o.id)
                .await?
                .map(|s| s.status.as_str());
            if !ship.is_some_and(|s| ships.iter().any(|x| x == s)) {
                continue;
            }
        }
        matching.push(o);
    }
    let total = matching.len() as u64;
    let mut items = Vec::new();
    for o in matching.iter().skip(p.offset()).take(p.limit as usize) {
        items.push(order_out(db, o).await?);
    }
    Ok(Json(p.page_of(items, total)))
}

/// An order's shipping status with its history (oldest first). An order whose payment
/// failed has none: 404.
#[openapi(tag = "Shipping")]
#[get("/status/<order_id>")]
async fn get_status(
    state: &State<AppState>,
    user: CurrentUser,
    order_id: u64,
) -> ApiResult<Json<ShippingWithHistory>> {
    user.mine_or_admin(store::order(&state.db, order_id).await?)?;
    let s = crate::shipping::store::shipping(&state.db, order_id)
        .await?
        .ok_or_else(|| ApiError::NotFound("This order has no shipping status".into()))?;
    Ok(Json(ShippingWithHistory::from(&s)))
}

async fn set_status(
    state: &AppState,
    order_id: u64,
    to: ShipState,
) -> ApiResult<Json<ShippingWithHistory>> {
    let now = state.clock.now();
    let (s, changed) = store::set_shipping(&state.db, order_id, to, now).await?;
    if changed {
        if let Some(o) = store::order(&state.db, order_id).await? {
            shipping_mail(state, &o, to, now).await;
        }
    }
    Ok(Json(ShippingWithHistory::from(&s)))
}

/// Sends the mail for a shipping change; a failure to record it does not undo the change.
async fn shipping_mail(state: &AppState, order: &Order, to: ShipState, now: i64) {
    let Ok(Some(user)) = crate::account::store::user(&state.db, order.user_id).await else {
        return;
    };
    let letter = mail::shipping_change(&state.config.shop_name, &user.name, order.id, to.as_str());
    if let Err(e) = mail::send(state, &user.email, letter, None, now).await {
        tracing::warn!("order {} shipping mail not recorded: {e}", order.id);
    }
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
    let (routes, mut spec) =
        openapi_get_routes_spec![settings: list_orders, get_order, cancel_order, admin_orders];
    openapi::answers(
        &mut spec,
        &[(
            "patch",
            "/cancel/{order_id}",
            409,
            "Shipped, delivered or cancelled already, or its payment failed",
        )],
    );
    (routes, spec)
}

/// The shipping status routes, mounted under `/api/shippings`.
pub fn status_routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) =
        openapi_get_routes_spec![settings: get_status, put_status, patch_status];
    const NOT_THAT_WAY: &str = "A step backwards or out of order, or an order whose payment failed";
    openapi::answers(
        &mut spec,
        &[
            ("put", "/status/{order_id}", 409, NOT_THAT_WAY),
            ("patch", "/status/{order_id}", 409, NOT_THAT_WAY),
        ],
    );
    (routes, spec)
}
