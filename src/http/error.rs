//! The one error type of the API and the one place that turns it into a response.

use rocket::http::{ContentType, Header, Status};
use rocket::request::Request;
use rocket::response::{self, Responder, Response};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{MediaType, RefOr, Response as OaResponse, Responses};
use rocket_okapi::response::OpenApiResponderInner;
use schemars::JsonSchema;
use serde::Serialize;
use serde_json::json;
use std::io::Cursor;

use crate::core::error::{StoreError, Unique};
use crate::core::password::PasswordError;
use crate::http::request_id::RequestId;

/// One entry of a FastAPI-shaped validation error list.
#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct FieldError {
    /// Where the bad value is: `["body" | "query" | "path", field, ...]`.
    pub loc: Vec<serde_json::Value>,
    pub msg: String,
    #[serde(rename = "type")]
    pub kind: String,
}

impl FieldError {
    pub fn new(place: &str, field: &str, msg: impl Into<String>, kind: &str) -> Self {
        let mut loc = vec![json!(place)];
        if !field.is_empty() {
            loc.push(json!(field));
        }
        FieldError {
            loc,
            msg: msg.into(),
            kind: kind.to_string(),
        }
    }
    pub fn body(field: &str, msg: impl Into<String>) -> Self {
        Self::new("body", field, msg, "value_error")
    }
    pub fn query(field: &str, msg: impl Into<String>) -> Self {
        Self::new("query", field, msg, "value_error")
    }
}

/// The error body every failing route answers.
#[derive(Serialize, JsonSchema)]
pub struct ErrorBody {
    /// A human message, or for 422 validation errors the list of field errors.
    pub detail: serde_json::Value,
}

#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    BadRequest(String),
    Unauthorized(String),
    PaymentRequired {
        detail: String,
        order_id: u64,
        payment_id: u64,
    },
    Forbidden(String),
    NotFound(String),
    /// A path the routes serve, asked with another method: the `Allow` header lists them.
    MethodNotAllowed {
        allow: Vec<String>,
    },
    Conflict(String),
    PayloadTooLarge(String),
    UnsupportedMediaType(String),
    /// A 422 whose detail is a plain message.
    Unprocessable(String),
    /// A 422 with the FastAPI-shaped list of field errors.
    Validation(Vec<FieldError>),
    TooManyRequests {
        retry_after_secs: u64,
    },
    /// An internal fault: logged with the request id, never shown to the client.
    Internal(String),
    /// The database cannot write (see `UNWRITABLE`): the server is stopping to be
    /// restarted; logged once where it is detected, not per request.
    Unavailable,
}

/// What every request answers once the database could not write to disk.
pub const UNWRITABLE: &str = "the database could not write to disk; restarting";

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn status(&self) -> Status {
        match self {
            ApiError::BadRequest(_) => Status::BadRequest,
            ApiError::Unauthorized(_) => Status::Unauthorized,
            ApiError::PaymentRequired { .. } => Status::PaymentRequired,
            ApiError::Forbidden(_) => Status::Forbidden,
            ApiError::NotFound(_) => Status::NotFound,
            ApiError::MethodNotAllowed { .. } => Status::MethodNotAllowed,
            ApiError::Conflict(_) => Status::Conflict,
            ApiError::PayloadTooLarge(_) => Status::PayloadTooLarge,
            ApiError::UnsupportedMediaType(_) => Status::UnsupportedMediaType,
            ApiError::Unprocessable(_) | ApiError::Validation(_) => Status::UnprocessableEntity,
            ApiError::TooManyRequests { .. } => Status::TooManyRequests,
            ApiError::Internal(_) => Status::InternalServerError,
            ApiError::Unavailable => Status::ServiceUnavailable,
        }
    }

    pub fn validation(err: FieldError) -> Self {
        ApiError::Validation(vec![err])
    }

    /// The error for a status that no route produced itself (Rocket's own failures).
    pub fn from_status(status: Status) -> Self {
        match status.code {
            400 => ApiError::BadRequest("Bad request".into()),
            401 => ApiError::Unauthorized("Not authenticated".into()),
            403 => ApiError::Forbidden("Forbidden".into()),
            404 => ApiError::NotFound("Not found".into()),
            409 => ApiError::Conflict("Conflict".into()),
            413 => ApiError::PayloadTooLarge("Request body too large".into()),
            415 => ApiError::UnsupportedMediaType("Unsupported media type".into()),
            422 => ApiError::Unprocessable("Unprocessable entity".into()),
            429 => ApiError::TooManyRequests {
                retry_after_secs: 60,
            },
            500..=599 => ApiError::Internal(format!("unhandled status {status}")),
            _ => ApiError::BadRequest(status.reason_lossy().to_string()),
        }
    }

    pub fn body(&self, request_id: &str) -> serde_json::Value {
        match self {
            ApiError::BadRequest(m)
            | ApiError::Unauthorized(m)
            | ApiError::Forbidden(m)
            | ApiError::NotFound(m)
            | ApiError::Conflict(m)
            | ApiError::PayloadTooLarge(m)
            | ApiError::UnsupportedMediaType(m)
            | ApiError::Unprocessable(m) => json!({ "detail": m }),
            ApiError::PaymentRequired {
                detail,
                order_id,
                payment_id,
            } => json!({ "detail": detail, "order_id": order_id, "payment_id": payment_id }),
            ApiError::Validation(errors) => json!({ "detail": errors }),
            ApiError::MethodNotAllowed { allow } => json!({
                "detail": format!("Method not allowed here; allowed: {}", allow.join(", "))
            }),
            ApiError::TooManyRequests { retry_after_secs } => json!({
                "detail": format!("Too many requests; retry in {retry_after_secs} s")
            }),
            ApiError::Internal(_) => {
                json!({ "detail": "internal error", "request_id": request_id })
            }
            ApiError::Unavailable => json!({ "detail": UNWRITABLE }),
        }
    }

    /// Remembers this error for the catcher that Rocket calls when a guard fails.
    pub fn stash(self, req: &Request<'_>) -> Status {
        let status = self.status();
        req.local_cache(|| StashedError(std::sync::Mutex::new(None)))
            .0
            .lock()
            .map(|mut slot| *slot = Some(self))
            .ok();
        status
    }

    /// The error a failed guard stashed for this request, if any.
    pub fn take_stashed(req: &Request<'_>) -> Option<ApiError> {
        req.local_cache(|| StashedError(std::sync::Mutex::new(None)))
            .0
            .lock()
            .ok()
            .and_then(|mut slot| slot.take())
    }
}

struct StashedError(std::sync::Mutex<Option<ApiError>>);

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status().code, self.body(""))
    }
}

/// Every store refusal's status and message, chosen here and nowhere else.
impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        use ApiError::{BadRequest, Conflict, Internal, NotFound, Unprocessable};
        match e {
            StoreError::NotFound(what) => NotFound(format!("{what} not found")),
            StoreError::NotInCart => NotFound("Product not in cart".into()),
            StoreError::NotReviewed => NotFound("You have not reviewed this product".into()),
            StoreError::Duplicate(key) => Conflict(
                match key {
                    Unique::Email => "Email already registered",
                    Unique::CategoryName => "Category already exists",
                    Unique::CategorySlug => "Category slug already exists",
                    Unique::Slug => "Slug already exists",
                    Unique::Review => "You have reviewed this product already",
                }
                .into(),
            ),
            StoreError::UnknownCategory(id) => {
                Unprocessable(format!("Category {id} does not exist"))
            }
            StoreError::EmptyCart => BadRequest("Your cart is empty".into()),
            StoreError::OutOfStock { title, left, .. } => Conflict(format!(
                "Not enough \"{title}\" in stock (only {left} left)"
            )),
            StoreError::CartOverStock { title, left } => {
                Conflict(format!("Only {left} of \"{title}\" in stock"))
            }
            StoreError::ProductGone(id) => Conflict(format!("Product {id} is no longer available")),
            StoreError::AmountMismatch { total } => Conflict(format!(
                "The amount does not match the cart total ({:.2})",
                total as f64 / 100.0
            )),
            StoreError::NotCancellable(status) => {
                Conflict(format!("An order that is {status} cannot be cancelled"))
            }
            StoreError::AlreadyCancelled => Conflict("The order is already cancelled".into()),
            StoreError::NoShipping => {
                Conflict("This order's payment failed; it has no shipping".into())
            }
            StoreError::InvalidTransition { from, to } => {
                Conflict(format!("Shipping cannot go from {from} to {to}"))
            }
            StoreError::Storage(m) => Internal(m),
            StoreError::Unwritable(_) => ApiError::Unavailable,
        }
    }
}

impl From<PasswordError> for ApiError {
    fn from(e: PasswordError) -> Self {
        ApiError::Internal(e.0)
    }
}

impl<'r> Responder<'r, 'static> for ApiError {
    fn respond_to(self, req: &'r Request<'_>) -> response::Result<'static> {
        let request_id = RequestId::of(req);
        if let ApiError::Internal(cause) = &self {
            tracing::error!(request_id = %request_id, method = %req.method(), path = %req.uri().path(), "internal error: {cause}");
        }
        let body = self.body(&request_id).to_string();
        let mut res = Response::build();
        res.status(self.status())
            .header(ContentType::JSON)
            .sized_body(body.len(), Cursor::new(body));
        if let ApiError::TooManyRequests { retry_after_secs } = self {
            res.header(Header::new("Retry-After", retry_after_secs.to_string()));
        }
        if let ApiError::Unavailable = self {
            res.header(Header::new("Retry-After", "5"));
        }
        if let ApiError::MethodNotAllowed { allow } = &self {
            res.header(Header::new("Allow", allow.join(", ")));
        }
        res.ok()
    }
}

fn error_response(gen: &mut OpenApiGenerator, description: &str) -> RefOr<OaResponse> {
    let schema = gen.json_schema::<ErrorBody>();
    RefOr::Object(OaResponse {
        description: description.to_string(),
        content: [(
            "application/json".to_string(),
            MediaType {
                schema: Some(schema),
                ..Default::default()
            },
        )]
        .into_iter()
        .collect(),
        ..Default::default()
    })
}

impl OpenApiResponderInner for ApiError {
    fn responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = Responses::default();
        for (code, text) in [
            ("400", "Malformed request: `{\"detail\": message}`"),
            ("404", "Missing, or not yours"),
            (
                "422",
                "Invalid field: `{\"detail\": [{loc, msg, type}]}` or a message",
            ),
            (
                "500",
                "Internal error: `{\"detail\": \"internal error\", \"request_id\": ...}`",
            ),
            (
                "503",
                "The database could not write to disk: the shop is stopping for its supervisor to restart it from what is on disk (`Retry-After: 5`)",
            ),
        ] {
            responses
                .responses
                .insert(code.to_string(), error_response(gen, text));
        }
        Ok(responses)
    }
}

/// Adds a documented error response to an operation's responses.
pub fn document_error(
    gen: &mut OpenApiGenerator,
    responses: &mut Responses,
    code: u16,
    text: &str,
) {
    responses
        .responses
        .insert(code.to_string(), error_response(gen, text));
}
