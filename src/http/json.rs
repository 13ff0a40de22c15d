//! `ApiJson<T>`: the JSON body guard that answers FastAPI-shaped 422 lists.

use rocket::data::{self, Data, FromData, ToByteUnit};
use rocket::request::Request;
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{MediaType, RequestBody};
use rocket_okapi::request::OpenApiFromData;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Value};

use crate::http::error::{ApiError, FieldError};

/// Rules a parsed body must follow beyond its shape (lengths, ranges, formats).
pub trait Validate {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        let _ = errors;
    }
}

/// An answer that is only a sentence: `{"message": ...}`.
#[derive(Debug, Serialize, JsonSchema)]
pub struct Message {
    pub message: String,
}

impl Message {
    pub fn new(text: impl Into<String>) -> Self {
        Message {
            message: text.into(),
        }
    }
}

/// A JSON request body, parsed and validated; every failure is stashed for the catcher.
pub struct ApiJson<T>(pub T);

impl<T> std::ops::Deref for ApiJson<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.0
    }
}

/// Parses a JSON value into `T`, turning serde's complaint into a field error with its `loc`.
pub fn from_value<T: DeserializeOwned + Validate>(value: Value) -> Result<T, ApiError> {
    let parsed: T = serde_path_to_error::deserialize(&value).map_err(|e| {
        let mut loc = vec![json!("body")];
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                _ => {}
            }
        }
        let msg = e.inner().to_string();
        let kind = if let Some(field) = missing_field(&msg) {
            loc.push(json!(field));
            "missing"
        } else {
            "type_error"
        };
        let msg = if kind == "missing" {
            "Field required".to_string()
        } else {
            msg
        };
        ApiError::Validation(vec![FieldError {
            loc,
            msg,
            kind: kind.to_string(),
        }])
    })?;
    let mut errors = Vec::new();
    parsed.validate(&mut errors);
    if errors.is_empty() {
        Ok(parsed)
    } else {
        Err(ApiError::Validation(errors))
    }
}

fn missing_field(msg: &str) -> Option<&str> {
    let rest = msg.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Reads a body up to the `json` limit and parses it as JSON; too large is a 413.
pub async fn read_json_value<'r>(req: &'r Request<'_>, data: Data<'r>) -> Result<Value, ApiError> {
    let limit = req.limits().get("json").unwrap_or(1.mebibytes());
    let bytes = data
        .open(limit)
        .into_bytes()
        .await
        .map_err(|e| ApiError::BadRequest(format!("Could not read the request body: {e}")))?;
    if !bytes.is_complete() {
        return Err(ApiError::PayloadTooLarge(format!(
            "Request body larger than {limit}"
        )));
    }
    // An empty body is an empty object: required fields are then reported by name.
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::BadRequest(format!("Malformed JSON: {e}")))
}

#[rocket::async_trait]
impl<'r, T: DeserializeOwned + Validate + Send + 'static> FromData<'r> for ApiJson<T> {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> data::Outcome<'r, Self> {
        let result = match read_json_value(req, data).await {
            Ok(value) => from_value::<T>(value),
            Err(e) => Err(e),
        };
        match result {
            Ok(v) => data::Outcome::Success(ApiJson(v)),
            Err(e) => data::Outcome::Error((e.stash(req), ())),
        }
    }
}

impl<'r, T: DeserializeOwned + Validate + JsonSchema + Send + 'static> OpenApiFromData<'r>
    for ApiJson<T>
{
    fn request_body(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<RequestBody> {
        let schema = gen.json_schema::<T>();
        Ok(RequestBody {
            content: [(
                "application/json".to_string(),
                MediaType {
                    schema: Some(schema),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            required: true,
            ..Default::default()
        })
    }
}
