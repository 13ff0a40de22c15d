//! `POST /api/orders/checkout`: the cart becomes an order in one transaction, and a
//! retry with the same `Idempotency-Key` gets the first answer again.

use rocket::data::{Data, FromData};
use rocket::http::{ContentType, Header, Status};
use rocket::request::{FromRequest, Outcome as Guard};
use rocket::serde::json::Json;
use rocket::{post, Request, Response, State};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{OpenApi, Parameter, ParameterValue, RequestBody, Responses};
use rocket_okapi::request::{OpenApiFromData, OpenApiFromRequest, RequestHeaderInput};
use rocket_okapi::response::OpenApiResponderInner;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use std::io::Cursor;

use crate::account::guard::CurrentUser;
use crate::checkout::model::{Answer, CheckoutIn};
use crate::checkout::store::{self, Checkout, Outcome, Plan, Retry};
use crate::db::StoreError;
use crate::http::error::document_error;
use crate::http::json::{from_value, read_json_value};
use crate::http::{ApiError, ApiJson, ApiResult, AppState, FieldError};
use crate::mail;
use crate::order::model::OrderOut;
use crate::payment::model::{MockGateway, PaymentGateway};

/// The `Idempotency-Key` header, if sent (at most 255 visible characters).
pub struct IdempotencyKey(Option<String>);

#[rocket::async_trait]
impl<'r> FromRequest<'r> for IdempotencyKey {
    type Error = ();
    async fn from_request(req: &'r Request<'_>) -> Guard<Self, ()> {
        match req.headers().get_one("Idempotency-Key") {
            None => Guard::Success(IdempotencyKey(None)),
            Some(k)
                if !k.is_empty() && k.len() <= 255 && k.bytes().all(|b| b.is_ascii_graphic()) =>
            {
                Guard::Success(IdempotencyKey(Some(k.to_string())))
            }
            Some(_) => {
                let e = ApiError::validation(FieldError::new(
                    "header",
                    "Idempotency-Key",
                    "1 to 255 visible ASCII characters",
                    "value_error",
                ));
                Guard::Error((e.stash(req), ()))
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
                schema: {
                    // What the guard above takes: 1 to 255 visible ASCII characters.
                    let mut s = schemars::schema::SchemaObject {
                        instance_type: Some(schemars::schema::InstanceType::String.into()),
                        ..Default::default()
                    };
                    s.string().min_length = Some(1);
                    s.string().max_length = Some(255);
                    s.string().pattern = Some("^[!-~]+$".into());
                    s
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

/// A checkout's answer, fresh or replayed.
pub struct Reply {
    answer: Answer,
    replayed: bool,
}

impl<'r> rocket::response::Responder<'r, 'static> for Reply {
    fn respond_to(self, _req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = Response::build();
        let body = self.answer.body;
        res.status(Status::from_code(self.answer.status).unwrap_or(Status::Ok))
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body));
        if self.replayed {
            res.header(Header::new("Idempotent-Replayed", "true"));
        }
        res.ok()
    }
}

impl OpenApiResponderInner for Reply {
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

/// What the client is told of a checkout's result: the order (201), the failed payment
/// (402), or why nothing was done, exactly as the error responder words it.
fn answer(result: &Result<Outcome, StoreError>) -> Answer {
    let (status, body) = match result {
        Ok(Outcome::Confirmed {
            order,
            payment,
            shipping,
            ..
        }) => {
            let out = OrderOut::new(order, payment, Some(shipping));
            let body = serde_json::to_value(out).unwrap_or_default();
            (Status::Created, body)
        }
        Ok(Outcome::PaymentFailed { order, payment }) => {
            let e = ApiError::PaymentRequired {
                detail: "Payment failed; your cart is unchanged".into(),
                order_id: order.id,
                payment_id: payment.id,
            };
            (e.status(), e.body(""))
        }
        Err(refused) => {
            let e = ApiError::from(refused.clone());
            (e.status(), e.body(""))
        }
    };
    Answer {
        status: status.code,
        body: body.to_string(),
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
) -> ApiResult<Reply> {
    let gateway = MockGateway {
        failure_rate: state.config.payments.failure_rate,
    };
    let fields = &body.parsed;
    let plan = Plan {
        user_id: user.user.id,
        address_id: fields.shipping_address_id,
        amount: fields.amount.and_then(|a| a.to_cents().ok()),
        gateway: gateway.name(),
        charge: gateway.charge(0, fields.simulate_success.unwrap_or(true)),
        now: state.clock.now(),
        email: user.user.email.clone(),
        name: user.user.name.clone(),
        shop: state.config.shop_name.clone(),
        currency: state.config.currency.clone(),
        retry: key.0.map(|key| Retry {
            key,
            request: body.canonical.clone(),
        }),
    };
    let (result, answer) = match store::checkout(&state.db, &plan, answer).await? {
        Checkout::Ran { result, answer } => (result, answer),
        Checkout::Replay(answer) => {
            return Ok(Reply {
                answer,
                replayed: true,
            })
        }
        Checkout::Mismatch => {
            return Err(ApiError::Unprocessable(
                "This Idempotency-Key was used with another request body".into(),
            ))
        }
    };
    match result {
        Ok(Outcome::Confirmed { order, mail, .. }) => {
            state.metrics.order_placed(order.total_price);
            mail::queued(state, &mail);
        }
        Ok(Outcome::PaymentFailed { .. }) => state.metrics.count("payments_failed", 1),
        Err(StoreError::OutOfStock { product_id, .. }) => {
            state.metrics.count("stock_outs", 1);
            tracing::info!(product_id, "checkout refused: out of stock");
        }
        Err(_) => {}
    }
    Ok(Reply {
        answer,
        replayed: false,
    })
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: checkout]
}
