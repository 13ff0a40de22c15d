//! Payments: records, API shapes, the gateway seam, and the simulated `mock` gateway.

use rand::Rng;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::model::Owned;
use crate::core::money::Money;
use crate::core::time::rfc3339;
use crate::db::{IndexEntry, Indexed, Record};

pub const PAYMENTS: &str = "payments";
pub const PAYMENTS_BY_USER: &str = "payments_by_user";

pub const TREES: &[&str] = &[PAYMENTS, PAYMENTS_BY_USER];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum PaymentStatus {
    Success,
    Failed,
    Refunded,
}

impl PaymentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Success => "success",
            PaymentStatus::Failed => "failed",
            PaymentStatus::Refunded => "refunded",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Payment {
    pub id: u64,
    pub order_id: u64,
    pub user_id: u64,
    pub amount: i64,
    pub status: PaymentStatus,
    pub payment_gateway: String,
    pub transaction_id: String,
    pub is_paid: bool,
    pub created_at: i64,
}

impl Record for Payment {
    const TREE: &'static str = PAYMENTS;
}

impl Owned for Payment {
    const WHAT: &'static str = "Payment";
    fn owner(&self) -> u64 {
        self.user_id
    }
}

impl Indexed for Payment {
    const INDEXES: &'static [&'static str] = &[PAYMENTS_BY_USER];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::link(PAYMENTS_BY_USER, self.user_id, self.id)]
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct PaymentOut {
    pub id: u64,
    pub order_id: u64,
    pub user_id: u64,
    pub amount: Money,
    pub status: PaymentStatus,
    pub payment_gateway: String,
    pub transaction_id: String,
    pub is_paid: bool,
    pub created_at: String,
}

impl From<&Payment> for PaymentOut {
    fn from(p: &Payment) -> Self {
        PaymentOut {
            id: p.id,
            order_id: p.order_id,
            user_id: p.user_id,
            amount: Money(p.amount),
            status: p.status,
            payment_gateway: p.payment_gateway.clone(),
            transaction_id: p.transaction_id.clone(),
            is_paid: p.is_paid,
            created_at: rfc3339(p.created_at),
        }
    }
}

/// What a gateway answers for a charge.
pub struct Charge {
    pub success: bool,
    pub transaction_id: String,
}

/// A payment provider. Decided before checkout's transaction, since that may run twice.
pub trait PaymentGateway: Send + Sync {
    fn name(&self) -> &'static str;
    fn charge(&self, amount_cents: i64, simulate_success: bool) -> Charge;
}

/// Simulated payments: succeed unless asked not to, or by the configured random failure
/// rate (for demos).
pub struct MockGateway {
    pub failure_rate: f64,
}

impl PaymentGateway for MockGateway {
    fn name(&self) -> &'static str {
        "mock"
    }

    fn charge(&self, _amount_cents: i64, simulate_success: bool) -> Charge {
        let random_failure =
            self.failure_rate > 0.0 && rand::thread_rng().gen_bool(self.failure_rate.min(1.0));
        Charge {
            success: simulate_success && !random_failure,
            transaction_id: format!("mock_{}", hex::encode(rand::random::<[u8; 12]>())),
        }
    }
}
