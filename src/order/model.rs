//! Orders: stored records and API shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::model::Owned;
use crate::core::money::Money;
use crate::core::time::rfc3339;
use crate::db::{IndexEntry, Indexed, Record};
use crate::payment::model::{Payment, PaymentOut};
use crate::shipping::model::{AddressFields, Shipping, ShippingOut};

pub const ORDERS: &str = "orders";
pub const ORDERS_BY_USER: &str = "orders_by_user";
/// The id sequence of order items (they live inside their order's record).
pub const ORDER_ITEMS: &str = "order_items";
pub const TREES: &[&str] = &[ORDERS, ORDERS_BY_USER];

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

impl Owned for Order {
    const WHAT: &'static str = "Order";
    fn owner(&self) -> u64 {
        self.user_id
    }
}

impl Indexed for Order {
    const INDEXES: &'static [&'static str] = &[ORDERS_BY_USER];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::link(ORDERS_BY_USER, self.user_id, self.id)]
    }
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

impl OrderOut {
    pub fn new(order: &Order, payment: &Payment, shipping: Option<&Shipping>) -> Self {
        OrderOut {
            id: order.id,
            user_id: order.user_id,
            status: order.status,
            total_price: Money(order.total_price),
            created_at: rfc3339(order.created_at),
            updated_at: rfc3339(order.updated_at),
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
            payment: PaymentOut::from(payment),
            shipping_status: shipping.map(ShippingOut::from),
        }
    }
}
