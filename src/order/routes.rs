//! `/api/orders`: checkout, the user's orders, cancellation, and the admin list; and
//! `/api/shippings/status`: an order's shipping status, which an admin moves forward or
//! cancels (cancelling the order with it).

use rocket::data::{Data, FromData};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::serde::json::Json;
use rocket::{get, patch, post, put, Request, Response, State};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{OpenApi, Parameter, ParameterValue, RequestBody, Responses};
use rocket_okapi::request::{OpenApiFromData, OpenApiFromRequest, RequestHeaderInput};
use rocket_okapi::response::OpenApiResponderInner;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use serde_json::Value;
use std::io::Cursor;

use crate::account::guard::{AdminUser, CurrentUser};
use crate::core::money::Money;
use crate::db::{Db, StoreError};
use crate::http::error::document_error;
use crate::http::json::{from_value, read_json_value};
use crate::http::{ApiError, ApiJson, ApiResult, AppState, FieldError, Page, PageQuery};
use crate::mail;
use crate::order::model::*;
use crate::order::store::{self, CheckoutOutcome, CheckoutPlan, Claim};
use crate::payment::model::{MockGateway, PaymentGateway, PaymentOut, PAYMENTS};
use crate::shipping::model::{ShipState, ShippingOut, ShippingWithHistory, StatusIn, SHIPPING};

pub fn order_out(db: &Db, order: &Order) -> ApiResult<OrderOut> {
    let payment = crate::payment::store::payment(db, order.payment_id)?
        .ok_or_else(|| ApiError::Internal(format!("order {} has no payment", order.id)))?;
    let shipping = crate::shipping::store::shipping(db, order.id)?;
    Ok(OrderOut {
        id: order.id,
        user_id: order.user_id,
        status: order.status,
        total_price: Money(order.total_price),
        created_at: crate::core::time::rfc3339(order.created_at),
        updated_at: crate::core::time::rfc3339(order.updated_at),
        shipping_address: order.address.clone(),
        items: order
            .items
            .iter()
            .map(|i| OrderItemOut {
                id: i.id,
                product_id: i.product_id,
                title: i.title.clone(),
                quantity: i.quantity,
                price: Money(i.price),
                total: Money(i.price * i.quantity),
            })
            .collect(),
        payment: PaymentOut::from(&payment),
        shipping_status: shipping.as_ref().map(ShippingOut::from),
    })
}

/// The `Idempotency-Key` header, if sent (at most 255 visible characters).
pub struct IdempotencyKey(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IdempotencyKey {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.headers().get_one("Idempotency-Key") {
            None => Outcome::Success(IdempotencyKey(None)),
            Some(k)
                if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Outcome::Success(IdempotencyKey(Some(k.to_string())))
            }
            Some(_) => {
                let e = ApiError::validation(FieldError::new(
                    "header",
                    "Idempotency-Key",
                    "1 to 255 visible ASCII characters",
                    "value_error",
                ));
                Outcome::Error((e.stash(req), ()))
            }
        }
    }
}

impl<'r> OpenApiFromRequest<'r> for IdempotencyKey {
    fn from_request_input(
        _gen: &mut OpenApiGenerator,
        _name: String,
        _required: bool,
    ) -> rocket_okapi::Result<RequestHeaderInput> {
        Ok(RequestHeaderInput::Parameter(Parameter {
            name: "Idempotency-Key".into(),
            location: "header".into(),
            description: Some("Retry safely: the same key from the same user within 24 hours replays the first answer (with `Idempotent-Replayed: true`); with another body it is a 422; while the first is still running, a 409.".into()),
            required: false,
            deprecated: false,
            allow_empty_value: false,
            value: ParameterValue::Schema {
                style: None,
                explode: None,
                allow_reserved: false,
                schema: schemars::schema::SchemaObject {
                    instance_type: Some(schemars::schema::InstanceType::String.into()),
                    ..Default::default()
                },
                example: None,
                examples: None,
            },
            extensions: Default::default(),
        }))
    }
}

/// The checkout body, parsed, with the JSON it came as (to compare retries).
pub struct CheckoutBody {
    parsed: CheckoutIn,
    canonical: String,
}

#[rocket::async_trait]
impl<'r> FromData<'r> for CheckoutBody {
    type Error = ();
    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> rocket::data::Outcome<'r, Self> {
        let result = match read_json_value(req, data).await {
            Ok(value) => {
                let canonical = value.to_string();
                from_value::<CheckoutIn>(value).map(|parsed| CheckoutBody { parsed, canonical })
            }
            Err(e) => Err(e),
        };
        match result {
            Ok(b) => rocket::data::Outcome::Success(b),
            Err(e) => rocket::data::Outcome::Error((e.stash(req), ())),
        }
    }
}

impl<'r> OpenApiFromData<'r> for CheckoutBody {
    fn request_body(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<RequestBody> {
        <ApiJson<CheckoutIn> as OpenApiFromData>::request_body(gen)
    }
}

/// A stored or fresh checkout answer.
pub struct Answer {
    status: Status,
    body: String,
    replayed: bool,
}

impl<'r> rocket::response::Responder<'r, 'static> for Answer {
    fn respond_to(self, _req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = Response::build();
        res.status(self.status)
            .header(ContentType::JSON)
            .sized_body(self.body.len(), Cursor::new(self.body));
        if self.replayed {
            res.header(Header::new("Idempotent-Replayed", "true"));
        }
        res.ok()
    }
}

impl OpenApiResponderInner for Answer {
    fn responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = <Json<OrderOut> as OpenApiResponderInner>::responses(gen)?;
        if let Some(ok) = responses.responses.remove("200") {
            responses.responses.insert("201".into(), ok);
        }
        document_error(gen, &mut responses, 400, "The cart is empty");
        document_error(gen, &mut responses, 402, "Payment failed: `{detail, order_id, payment_id}`; the order is kept as `payment_failed`");
        document_error(gen, &mut responses, 404, "No such address of yours");
        document_error(gen, &mut responses, 409, "A line beyond stock, an amount that differs from the total, or the same key still running");
        document_error(
            gen,
            &mut responses,
            422,
            "Invalid field, or the same key with another body",
        );
        Ok(responses)
    }
}

async fn run_checkout(
    state: &AppState,
    user: &CurrentUser,
    body: &CheckoutIn,
) -> Result<(Status, Value), ApiError> {
    let db = &state.db;
    let cart = crate::cart::store::cart(db, user.user.id)?;
    let lines = cart.lines.len().max(1) as u64 + 4;
    let gateway = MockGateway {
        failure_rate: state.config.payments.failure_rate,
    };
    let now = crate::core::time::now_micros();
    let plan = CheckoutPlan {
        user_id: user.user.id,
        address_id: body.shipping_address_id,
        amount: body.amount.and_then(|a| a.to_cents().ok()),
        order_id: db.next_id(ORDERS)?,
        payment_id: db.next_id(PAYMENTS)?,
        shipping_id: db.next_id(SHIPPING)?,
        first_item_id: db.next_ids(ORDER_ITEMS, lines)?,
        item_ids: lines,
        gateway: gateway.name(),
        charge: gateway.charge(0, body.simulate_success.unwrap_or(true)),
        now,
        mail: (
            db.next_id(crate::mail::model::OUTBOX)?,
            user.user.email.clone(),
            user.user.name.clone(),
            state.config.shop_name.clone(),
            state.config.currency.clone(),
        ),
    };
    let outcome = match store::checkout(db, &plan).await {
        Ok(o) => o,
        Err(e) => {
            if let StoreError::OutOfStock { product_id, .. } = e {
                state.metrics.count("stock_outs", 1);
                tracing::info!(product_id, "checkout refused: out of stock");
            }
            return Err(e.into());
        }
    };
    match outcome {
        CheckoutOutcome::Confirmed(order, _, _, mail) => {
            state.metrics.count("orders", 1);
            mail::log_sent(&state.config, &mail);
            let out = order_out(db, &order)?;
            Ok((
                Status::Created,
                serde_json::to_value(out).map_err(|e| ApiError::Internal(e.to_string()))?,
            ))
        }
        CheckoutOutcome::PaymentFailed(order, payment) => {
            state.metrics.count("payments_failed", 1);
            let e = ApiError::PaymentRequired {
                detail: "Payment failed; your cart is unchanged".into(),
                order_id: order.id,
                payment_id: payment.id,
            };
            Ok((Status::PaymentRequired, e.body("")))
        }
    }
}

/// Checks out the cart in one transaction: every line against stock, the stock taken,
/// the order (with copies of titles, prices and the address), its payment and shipping
/// status written, the cart emptied, and only then the answer. Checked in this order:
/// empty cart 400; unknown or another user's address 404; a line beyond stock 409 naming
/// the product; `amount` different from the total 409; then the payment (failed: 402,
/// the order kept as `payment_failed`, stock and cart untouched).
#[openapi(tag = "Orders")]
#[post("/checkout", data = "<body>")]
async fn checkout(
    state: &State<AppState>,
    user: CurrentUser,
    key: IdempotencyKey,
    body: CheckoutBody,
) -> ApiResult<Answer> {
    let db = &state.db;
    let key = key.0;
    if let Some(k) = &key {
        match store::claim_key(db, user.user.id, k, &body.canonical, state.clock.now()).await? {
            Claim::Fresh => {}
            Claim::Replay { status, body } => {
                return Ok(Answer {
                    status: Status::from_code(status).unwrap_or(Status::Ok),
                    body,
                    replayed: true,
                })
            }
            Claim::Mismatch => {
                return Err(ApiError::Unprocessable(
                    "This Idempotency-Key was used with another request body".into(),
                ))
            }
            Claim::Running => {
                return Err(ApiError::Conflict(
                    "A request with this Idempotency-Key is still running".into(),
                ))
            }
        }
    }
    let result = run_checkout(state, &user, &body.parsed).await;
    let (status, value) = match result {
        Ok(r) => r,
        Err(e) => {
            if let Some(k) = &key {
                let keep = !matches!(e.status().code, 422 | 500..=599);
                let answer = keep.then(|| (e.status().code, e.body("").to_string()));
                store::finish_key(db, user.user.id, k, answer).await?;
            }
            return Err(e);
        }
    };
    let text = value.to_string();
    if let Some(k) = &key {
        store::finish_key(db, user.user.id, k, Some((status.code, text.clone()))).await?;
    }
    Ok(Answer {
        status,
        body: text,
        replayed: false,
    })
}

/// The user's orders, newest first.
#[openapi(tag = "Orders")]
#[get("/?<page..>")]
fn list_orders(
    state: &State<AppState>,
    user: CurrentUser,
    page: PageQuery,
) -> ApiResult<Json<Page<OrderOut>>> {
    let p = page.checked()?;
    let ids = store::user_order_ids(&state.db, user.user.id)?;
    let mut items = Vec::new();
    for id in ids.iter().skip(p.offset()).take(p.limit as usize) {
        if let Some(o) = store::order(&state.db, *id)? {
            items.push(order_out(&state.db, &o)?);
        }
    }
    Ok(Json(p.page_of(items, ids.len() as u64)))
}

fn visible_order(state: &AppState, user: &CurrentUser, order_id: u64) -> ApiResult<Order> {
    store::order(&state.db, order_id)?
        .filter(|o| o.user_id == user.user.id || user.user.is_admin)
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))
}

/// One order; another user's is a 404 (admins may read any).
#[openapi(tag = "Orders")]
#[get("/<order_id>")]
fn get_order(
    state: &State<AppState>,
    user: CurrentUser,
    order_id: u64,
) -> ApiResult<Json<OrderOut>> {
    let o = visible_order(state, &user, order_id)?;
    Ok(Json(order_out(&state.db, &o)?))
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
    store::order(&state.db, order_id)?
        .filter(|o| o.user_id == user.user.id)
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    let o = store::cancel(&state.db, order_id, crate::core::time::now_micros()).await?;
    Ok(Json(order_out(&state.db, &o)?))
}

/// Query of the admin order list.
#[derive(Debug, Default, rocket::form::FromForm, schemars::JsonSchema)]
pub struct AdminOrdersQuery {
    /// `payment_failed`, `confirmed` or `cancelled`; repeat to match any.
    #[field(default = Vec::new())]
    pub status: Vec<String>,
    /// `pending`, `processing`, `shipped`, `delivered` or `cancelled`; repeat to match any.
    #[field(default = Vec::new())]
    pub shipping_status: Vec<String>,
    #[schemars(with = "Option<u64>")]
    pub user_id: Option<String>,
    #[schemars(with = "Option<u32>")]
    pub page: Option<String>,
    #[schemars(with = "Option<u32>")]
    pub limit: Option<String>,
    #[schemars(with = "Option<u32>")]
    pub size: Option<String>,
}

/// Admin: all orders, newest first, filtered by `status`, `shipping_status`, `user_id`.
#[openapi(tag = "Orders admin")]
#[get("/admin/all?<query..>")]
fn admin_orders(
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
                    "status" => ["payment_failed", "confirmed", "cancelled"].contains(&v.as_str()),
                    _ => ["pending", "processing", "shipped", "delivered", "cancelled"]
                        .contains(&v.as_str()),
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
    let user_id = match query.user_id.as_deref().map(|u| u.parse::<u64>()) {
        None => None,
        Some(Ok(u)) => Some(u),
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "query",
                "user_id",
                "Input should be a valid integer",
                "int_parsing",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let db = &state.db;
    let orders = match user_id {
        Some(u) => {
            let mut v = Vec::new();
            for id in store::user_order_ids(db, u)? {
                if let Some(o) = store::order(db, id)? {
                    v.push(o);
                }
            }
            v
        }
        None => store::all_orders(db)?,
    };
    let mut matching = Vec::new();
    for o in orders {
        if !statuses.is_empty() && !statuses.iter().any(|s| s == o.status.as_str()) {
            continue;
        }
        if !ships.is_empty() {
            let ship = crate::shipping::store::shipping(db, o.id)?.map(|s| s.status.as_str());
            if !ship.is_some_and(|s| ships.iter().any(|x| x == s)) {
                continue;
            }
        }
        matching.push(o);
    }
    let total = matching.len() as u64;
    let items = matching
        .iter()
        .skip(p.offset())
        .take(p.limit as usize)
        .map(|o| order_out(db, o))
        .collect::<ApiResult<Vec<_>>>()?;
    Ok(Json(p.page_of(items, total)))
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
    store::order(&state.db, order_id)?
        .filter(|o| o.user_id == user.user.id || user.user.is_admin)
        .ok_or_else(|| ApiError::NotFound("Order not found".into()))?;
    let s = crate::shipping::store::shipping(&state.db, order_id)?
        .ok_or_else(|| ApiError::NotFound("This order has no shipping status".into()))?;
    Ok(Json(ShippingWithHistory::from(&s)))
}

async fn set_status(
    state: &AppState,
    order_id: u64,
    to: ShipState,
) -> ApiResult<Json<ShippingWithHistory>> {
    let now = crate::core::time::now_micros();
    let (s, changed) = store::set_shipping(&state.db, order_id, to, now).await?;
    if changed {
        if let Some(o) = store::order(&state.db, order_id)? {
            shipping_mail(state, &o, to, now).await;
        }
    }
    Ok(Json(ShippingWithHistory::from(&s)))
}

/// Sends the mail for a shipping change; a failure to record it does not undo the change.
async fn shipping_mail(state: &AppState, order: &Order, to: ShipState, now: i64) {
    let Ok(Some(user)) = crate::account::store::user(&state.db, order.user_id) else {
        return;
    };
    let letter = mail::shipping_change(&state.config.shop_name, &user.name, order.id, to.as_str());
    if let Err(e) = mail::send(&state.db, &state.config, &user.email, letter, None, now).await {
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
    openapi_get_routes_spec![settings: checkout, list_orders, get_order, cancel_order, admin_orders]
}

/// The shipping status routes, mounted under `/api/shippings`.
pub fn status_routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: get_status, put_status, patch_status]
}
