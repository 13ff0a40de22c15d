//! Orders: stored records and API shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::money::{Money, MoneyIn};
use crate::db::Record;
use crate::http::{FieldError, Validate};
use crate::payment::model::PaymentOut;
use crate::shipping::model::{AddressFields, ShippingOut};

pub const ORDERS: &str = "orders";
pub const ORDERS_BY_USER: &str = "orders_by_user";
/// The id sequence of order items (they live inside their order's record).
pub const ORDER_ITEMS: &str = "order_items";
/// `user|Idempotency-Key` -> the first answer.
pub const IDEMPOTENCY: &str = "idempotency";

pub const TREES: &[&str] = &[ORDERS, ORDERS_BY_USER, IDEMPOTENCY];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrderStatus {
    PaymentFailed,
    Confirmed,
    Cancelled,
}

impl OrderStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            OrderStatus::PaymentFailed => "payment_failed",
            OrderStatus::Confirmed => "confirmed",
            OrderStatus::Cancelled => "cancelled",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub id: u64,
    pub product_id: u64,
    pub title: String,
    pub quantity: i64,
    pub price: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
    pub id: u64,
    pub user_id: u64,
    pub status: OrderStatus,
    pub total_price: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub shipping_address_id: u64,
    pub address: AddressFields,
    pub items: Vec<OrderItem>,
    pub payment_id: u64,
}

impl Record for Order {
    const TREE: &'static str = ORDERS;
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderItemOut {
    pub id: u64,
    pub product_id: u64,
    /// The title when ordered.
    pub title: String,
    pub quantity: i64,
    /// The unit price when ordered.
    pub price: Money,
    pub total: Money,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OrderOut {
    pub id: u64,
    pub user_id: u64,
    pub status: OrderStatus,
    pub total_price: Money,
    pub created_at: String,
    pub updated_at: String,
    /// A copy of the address as it was at checkout.
    pub shipping_address: AddressFields,
    pub items: Vec<OrderItemOut>,
    pub payment: PaymentOut,
    /// Null for a failed payment.
    pub shipping_status: Option<ShippingOut>,
}

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct CheckoutIn {
    pub shipping_address_id: u64,
    /// Only `mock`.
    pub gateway: Option<String>,
    /// `false` makes the mock payment fail (default true).
    pub simulate_success: Option<bool>,
    /// When given, must equal the cart total (else 409).
    pub amount: Option<MoneyIn>,
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
