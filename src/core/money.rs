//! Money: integer cents inside, a JSON number with at most 2 decimals outside.

use schemars::gen::SchemaGenerator;
use schemars::schema::{InstanceType, Schema, SchemaObject};
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The largest amount NUMERIC(12,2) holds.
pub const MAX_CENTS: i64 = 999_999_999_999;

/// An amount in cents. Deserializing accepts any number; `cents_or_error` checks it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Money(pub i64);

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(self.0 as f64 / 100.0)
    }
}

impl JsonSchema for Money {
    fn schema_name() -> String {
        "Money".into()
    }
    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        let mut schema = SchemaObject {
            instance_type: Some(InstanceType::Number.into()),
            ..Default::default()
        };
        schema.number().minimum = Some(0.0);
        schema.number().maximum = Some(MAX_CENTS as f64 / 100.0);
        schema.number().multiple_of = Some(0.01);
        schema.metadata().description =
            Some("An amount in the shop's currency, at most 2 decimals".into());
        schema.into()
    }
}

/// A money amount as sent by a client, checked by `to_cents`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MoneyIn(pub f64);

impl<'de> Deserialize<'de> for MoneyIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(MoneyIn)
    }
}

impl JsonSchema for MoneyIn {
    fn schema_name() -> String {
        Money::schema_name()
    }
    fn json_schema(gen: &mut SchemaGenerator) -> Schema {
        Money::json_schema(gen)
    }
}

/// Why an amount is not acceptable; its text is the message a client sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BadAmount {
    NotANumber,
    NotFinite,
    Negative,
    TooPrecise,
    TooLarge,
}

impl std::fmt::Display for BadAmount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BadAmount::NotANumber => "Input must be a number",
            BadAmount::NotFinite => "Input must be a finite number",
            BadAmount::Negative => "Amount must not be negative",
            BadAmount::TooPrecise => "Amount must have at most 2 decimals",
            BadAmount::TooLarge => "Amount is too large",
        })
    }
}

impl MoneyIn {
    /// Cents, or why the amount is not acceptable (negative, more than 2 decimals, too big).
    pub fn to_cents(self) -> Result<i64, BadAmount> {
        parse_cents(self.0)
    }
}

pub fn parse_cents(amount: f64) -> Result<i64, BadAmount> {
    if !amount.is_finite() {
        return Err(BadAmount::NotFinite);
    }
    if amount < 0.0 {
        return Err(BadAmount::Negative);
    }
    let scaled = amount * 100.0;
    let cents = scaled.round();
    // What f64 adds to an amount of whole cents is relative (about 1e-16 of it): allowed
    // up to 1e-9 of the amount, so that a tiny amount (1e-148) is not taken for 0, and at
    // most a thousandth of a cent, so that a large one with a third decimal
    // (4560061503.814871) is not rounded either.
    if (scaled - cents).abs() > (scaled.abs() * 1e-9).min(1e-3) {
        return Err(BadAmount::TooPrecise);
    }
    if cents > MAX_CENTS as f64 {
        return Err(BadAmount::TooLarge);
    }
    Ok(cents as i64)
}

/// Parses a money query parameter (`min_price=9.99`).
pub fn parse_cents_text(text: &str) -> Result<i64, BadAmount> {
    let amount: f64 = text.trim().parse().map_err(|_| BadAmount::NotANumber)?;
    parse_cents(amount)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_decimals_at_most_and_never_negative() {
        assert_eq!(parse_cents(19.99), Ok(1999));
        assert_eq!(parse_cents(0.1 + 0.2), Ok(30));
        assert_eq!(parse_cents(1e9), Ok(100_000_000_000));
        assert!(parse_cents(1.999).is_err());
        assert_eq!(parse_cents(0.07), Ok(7));
        assert_eq!(parse_cents(0.0), Ok(0));
        assert_eq!(parse_cents(9_999_999_999.99), Ok(999_999_999_999));
        assert!(parse_cents(1.681_335_913_424_391_7e-148).is_err());
        assert!(parse_cents(0.000_001).is_err());
        assert!(parse_cents(4_560_061_503.814_871).is_err());
        assert!(parse_cents(-1.0).is_err());
        assert!(parse_cents(1e13).is_err());
        assert_eq!(serde_json::to_string(&Money(1999)).unwrap(), "19.99");
        assert_eq!(serde_json::to_string(&Money(500)).unwrap(), "5.0");
    }

    /// The two ways an amount comes in, a JSON number (`MoneyIn`: prices, checkout's
    /// amount) and query text (`min_price=9.99`), answer the cents or the same refusals.
    #[test]
    fn json_numbers_and_query_text_become_the_same_cents() {
        let json: MoneyIn = serde_json::from_str("19.99").unwrap();
        assert_eq!(json.to_cents(), Ok(1999));
        assert_eq!(MoneyIn(-1.0).to_cents(), Err(BadAmount::Negative));
        assert_eq!(MoneyIn(1.999).to_cents(), Err(BadAmount::TooPrecise));
        assert_eq!(parse_cents_text(" 9.99 "), Ok(999));
        assert_eq!(parse_cents_text("nine"), Err(BadAmount::NotANumber));
        assert_eq!(parse_cents_text("-0.5"), Err(BadAmount::Negative));
        assert_eq!(
            BadAmount::TooPrecise.to_string(),
            "Amount must have at most 2 decimals"
        );
    }
}
