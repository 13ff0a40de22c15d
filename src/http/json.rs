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
    // Every body is an object; serde would also fill a struct from an array.
    if !value.is_object() {
        return Err(ApiError::Validation(vec![FieldError {
            loc: vec![json!("body")],
            msg: "Input must be an object".into(),
            kind: "dict_type".into(),
        }]));
    }
    let parsed: T = serde_path_to_error::deserialize(&value).map_err(|e| {
        let mut loc = vec![json!("body")];
        for segment in e.path().iter() {
            match segment {
                serde_path_to_error::Segment::Seq { index } => loc.push(json!(index)),
                serde_path_to_error::Segment::Map { key } => loc.push(json!(key)),
                _ => {}
            }
        }
        let raw = e.inner().to_string();
        let (msg, kind) = if let Some(field) = quoted_field(&raw, "missing field `") {
            loc.push(json!(field));
            ("Field required".to_string(), "missing")
        } else if let Some(field) = quoted_field(&raw, "duplicate field `") {
            // A field and its alias both given (`postal_code` and `pin_code`, say).
            loc.push(json!(field));
            (
                "Field given more than once (under its name or an alias)".to_string(),
                "duplicate",
            )
        } else {
            plain_message(&raw)
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

/// serde's complaint in a client's words: what the field must be, never a Rust type
/// (`invalid type: string "12.50", expected f64` becomes "Input must be a number").
pub fn plain_message(serde_msg: &str) -> (String, &'static str) {
    let expected = serde_msg
        .rsplit_once(", expected ")
        .map(|(_, e)| e.trim())
        .unwrap_or("");
    let out_of_range = serde_msg.starts_with("invalid value: integer");
    let (msg, kind) = match expected {
        "f64" | "f32" | "a number" => ("Input must be a number", "float_type"),
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" if out_of_range => (
            "Input must be a whole number, 0 or more, within range",
            "int_range",
        ),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" if out_of_range => {
            ("Input must be a whole number within range", "int_range")
        }
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" | "i8" | "i16" | "i32" | "i64" | "i128"
        | "isize" => ("Input must be a whole number", "int_type"),
        "a boolean" => ("Input must be true or false", "bool_type"),
        "a string" | "a borrowed string" | "a character" => {
            ("Input must be a string", "string_type")
        }
        "a sequence" | "a tuple" => ("Input must be a list", "list_type"),
        "a map" => ("Input must be an object", "dict_type"),
        e if e.starts_with("struct ") => ("Input must be an object", "dict_type"),
        e if e.starts_with("one of ") || e.starts_with('`') => {
            return (format!("Input must be {}", e.replace('`', "")), "enum");
        }
        _ => ("Input is not valid here", "value_error"),
    };
    (msg.to_string(), kind)
}

/// The field a serde message such as "missing field `email`" names after `prefix`.
fn quoted_field<'m>(msg: &'m str, prefix: &str) -> Option<&'m str> {
    let rest = msg.strip_prefix(prefix)?;
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
