//! Shipping: stored records and API shapes.

use schemars::gen::SchemaGenerator;
use schemars::schema::Schema;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::model::Owned;
use crate::core::time::rfc3339;
use crate::db::{IndexEntry, Indexed, Record};
use crate::http::{schema, FieldError, Validate};

pub const ADDRESSES: &str = "addresses";
pub const ADDRESSES_BY_USER: &str = "addresses_by_user";
/// Keyed by order id.
pub const SHIPPING: &str = "shipping";

pub const TREES: &[&str] = &[ADDRESSES, ADDRESSES_BY_USER, SHIPPING];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct AddressFields {
    pub name: String,
    pub phone: String,
    pub address_line1: String,
    pub address_line2: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Address {
    pub id: u64,
    pub user_id: u64,
    pub fields: AddressFields,
    /// Deleted addresses stay stored for the orders that point at them.
    pub deleted: bool,
}

impl Record for Address {
    const TREE: &'static str = ADDRESSES;
}

impl Owned for Address {
    const WHAT: &'static str = "Address";
    fn owner(&self) -> u64 {
        self.user_id
    }
}

impl Indexed for Address {
    const INDEXES: &'static [&'static str] = &[ADDRESSES_BY_USER];
    fn id(&self) -> u64 {
        self.id
    }
    /// A deleted address leaves its owner's list; orders still point at it.
    fn index_entries(&self) -> Vec<IndexEntry> {
        if self.deleted {
            Vec::new()
        } else {
            vec![IndexEntry::link(ADDRESSES_BY_USER, self.user_id, self.id)]
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct AddressOut {
    pub id: u64,
    pub user_id: u64,
    pub name: String,
    pub phone: String,
    pub address_line1: String,
    pub address_line2: String,
    pub city: String,
    pub state: String,
    pub postal_code: String,
    pub country: String,
}

impl From<&Address> for AddressOut {
    fn from(a: &Address) -> Self {
        let f = a.fields.clone();
        AddressOut {
            id: a.id,
            user_id: a.user_id,
            name: f.name,
            phone: f.phone,
            address_line1: f.address_line1,
            address_line2: f.address_line2,
            city: f.city,
            state: f.state,
            postal_code: f.postal_code,
            country: f.country,
        }
    }
}

/// An address as sent: all fields optional so that PATCH can send a part; POST and PUT
/// need `address_line1`, `city`, `state`, `postal_code` (or `pin_code`) and `country`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct AddressIn {
    #[serde(default)]
    #[schemars(schema_with = "line_100")]
    pub name: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "line_40")]
    pub phone: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(schema_with = "required_200")]
    pub address_line1: Option<String>,
    #[serde(default)]
    #[schemars(schema_with = "line_200")]
    pub address_line2: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(schema_with = "required_100")]
    pub city: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(schema_with = "required_100")]
    pub state: Option<String>,
    /// `pin_code` is accepted instead (one of the two, not both).
    #[serde(alias = "pin_code", default, deserialize_with = "not_null")]
    #[schemars(schema_with = "required_20")]
    pub postal_code: Option<String>,
    #[serde(default, deserialize_with = "not_null")]
    #[schemars(schema_with = "required_100")]
    pub country: Option<String>,
}

/// A field that may be left out but not sent as null: an address has no null city.
fn not_null<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    String::deserialize(d).map(Some)
}

/// The fields POST and PUT need (PATCH may leave any out).
pub const ADDRESS_REQUIRED: [&str; 5] =
    ["address_line1", "city", "state", "postal_code", "country"];

fn line_40(_: &mut SchemaGenerator) -> Schema {
    schema::nullable(schema::line(40))
}
fn line_100(_: &mut SchemaGenerator) -> Schema {
    schema::nullable(schema::line(100))
}
fn line_200(_: &mut SchemaGenerator) -> Schema {
    schema::nullable(schema::line(200))
}
fn required_20(_: &mut SchemaGenerator) -> Schema {
    schema::required_line(20)
}
fn required_100(_: &mut SchemaGenerator) -> Schema {
    schema::required_line(100)
}
fn required_200(_: &mut SchemaGenerator) -> Schema {
    schema::required_line(200)
}

impl Validate for AddressIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        for (name, value, max) in [
            ("name", &self.name, 100),
            ("phone", &self.phone, 40),
            ("address_line1", &self.address_line1, 200),
            ("address_line2", &self.address_line2, 200),
            ("city", &self.city, 100),
            ("state", &self.state, 100),
            ("postal_code", &self.postal_code, 20),
            ("country", &self.country, 100),
        ] {
            if value
                .as_ref()
                .is_some_and(|v| v.chars().count() > max || v.chars().any(char::is_control))
            {
                errors.push(FieldError::body(name, format!("At most {max} characters")));
            }
        }
    }
}

impl AddressIn {
    /// The full address this body makes on top of `base` (PATCH) or alone (POST, PUT).
    pub fn apply(&self, base: Option<&AddressFields>) -> Result<AddressFields, Vec<FieldError>> {
        let pick = |v: &Option<String>, old: Option<&String>| {
            v.as_ref()
                .map(|s| s.trim().to_string())
                .or_else(|| old.cloned())
                .unwrap_or_default()
        };
        let f = AddressFields {
            name: pick(&self.name, base.map(|b| &b.name)),
            phone: pick(&self.phone, base.map(|b| &b.phone)),
            address_line1: pick(&self.address_line1, base.map(|b| &b.address_line1)),
            address_line2: pick(&self.address_line2, base.map(|b| &b.address_line2)),
            city: pick(&self.city, base.map(|b| &b.city)),
            state: pick(&self.state, base.map(|b| &b.state)),
            postal_code: pick(&self.postal_code, base.map(|b| &b.postal_code)),
            country: pick(&self.country, base.map(|b| &b.country)),
        };
        let mut errors = Vec::new();
        for (name, value) in [
            ("address_line1", &f.address_line1),
            ("city", &f.city),
            ("state", &f.state),
            ("postal_code", &f.postal_code),
            ("country", &f.country),
        ] {
            if value.is_empty() {
                errors.push(FieldError::new("body", name, "Field required", "missing"));
            }
        }
        if errors.is_empty() {
            Ok(f)
        } else {
            Err(errors)
        }
    }
}

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ShipState {
    Pending,
    Processing,
    Shipped,
    Delivered,
    Cancelled,
}

impl ShipState {
    pub fn as_str(self) -> &'static str {
        match self {
            ShipState::Pending => "pending",
            ShipState::Processing => "processing",
            ShipState::Shipped => "shipped",
            ShipState::Delivered => "delivered",
            ShipState::Cancelled => "cancelled",
        }
    }

    pub fn cancellable(self) -> bool {
        matches!(self, ShipState::Pending | ShipState::Processing)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Shipping {
    pub id: u64,
    pub order_id: u64,
    pub status: ShipState,
    pub updated_at: i64,
    /// Oldest first, beginning with the `pending` that checkout wrote.
    pub history: Vec<(ShipState, i64)>,
}

impl Record for Shipping {
    const TREE: &'static str = SHIPPING;
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct HistoryOut {
    pub status: ShipState,
    pub at: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ShippingOut {
    pub id: u64,
    pub order_id: u64,
    pub status: ShipState,
    pub updated_at: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ShippingWithHistory {
    pub id: u64,
    pub order_id: u64,
    pub status: ShipState,
    pub updated_at: String,
    pub history: Vec<HistoryOut>,
}

impl From<&Shipping> for ShippingOut {
    fn from(s: &Shipping) -> Self {
        ShippingOut {
            id: s.id,
            order_id: s.order_id,
            status: s.status,
            updated_at: rfc3339(s.updated_at),
        }
    }
}

impl From<&Shipping> for ShippingWithHistory {
    fn from(s: &Shipping) -> Self {
        ShippingWithHistory {
            id: s.id,
            order_id: s.order_id,
            status: s.status,
            updated_at: rfc3339(s.updated_at),
            history: s
                .history
                .iter()
                .map(|(status, at)| HistoryOut {
                    status: *status,
                    at: rfc3339(*at),
                })
                .collect(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct StatusIn {
    pub status: ShipState,
}

impl Validate for StatusIn {}
