//! Reviews: stored records and API shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::account::model::Owned;
use crate::core::time::rfc3339;
use crate::db::{pair_key, IndexEntry, Indexed, Record, Unique};
use crate::http::{FieldError, Validate};

pub const REVIEWS: &str = "reviews";
pub const REVIEWS_BY_PRODUCT: &str = "reviews_by_product";
/// `user|product` -> review id: one review per user and product.
pub const REVIEWS_BY_AUTHOR: &str = "reviews_by_author";

pub const TREES: &[&str] = &[REVIEWS, REVIEWS_BY_PRODUCT, REVIEWS_BY_AUTHOR];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Review {
    pub id: u64,
    pub product_id: u64,
    pub user_id: u64,
    pub user_name: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for Review {
    const TREE: &'static str = REVIEWS;
}

impl Owned for Review {
    const WHAT: &'static str = "Review";
    fn owner(&self) -> u64 {
        self.user_id
    }
}

impl Indexed for Review {
    const INDEXES: &'static [&'static str] = &[REVIEWS_BY_PRODUCT, REVIEWS_BY_AUTHOR];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        let author = author_key(self.user_id, self.product_id);
        vec![
            IndexEntry::link(REVIEWS_BY_PRODUCT, self.product_id, self.id),
            IndexEntry::unique(REVIEWS_BY_AUTHOR, author, self.id, Unique::Review),
        ]
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ReviewOut {
    pub id: u64,
    pub product_id: u64,
    pub user_id: u64,
    pub user_name: String,
    pub rating: u8,
    pub title: String,
    pub body: String,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&Review> for ReviewOut {
    fn from(r: &Review) -> Self {
        ReviewOut {
            id: r.id,
            product_id: r.product_id,
            user_id: r.user_id,
            user_name: r.user_name.clone(),
            rating: r.rating,
            title: r.title.clone(),
            body: r.body.clone(),
            created_at: rfc3339(r.created_at),
            updated_at: rfc3339(r.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ReviewIn {
    /// 1 to 5.
    #[schemars(range(min = 1, max = 5))]
    pub rating: i64,
    #[schemars(length(max = 200))]
    pub title: Option<String>,
    #[schemars(length(max = 5000))]
    pub body: Option<String>,
}

impl Validate for ReviewIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if !(1..=5).contains(&self.rating) {
            errors.push(FieldError::body("rating", "Rating must be 1 to 5"));
        }
        if self.title.as_ref().is_some_and(|t| t.chars().count() > 200) {
            errors.push(FieldError::body("title", "At most 200 characters"));
        }
        if self.body.as_ref().is_some_and(|t| t.chars().count() > 5000) {
            errors.push(FieldError::body("body", "At most 5,000 characters"));
        }
    }
}

pub fn author_key(user_id: u64, product_id: u64) -> [u8; 16] {
    pair_key(user_id, product_id)
}
