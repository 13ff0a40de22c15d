//! Catalog: stored records, index names and API shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::money::{Money, MoneyIn};
use crate::core::text::fold;
use crate::core::time::rfc3339;
use crate::db::{IndexEntry, Indexed, Record, Unique};
use crate::http::{FieldError, Validate};

pub const PRODUCTS: &str = "products";
pub const PRODUCTS_BY_SLUG: &str = "products_by_slug";
/// Live (not archived) product ids, newest first (`u64::MAX - id`), each with its
/// price, stock, rating rank and categories: what filters and sorts need, without
/// decoding the record.
pub const PRODUCTS_LIVE: &str = "products_live";
/// `price|id` of live products.
pub const PRODUCTS_BY_PRICE: &str = "products_by_price";
/// `category|id` of live products.
pub const PRODUCTS_BY_CATEGORY: &str = "products_by_category";
/// `category|price|id` of live products.
pub const PRODUCTS_BY_CATEGORY_PRICE: &str = "products_by_category_price";
/// `title prefix|id` of live products.
pub const PRODUCTS_BY_TITLE: &str = "products_by_title";
/// `rating rank|id` of live products (highest first, unrated last).
pub const PRODUCTS_BY_RATING: &str = "products_by_rating";
/// Schema 1 kept the facets of `PRODUCTS_LIVE` in a tree of their own, by id; the
/// migration to schema 2 moves them and drops this tree.
pub const PRODUCTS_FACETS_V1: &str = "products_facets";
/// `term\0chunk` -> postings of live products.
pub const SEARCH_POSTINGS: &str = "search_postings";
pub const CATEGORIES: &str = "categories";
pub const CATEGORIES_BY_NAME: &str = "categories_by_name";
pub const CATEGORIES_BY_SLUG: &str = "categories_by_slug";

pub const TREES: &[&str] = &[
    PRODUCTS,
    PRODUCTS_BY_SLUG,
    PRODUCTS_LIVE,
    PRODUCTS_BY_PRICE,
    PRODUCTS_BY_CATEGORY,
    PRODUCTS_BY_CATEGORY_PRICE,
    PRODUCTS_BY_TITLE,
    PRODUCTS_BY_RATING,
    SEARCH_POSTINGS,
    CATEGORIES,
    CATEGORIES_BY_NAME,
    CATEGORIES_BY_SLUG,
];

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Product {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub slug: String,
    pub price: i64,
    pub stock_quantity: i64,
    /// The generated file name under the media folder.
    pub image: Option<String>,
    pub category_ids: Vec<u64>,
    pub rating_sum: u64,
    pub rating_count: u64,
    /// Set when deleted while orders name it: kept for their history, gone from the shop.
    pub archived_at: Option<i64>,
    /// Whether any order names it (then deleting archives instead of removing).
    pub referenced: bool,
    pub created_at: i64,
    pub updated_at: i64,
}

impl Record for Product {
    const TREE: &'static str = PRODUCTS;
}

impl Indexed for Product {
    const INDEXES: &'static [&'static str] = &[
        PRODUCTS_BY_SLUG,
        PRODUCTS_LIVE,
        PRODUCTS_BY_PRICE,
        PRODUCTS_BY_CATEGORY,
        PRODUCTS_BY_CATEGORY_PRICE,
        PRODUCTS_BY_TITLE,
        PRODUCTS_BY_RATING,
    ];
    fn id(&self) -> u64 {
        self.id
    }
    /// Its slug, archived or not (orders keep naming it); the listing entries while live.
    fn index_entries(&self) -> Vec<IndexEntry> {
        let slug = IndexEntry::unique(
            PRODUCTS_BY_SLUG,
            self.slug.as_bytes(),
            self.id,
            Unique::Slug,
        );
        let mut out = vec![slug];
        if self.is_live() {
            out.extend(crate::product::listing::entries(self));
        }
        out
    }
}

impl Product {
    /// On sale: not archived.
    pub fn is_live(&self) -> bool {
        self.archived_at.is_none()
    }

    pub fn image_url(&self) -> Option<String> {
        self.image.as_ref().map(|f| format!("/media/{f}"))
    }

    /// Average rating, 0 when unrated.
    pub fn rating_avg(&self) -> f64 {
        if self.rating_count == 0 {
            0.0
        } else {
            (self.rating_sum as f64 / self.rating_count as f64 * 100.0).round() / 100.0
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Category {
    pub id: u64,
    pub name: String,
    pub slug: String,
    /// Live products in this category.
    pub product_count: u64,
}

impl Record for Category {
    const TREE: &'static str = CATEGORIES;
}

impl Indexed for Category {
    const INDEXES: &'static [&'static str] = &[CATEGORIES_BY_NAME, CATEGORIES_BY_SLUG];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![
            IndexEntry::unique(
                CATEGORIES_BY_NAME,
                fold(&self.name),
                self.id,
                Unique::CategoryName,
            ),
            IndexEntry::unique(
                CATEGORIES_BY_SLUG,
                self.slug.as_bytes(),
                self.id,
                Unique::CategorySlug,
            ),
        ]
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, JsonSchema)]
pub struct CategoryRef {
    pub id: u64,
    pub name: String,
    pub slug: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct CategoryOut {
    pub id: u64,
    pub name: String,
    pub slug: String,
    pub product_count: u64,
}

impl From<&Category> for CategoryOut {
    fn from(c: &Category) -> Self {
        CategoryOut {
            id: c.id,
            name: c.name.clone(),
            slug: c.slug.clone(),
            product_count: c.product_count,
        }
    }
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ProductOut {
    pub id: u64,
    pub title: String,
    pub description: String,
    pub slug: String,
    pub price: Money,
    pub stock_quantity: i64,
    pub in_stock: bool,
    /// `/media/...`, or null without an image.
    pub image_url: Option<String>,
    pub categories: Vec<CategoryRef>,
    /// Average review rating (0 when unrated).
    pub rating_avg: f64,
    pub rating_count: u64,
    pub created_at: String,
    pub updated_at: String,
}

impl ProductOut {
    pub fn new(p: &Product, categories: Vec<CategoryRef>) -> Self {
        ProductOut {
            id: p.id,
            title: p.title.clone(),
            description: p.description.clone(),
            slug: p.slug.clone(),
            price: Money(p.price),
            stock_quantity: p.stock_quantity,
            in_stock: p.stock_quantity > 0,
            image_url: p.image_url(),
            categories,
            rating_avg: p.rating_avg(),
            rating_count: p.rating_count,
            created_at: rfc3339(p.created_at),
            updated_at: rfc3339(p.updated_at),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct CategoryIn {
    #[schemars(schema_with = "crate::http::schema::name")]
    pub name: String,
}

impl Validate for CategoryIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        // As the schema says: counted as sent, not blank, no control characters.
        let len = self.name.chars().count();
        if self.name.trim().is_empty() || len > 100 || self.name.chars().any(char::is_control) {
            errors.push(FieldError::body("name", "Name must be 1 to 100 characters"));
        }
    }
}

/// Product fields as a client sends them (JSON or multipart); all optional so that one
/// shape serves create (which requires some) and update.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ProductIn {
    /// 1 to 200 characters.
    #[schemars(length(min = 1, max = 200), regex(pattern = r"\S"))]
    pub title: Option<String>,
    /// Up to 10,000 characters.
    #[schemars(length(max = 10_000))]
    pub description: Option<String>,
    pub price: Option<MoneyIn>,
    #[schemars(range(min = 0, max = 1_000_000_000))]
    pub stock_quantity: Option<i64>,
    #[schemars(length(max = 50))]
    pub category_ids: Option<Vec<u64>>,
    /// Made from the title when left out (then made unique with a suffix); a slug given
    /// here that another product holds is a 409.
    #[serde(default)]
    #[schemars(schema_with = "slug_schema")]
    pub slug: Option<String>,
}

fn slug_schema(_: &mut schemars::gen::SchemaGenerator) -> schemars::schema::Schema {
    crate::http::schema::nullable(crate::http::schema::slug(crate::core::text::RESERVED_SLUGS))
}

/// What a product body is for: a new product needs a title and a price.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Edit {
    Create,
    Update,
}

impl ProductIn {
    pub fn check(&self, edit: Edit, errors: &mut Vec<FieldError>) {
        if edit == Edit::Create {
            for (name, missing) in [
                ("title", self.title.is_none()),
                ("price", self.price.is_none()),
            ] {
                if missing {
                    errors.push(FieldError::new("body", name, "Field required", "missing"));
                }
            }
        }
        if let Some(t) = &self.title {
            let len = t.trim().chars().count();
            if len == 0 || len > 200 {
                errors.push(FieldError::body(
                    "title",
                    "Title must be 1 to 200 characters",
                ));
            }
        }
        if self
            .description
            .as_ref()
            .is_some_and(|d| d.chars().count() > 10_000)
        {
            errors.push(FieldError::body(
                "description",
                "Description must be at most 10,000 characters",
            ));
        }
        if let Some(Err(msg)) = self.price.map(MoneyIn::to_cents) {
            errors.push(FieldError::body("price", msg.to_string()));
        }
        if self
            .stock_quantity
            .is_some_and(|q| !(0..=1_000_000_000).contains(&q))
        {
            errors.push(FieldError::body(
                "stock_quantity",
                "Stock must be 0 to 1,000,000,000",
            ));
        }
        if let Some(slug) = &self.slug {
            if !crate::core::text::slug_shaped(slug, 80) {
                errors.push(FieldError::body(
                    "slug",
                    "Slug must be 1 to 80 lowercase letters, digits or dashes",
                ));
            } else if crate::core::text::slug_reserved(slug) {
                errors.push(FieldError::body(
                    "slug",
                    "Slug cannot be a number or a word the routes use",
                ));
            }
        }
        if self.category_ids.as_ref().is_some_and(|c| c.len() > 50) {
            errors.push(FieldError::body("category_ids", "At most 50 categories"));
        }
    }
}

/// Checked by the handlers with `check`, which know whether they create or update, for
/// the JSON and the multipart forms alike.
impl Validate for ProductIn {}
