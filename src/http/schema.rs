//! Schemas that say what the server checks, for fields and parameters whose Rust type
//! says less (a `String` that must be an email, a `page` that starts at 1). Used with
//! `#[schemars(schema_with = "...")]` or `#[schemars(with = "...")]`.

use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject};
use schemars::JsonSchema;

use crate::core::page::MAX_LIMIT;

/// No control characters (what `char::is_control` refuses).
const NO_CONTROLS: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// No control characters, and something besides white space.
const NOT_BLANK: &str =
    "^[^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";

fn string(min: Option<u32>, max: u32, pattern: Option<&str>, format: Option<&str>) -> Schema {
    let mut s = SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        format: format.map(str::to_string),
        ..Default::default()
    };
    s.string().min_length = min;
    s.string().max_length = Some(max);
    s.string().pattern = pattern.map(str::to_string);
    s.into()
}

/// An integer from `min` to `max`.
pub fn integer(min: f64, max: f64) -> Schema {
    let mut s = SchemaObject {
        instance_type: Some(InstanceType::Integer.into()),
        ..Default::default()
    };
    s.number().minimum = Some(min);
    s.number().maximum = Some(max);
    s.into()
}

/// An email address as `check_email` accepts it.
pub fn email(_: &mut SchemaGenerator) -> Schema {
    string(None, 254, None, Some("email"))
}

/// Any text up to 254 characters (the email of a login, checked only by lookup).
pub fn login_email(_: &mut SchemaGenerator) -> Schema {
    string(None, 254, None, None)
}

/// A new password: 8 to 128 characters.
pub fn password(_: &mut SchemaGenerator) -> Schema {
    string(Some(8), 128, None, None)
}

/// A password being presented: at most 128 characters.
pub fn any_password(_: &mut SchemaGenerator) -> Schema {
    string(None, 128, None, None)
}

/// A person's or category's name: 1 to 100 characters, not blank, no control characters.
pub fn name(_: &mut SchemaGenerator) -> Schema {
    string(Some(1), 100, Some(NOT_BLANK), None)
}

/// `name`, or null (left out).
pub fn name_or_null(gen: &mut SchemaGenerator) -> Schema {
    nullable(name(gen))
}

/// A body field that may be null, which the server takes as left out.
pub fn nullable(schema: Schema) -> Schema {
    match schema {
        Schema::Object(mut o) => {
            o.extensions
                .insert("nullable".into(), serde_json::json!(true));
            Schema::Object(o)
        }
        other => other,
    }
}

/// A required line of text of at most `max` characters, not blank, no control characters.
pub fn required_line(max: u32) -> Schema {
    string(Some(1), max, Some(NOT_BLANK), None)
}

/// An optional line of text of at most `max` characters, no control characters.
pub fn line(max: u32) -> Schema {
    string(None, max, Some(NO_CONTROLS), None)
}

/// A product slug as a client may send it: 1 to 80 lowercase ASCII letters, digits or
/// dashes, not a number and not one of `reserved` (the words the routes use).
pub fn slug(reserved: &[&str]) -> Schema {
    let mut s = SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        ..Default::default()
    };
    s.string().min_length = Some(1);
    s.string().max_length = Some(80);
    s.string().pattern = Some("^[a-z0-9-]*[a-z-][a-z0-9-]*$".into());
    if !reserved.is_empty() {
        s.subschemas().not = Some(Box::new(one_of(reserved)));
    }
    s.into()
}

/// `page`: from 1.
pub struct PageNumber;

impl JsonSchema for PageNumber {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "PageNumber".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = integer(1.0, f64::from(u32::MAX / 2));
        if let Schema::Object(o) = &mut s {
            o.metadata().description = Some("Page number, from 1.".into());
        }
        s
    }
}

/// `limit` and `size`: 1 to 100, default 20.
pub struct PageSize;

impl JsonSchema for PageSize {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "PageSize".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut s = integer(1.0, f64::from(MAX_LIMIT));
        if let Schema::Object(o) = &mut s {
            o.metadata().description =
                Some(format!("Items per page, 1 to {MAX_LIMIT} (default 20)."));
        }
        s
    }
}

/// An amount as a query parameter: what `parse_cents_text` takes.
pub struct Amount;

impl JsonSchema for Amount {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "Amount".into()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        crate::core::money::Money::json_schema(gen)
    }
}

/// A query parameter that is a whole number from 0 up to `u64::MAX`... kept within what
/// JSON numbers hold exactly.
pub struct Id;

/// The largest id a client can send: JSON numbers are exact up to 2^53 - 1.
pub const MAX_ID: u64 = 9_007_199_254_740_991;

impl JsonSchema for Id {
    fn is_referenceable() -> bool {
        false
    }
    fn schema_name() -> String {
        "Id".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        integer(0.0, MAX_ID as f64)
    }
}

/// One of a fixed list of words.
pub fn one_of(words: &[&str]) -> Schema {
    SchemaObject {
        instance_type: Some(InstanceType::String.into()),
        enum_values: Some(words.iter().map(|w| serde_json::json!(w)).collect()),
        ..Default::default()
    }
    .into()
}

/// A list of strings (a query parameter that may be repeated).
pub fn strings(item: Schema) -> Schema {
    let mut s = SchemaObject {
        instance_type: Some(InstanceType::Array.into()),
        ..Default::default()
    };
    s.array().items = Some(item.into());
    s.into()
}

/// Any text up to `max` characters.
pub fn text(max: u32) -> Schema {
    string(None, max, None, None)
}

/// A query parameter's schema made optional: rocket_okapi marks a parameter required
/// unless its schema is `nullable`, which `http::openapi::finish` then removes (a query
/// cannot send null).
pub fn optional(schema: Schema) -> Schema {
    nullable(schema)
}
