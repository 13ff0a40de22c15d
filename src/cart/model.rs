//! The cart: one record per user, so checkout can read and empty it inside a transaction.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::money::Money;
use crate::db::Record;
use crate::http::{FieldError, Validate};

pub const CARTS: &str = "carts";

pub const TREES: &[&str] = &[CARTS];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartLine {
    pub id: u64,
    pub product_id: u64,
    pub quantity: i64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Cart {
    pub user_id: u64,
    pub lines: Vec<CartLine>,
}

impl Record for Cart {
    const TREE: &'static str = CARTS;
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CartItemOut {
    pub id: u64,
    pub product_id: u64,
    pub product_title: String,
    pub slug: String,
    pub image_url: Option<String>,
    pub quantity: i64,
    /// The product's current price.
    pub price: Money,
    pub total: Money,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CartOut {
    pub items: Vec<CartItemOut>,
    pub total_quantity: i64,
    pub total_price: Money,
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AddIn {
    pub product_id: u64,
    /// 1 to 1,000,000.
    #[schemars(range(min = 1, max = 1_000_000))]
    pub quantity: i64,
}

impl Validate for AddIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if !(1..=1_000_000).contains(&self.quantity) {
            errors.push(FieldError::body(
                "quantity",
                "Quantity must be 1 to 1,000,000",
            ));
        }
    }
}
