//! Checkout: the request body, and the record that lets a client retry safely.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::money::MoneyIn;
use crate::db::Record;
use crate::http::{FieldError, Validate};

/// `user|Idempotency-Key` -> the first answer.
pub const IDEMPOTENCY: &str = "idempotency";

pub const TREES: &[&str] = &[IDEMPOTENCY];

/// How long an `Idempotency-Key` is remembered.
pub const IDEMPOTENCY_MICROS: i64 = 24 * 3600 * 1_000_000;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckoutIn {
    pub shipping_address_id: u64,
    /// Only `mock`.
    #[serde(default)]
    #[schemars(schema_with = "mock_only")]
    pub gateway: Option<String>,
    /// `false` makes the mock payment fail (default true).
    pub simulate_success: Option<bool>,
    /// When given, must equal the cart total (else 409).
    pub amount: Option<MoneyIn>,
}

fn mock_only(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    crate::http::schema::nullable(crate::http::schema::one_of(&["mock"]))
}

impl Validate for CheckoutIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.gateway.as_deref().is_some_and(|g| g != "mock") {
            errors.push(FieldError::body(
                "gateway",
                "Only the mock gateway is available",
            ));
        }
        if let Some(Err(msg)) = self.amount.map(MoneyIn::to_cents) {
            errors.push(FieldError::body("amount", msg.to_string()));
        }
    }
}

/// An answer as it was sent: a retry with the same key gets exactly this again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub status: u16,
    /// The JSON body.
    pub body: String,
}

/// The first answer to a request with an `Idempotency-Key`, kept 24 hours.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdemRecord {
    /// The request body, as canonical JSON.
    pub request: String,
    pub answer: Answer,
    pub created_at: i64,
}

impl Record for IdemRecord {
    const TREE: &'static str = IDEMPOTENCY;
    /// Version 1 kept a "still running" state too: the claim and the answer were two
    /// writes. Since both are one transaction with the order, there is only the answer.
    const VERSION: u8 = 2;
}
