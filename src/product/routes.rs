//! `/api/products`: catalog, categories, images, listing and search; `/media` files.

use rocket::data::{Capped, Data, FromData};
use rocket::form::{Form, FromForm};
use rocket::fs::TempFile;
use rocket::http::{ContentType, Header, Status};
use rocket::response::status::{Created, NoContent};
use rocket::serde::json::Json;
use rocket::{delete, get, patch, post, Request, Response, State};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{MediaType, OpenApi, RequestBody};
use rocket_okapi::okapi::schemars::schema::{InstanceType, ObjectValidation, Schema, SchemaObject};
use rocket_okapi::request::OpenApiFromData;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use std::collections::HashMap;
use std::io::Cursor;
use std::path::PathBuf;
use tokio::io::AsyncReadExt;

use crate::account::guard::AdminUser;
use crate::core::money::parse_cents_text;
use crate::core::text::fold;
use crate::db::{Backend, StoreError};
use crate::http::cache::JsonBytes;
use crate::http::json::{from_value, read_json_value};
use crate::http::openapi;
use crate::http::pagination::once;
use crate::http::{
    schema, ApiError, ApiJson, ApiResult, AppState, FieldError, Page, PageQuery, Pagination,
};
use crate::product::images;
use crate::product::listing::{Cursor as ListCursor, Filters, Sort};
use crate::product::model::*;
use crate::product::store::{self, Deleted, ProductChanges};

fn media_dir(state: &AppState) -> PathBuf {
    state.config.data_dir.join("media")
}

/// Shapes products for the API, looking each category up once.
async fn shape(db: &Backend, products: &[Product]) -> ApiResult<Vec<ProductOut>> {
    let mut cache = HashMap::new();
    let mut out = Vec::with_capacity(products.len());
    for p in products {
        let categories = store::category_refs(db, &p.category_ids, &mut cache).await?;
        out.push(ProductOut::new(p, categories));
    }
    Ok(out)
}

async fn shape_page(db: &Backend, page: Page<Product>) -> ApiResult<Page<ProductOut>> {
    Ok(Page {
        items: shape(db, &page.items).await?,
        total: page.total,
        page: page.page,
        limit: page.limit,
        pages: page.pages,
        next: page.next,
    })
}

async fn shape_one(db: &Backend, p: &Product) -> ApiResult<ProductOut> {
    Ok(shape(db, std::slice::from_ref(p)).await?.remove(0))
}

/// Filters, sort and pagination of the product list and search. A parameter that is not
/// a list keeps every value given, so that a repeat with another value is a 422.
#[derive(Debug, Default, FromForm, JsonSchema)]
pub struct ProductQuery {
    /// Category id or slug; repeat to match any of several.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<Vec<String>>")]
    pub category: Vec<String>,
    /// Category name; repeat to match any of several.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<Vec<String>>")]
    pub categories: Vec<String>,
    /// Lowest price, inclusive.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::Amount>")]
    pub min_price: Vec<String>,
    /// Highest price, inclusive.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::Amount>")]
    pub max_price: Vec<String>,
    /// Only products in stock (`true`) or out of stock (`false`).
    #[field(default = Vec::new())]
    #[schemars(with = "Option<bool>")]
    pub in_stock: Vec<String>,
    /// Case-insensitive substring of the title; repeat to match any.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<Vec<String>>")]
    pub title: Vec<String>,
    /// Case-insensitive substring of the description; repeat to match any.
    #[field(default = Vec::new())]
    #[schemars(with = "Option<Vec<String>>")]
    pub description: Vec<String>,
    /// `newest` (list default), `price_asc`, `price_desc`, `title`, `rating` (highest
    /// first, unrated last) or `relevance` (search default when `q` is given).
    #[field(default = Vec::new())]
    #[schemars(schema_with = "sort_schema")]
    pub sort: Vec<String>,
    /// Search words (search only), at most 200 characters: all must match, the last one
    /// as a prefix.
    #[field(default = Vec::new())]
    #[schemars(schema_with = "q_schema")]
    pub q: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageNumber>")]
    pub page: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageSize>")]
    pub limit: Vec<String>,
    #[field(default = Vec::new())]
    #[schemars(with = "Option<schema::PageSize>")]
    pub size: Vec<String>,
    /// Cursor pagination: the `next` of the previous answer (same filters and sort). The
    /// answer holds the items after that one (`page` is ignored; the answer's `page` says
    /// where they begin) and, unless it is the last, a `next` of its own. A changed
    /// catalog never repeats or skips an item that stayed: the cursor is a position in
    /// the sort order, not an offset (except under `relevance`, whose scores move when
    /// the catalog changes).
    #[field(default = Vec::new())]
    #[schemars(with = "Option<String>")]
    pub after: Vec<String>,
}

impl ProductQuery {
    /// The `after` cursor, which must come from a listing of the same sort.
    fn cursor(&self, sort: Sort) -> ApiResult<Option<ListCursor>> {
        let mut errors = Vec::new();
        let text = once("after", &self.after, &mut errors)
            .map(str::trim)
            .filter(|a| !a.is_empty());
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        match text {
            None => Ok(None),
            Some(text) => match ListCursor::parse(text).filter(|c| c.sort == sort) {
                Some(c) => Ok(Some(c)),
                None => Err(ApiError::Validation(vec![FieldError::query(
                    "after",
                    "Not a cursor of this listing: pass the `next` of an answer with the same sort",
                )])),
            },
        }
    }
}

const SORTS: [&str; 6] = [
    "newest",
    "price_asc",
    "price_desc",
    "title",
    "rating",
    "relevance",
];

fn sort_schema(_: &mut schemars::gen::SchemaGenerator) -> Schema {
    schema::optional(schema::one_of(&SORTS))
}

fn q_schema(_: &mut schemars::gen::SchemaGenerator) -> Schema {
    schema::optional(schema::text(200))
}

/// Which of the two reads a query is for: they differ in the default sort.
#[derive(Clone, Copy, PartialEq)]
enum Read {
    List,
    Search,
}

impl ProductQuery {
    async fn parse(&self, db: &Backend, read: Read) -> ApiResult<(Filters, Sort, Pagination)> {
        let searching = read == Read::Search;
        let mut errors = Vec::new();
        let pagination = PageQuery {
            page: self.page.clone(),
            limit: self.limit.clone(),
            size: self.size.clone(),
        }
        .parse(&mut errors);
        let mut money = |name: &str, raw: &[String]| {
            let mut cents = None;
            for r in raw {
                match parse_cents_text(r) {
                    Ok(c) => cents = cents.or(Some(c)),
                    Err(msg) => errors.push(FieldError::query(name, msg.to_string())),
                }
            }
            once(name, raw, &mut errors);
            cents
        };
        let min_price = money("min_price", &self.min_price);
        let max_price = money("max_price", &self.max_price);
        let in_stock_raw =
            once("in_stock", &self.in_stock, &mut errors).map(str::to_ascii_lowercase);
        let sort_raw = once("sort", &self.sort, &mut errors);
        let q = once("q", &self.q, &mut errors);
        let in_stock = match in_stock_raw.as_deref() {
            None => None,
            Some("true" | "1" | "yes") => Some(true),
            Some("false" | "0" | "no") => Some(false),
            Some(_) => {
                errors.push(FieldError::new(
                    "query",
                    "in_stock",
                    "Input should be a valid boolean",
                    "bool_parsing",
                ));
                None
            }
        };
        let has_q = q.is_some_and(|q| !q.trim().is_empty());
        let sort = match sort_raw {
            None if searching && has_q => Sort::Relevance,
            None | Some("newest") => Sort::Newest,
            Some("price_asc") => Sort::PriceAsc,
            Some("price_desc") => Sort::PriceDesc,
            Some("title") => Sort::Title,
            Some("rating") => Sort::Rating,
            Some("relevance") if searching && has_q => Sort::Relevance,
            Some("relevance") => Sort::Newest,
            Some(_) => {
                errors.push(FieldError::query(
                    "sort",
                    "Input should be newest, price_asc, price_desc, title, rating or relevance",
                ));
                Sort::Newest
            }
        };
        if q.is_some_and(|q| q.chars().count() > 200) {
            errors.push(FieldError::query("q", "At most 200 characters"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        let category_any = if self.category.is_empty() {
            None
        } else {
            let mut ids = Vec::new();
            for c in &self.category {
                if let Some(cat) = store::category_by_id_or_slug(db, c.trim()).await? {
                    ids.push(cat.id);
                }
            }
            Some(ids)
        };
        let category_named_any = if self.categories.is_empty() {
            None
        } else {
            let mut ids = Vec::new();
            for name in &self.categories {
                if let Some(cat) = store::category_by_name(db, name).await? {
                    ids.push(cat.id);
                }
            }
            Some(ids)
        };
        let folded = |v: &Vec<String>| -> Vec<String> {
            v.iter()
                .map(|s| fold(s.trim()))
                .filter(|s| !s.is_empty())
                .collect()
        };
        let filters = Filters {
            category_any,
            category_named_any,
            min_price,
            max_price,
            in_stock,
            title: folded(&self.title),
            description: folded(&self.description),
        };
        Ok((filters, sort, pagination))
    }
}

/// Live products, newest first by default, with every filter of the query combinable.
#[openapi(tag = "Catalog")]
#[get("/?<query..>")]
async fn list_products(
    state: &State<AppState>,
    query: ProductQuery,
) -> ApiResult<JsonBytes<Page<ProductOut>>> {
    let db = &state.db;
    state
        .catalog_cache
        .stamped(
            format!("list {query:?}"),
            |s| store::stamp_current(db, s),
            || async {
                let (filters, sort, pagination) = query.parse(db, Read::List).await?;
                let after = query.cursor(sort)?;
                let (page, stamp) =
                    store::list_stamped(db, &filters, sort, pagination, after.as_ref(), None)
                        .await?;
                Ok((shape_page(db, page).await?, stamp))
            },
        )
        .await
}

/// Full-text search over title, description and category names: every word must match,
/// the last one as a prefix (`red sho` finds "Red Shoes"); ranked by BM25 with title
/// matches above description matches. Every list filter combines with `q`; without `q`
/// this is the list.
#[openapi(tag = "Catalog")]
#[get("/search?<query..>")]
async fn search_products(
    state: &State<AppState>,
    query: ProductQuery,
) -> ApiResult<JsonBytes<Page<ProductOut>>> {
    let db = &state.db;
    state
        .catalog_cache
        .stamped(
            format!("search {query:?}"),
            |s| store::stamp_current(db, s),
            || async {
                let (filters, sort, pagination) = query.parse(db, Read::Search).await?;
                let q = query.q.first().map(|q| q.trim()).filter(|q| !q.is_empty());
                let after = query.cursor(sort)?;
                let (page, stamp) =
                    store::list_stamped(db, &filters, sort, pagination, after.as_ref(), q).await?;
                Ok((shape_page(db, page).await?, stamp))
            },
        )
        .await
}

/// A product by slug, or by id when `product_id` is a number. (`/category` and `/search`
/// are the routes of those names.)
#[openapi(tag = "Catalog")]
#[get("/<product_id>", rank = 3)]
async fn get_product(
    state: &State<AppState>,
    product_id: &str,
) -> ApiResult<JsonBytes<ProductOut>> {
    let slug = product_id;
    let db = &state.db;
    state
        .catalog_cache
        .stamped(
            format!("one {slug}"),
            |s| store::stamp_current(db, s),
            || async {
                let (p, stamp) = store::live_product_stamped(db, slug).await?;
                let p = p.ok_or(StoreError::NotFound("Product"))?;
                Ok((shape_one(db, &p).await?, stamp))
            },
        )
        .await
}

/// Multipart form of a product; every value is text, checked like the JSON form. The
/// fields of one value are read as lists so that one given twice is a 422, not dropped.
#[derive(FromForm)]
pub struct ProductForm<'r> {
    #[field(default = Vec::new())]
    title: Vec<String>,
    #[field(default = Vec::new())]
    description: Vec<String>,
    #[field(default = Vec::new())]
    price: Vec<String>,
    #[field(default = Vec::new())]
    stock_quantity: Vec<String>,
    #[field(default = Vec::new())]
    category_ids: Vec<String>,
    #[field(default = Vec::new())]
    slug: Vec<String>,
    image: Option<Capped<TempFile<'r>>>,
    image_url: Option<Capped<TempFile<'r>>>,
    file: Option<Capped<TempFile<'r>>>,
}

/// A product body: JSON, or multipart with the same fields and an optional image file.
pub struct ProductBody {
    pub fields: ProductIn,
    /// The image's bytes and the form field it came in.
    pub image: Option<(Vec<u8>, &'static str)>,
}

async fn read_capped(
    file: Capped<TempFile<'_>>,
    field: &'static str,
    max: u64,
) -> Result<(Vec<u8>, &'static str), ApiError> {
    if !file.is_complete() {
        return Err(ApiError::PayloadTooLarge(format!(
            "Image larger than {max} bytes"
        )));
    }
    let mut bytes = Vec::new();
    let file = file.into_inner();
    let mut reader = file
        .open()
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read upload: {e}")))?;
    reader
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| ApiError::Internal(format!("cannot read upload: {e}")))?;
    Ok((bytes, field))
}

fn form_error(errors: rocket::form::Errors<'_>) -> ApiError {
    use rocket::form::error::ErrorKind;
    // Rocket reports a body that ended early (a client or the shop's stop cut it) as
    // an invalid length with no bound, which its status calls "too large".
    let cut = |kind: &ErrorKind<'_>| {
        matches!(
            kind,
            ErrorKind::InvalidLength {
                min: None,
                max: None
            }
        )
    };
    if errors.iter().any(|e| cut(&e.kind)) {
        return ApiError::BadRequest("The request body ended before it was complete".into());
    }
    if errors.status() == Status::PayloadTooLarge {
        return ApiError::PayloadTooLarge("Request body too large".into());
    }
    let list = errors
        .iter()
        .map(|e| {
            let name = e.name.as_ref().map(|n| n.to_string()).unwrap_or_default();
            FieldError::new("body", &name, e.to_string(), "value_error")
        })
        .collect();
    ApiError::Validation(list)
}

async fn parse_form<'r>(
    req: &'r Request<'_>,
    data: Data<'r>,
    max: u64,
) -> Result<ProductBody, ApiError> {
    let form = match Form::<ProductForm<'r>>::from_data(req, data).await {
        rocket::data::Outcome::Success(f) => f.into_inner(),
        rocket::data::Outcome::Error((_, errors)) => return Err(form_error(errors)),
        rocket::data::Outcome::Forward(_) => {
            return Err(ApiError::BadRequest("Unreadable form".into()))
        }
    };
    let mut errors = Vec::new();
    let mut single = |name: &str, values: Vec<String>| {
        if values.len() > 1 {
            errors.push(FieldError::new(
                "body",
                name,
                "Give this field once",
                "value_error",
            ));
        }
        values.into_iter().next()
    };
    let title = single("title", form.title);
    let description = single("description", form.description);
    let price = single("price", form.price);
    let stock_quantity = single("stock_quantity", form.stock_quantity);
    let slug = single("slug", form.slug);
    let price = price
        .as_deref()
        .and_then(|p| match p.trim().parse::<f64>() {
            Ok(v) => Some(crate::core::money::MoneyIn(v)),
            Err(_) => {
                errors.push(FieldError::new(
                    "body",
                    "price",
                    "Input must be a number",
                    "float_parsing",
                ));
                None
            }
        });
    let stock_quantity = stock_quantity
        .as_deref()
        .and_then(|q| match q.trim().parse::<i64>() {
            Ok(v) => Some(v),
            Err(_) => {
                errors.push(FieldError::new(
                    "body",
                    "stock_quantity",
                    "Input should be a valid integer",
                    "int_parsing",
                ));
                None
            }
        });
    let mut category_ids = Vec::new();
    for raw in form
        .category_ids
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
    {
        match raw.parse::<u64>() {
            Ok(id) => category_ids.push(id),
            Err(_) => errors.push(FieldError::new(
                "body",
                "category_ids",
                "Input should be a list of integers",
                "int_parsing",
            )),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let fields = ProductIn {
        title,
        description,
        price,
        stock_quantity,
        category_ids: (!form.category_ids.is_empty()).then_some(category_ids),
        slug,
    };
    let file = match (form.image, form.image_url, form.file) {
        (Some(f), _, _) => Some((f, "image")),
        (None, Some(f), _) => Some((f, "image_url")),
        (None, None, Some(f)) => Some((f, "file")),
        _ => None,
    };
    let image = match file {
        Some((f, field)) if !f.is_empty() => Some(read_capped(f, field, max).await?),
        _ => None,
    };
    Ok(ProductBody { fields, image })
}

#[rocket::async_trait]
impl<'r> FromData<'r> for ProductBody {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> rocket::data::Outcome<'r, Self> {
        let max = req
            .rocket()
            .state::<AppState>()
            .map(|s| s.config.uploads.max_bytes)
            .unwrap_or(5 * 1024 * 1024);
        let multipart = req.content_type().is_some_and(|c| c.is_form_data());
        let result = if multipart {
            parse_form(req, data, max).await
        } else {
            match read_json_value(req, data).await {
                Ok(v) => from_value::<ProductIn>(v).map(|fields| ProductBody {
                    fields,
                    image: None,
                }),
                Err(e) => Err(e),
            }
        };
        match result {
            Ok(body) => rocket::data::Outcome::Success(body),
            Err(e) => rocket::data::Outcome::Error((e.stash(req), ())),
        }
    }
}

/// The multipart forms: a whole product with its image, or an image alone.
#[derive(Clone, Copy, PartialEq)]
enum Upload {
    Product,
    Image,
}

fn multipart_schema(form: Upload) -> SchemaObject {
    let mut object = ObjectValidation::default();
    if form == Upload::Product {
        // The limits of the JSON form (`ProductIn`), which the same checks apply.
        let mut title = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            ..Default::default()
        };
        title.string().min_length = Some(1);
        title.string().max_length = Some(200);
        title.string().pattern = Some("\\S".into());
        let mut description = SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            ..Default::default()
        };
        description.string().max_length = Some(10_000);
        let mut stock = SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            ..Default::default()
        };
        stock.number().minimum = Some(0.0);
        stock.number().maximum = Some(1e9);
        for (name, s) in [
            ("title", Schema::Object(title)),
            ("description", Schema::Object(description)),
            (
                "price",
                crate::core::money::Money::json_schema(
                    &mut schemars::gen::SchemaGenerator::default(),
                ),
            ),
            ("stock_quantity", Schema::Object(stock)),
            // The reserved words are left to the JSON form's schema: schemathesis 4.32.5
            // cannot generate a multipart body whose schema has `not`.
            ("slug", schema::slug(&[])),
        ] {
            object.properties.insert(name.into(), s);
        }
        let mut ids = SchemaObject {
            instance_type: Some(InstanceType::Array.into()),
            ..Default::default()
        };
        let mut id = SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            ..Default::default()
        };
        id.number().minimum = Some(1.0);
        id.number().maximum = Some(9_007_199_254_740_991.0);
        ids.array().items = Some(Schema::Object(id).into());
        ids.array().max_items = Some(50);
        object
            .properties
            .insert("category_ids".into(), Schema::Object(ids));
    }
    for name in ["image", "image_url", "file"] {
        object.properties.insert(
            name.into(),
            Schema::Object(SchemaObject {
                instance_type: Some(InstanceType::String.into()),
                format: Some("binary".into()),
                ..Default::default()
            }),
        );
    }
    if form == Upload::Image {
        // The file is required, under any one of its three names.
        object.min_properties = Some(1);
    }
    SchemaObject {
        instance_type: Some(InstanceType::Object.into()),
        object: Some(Box::new(object)),
        ..Default::default()
    }
}

impl<'r> OpenApiFromData<'r> for ProductBody {
    fn request_body(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<RequestBody> {
        let json = gen.json_schema::<ProductIn>();
        let form = multipart_schema(Upload::Product);
        Ok(RequestBody {
            description: Some("JSON, or multipart/form-data with the same fields (`category_ids` repeated) and an image file (`image` or `image_url`)".into()),
            content: [
                ("application/json".to_string(), MediaType { schema: Some(json), ..Default::default() }),
                ("multipart/form-data".to_string(), MediaType { schema: Some(form), ..Default::default() }),
            ]
            .into_iter()
            .collect(),
            required: true,
            ..Default::default()
        })
    }
}

fn changes(fields: &ProductIn, image: Option<String>) -> ProductChanges {
    ProductChanges {
        title: fields.title.clone(),
        description: fields.description.clone(),
        price: fields.price.and_then(|p| p.to_cents().ok()),
        stock_quantity: fields.stock_quantity,
        category_ids: fields.category_ids.clone(),
        slug: fields.slug.clone(),
        image,
    }
}

/// Admin: creates a product from JSON or multipart (with an optional image). The slug
/// comes from the title unless given, and is made unique with a suffix; a given slug
/// that another product holds is a 409.
#[openapi(tag = "Catalog admin")]
#[post("/", data = "<body>")]
async fn create_product(
    state: &State<AppState>,
    _admin: AdminUser,
    body: ProductBody,
) -> ApiResult<Created<Json<ProductOut>>> {
    let mut errors = Vec::new();
    body.fields.check(Edit::Create, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let media = media_dir(state);
    let image = match &body.image {
        Some((bytes, field)) => Some(images::store(
            &media,
            bytes,
            state.config.uploads.max_bytes,
            field,
        )?),
        None => None,
    };
    let result = store::create_product(
        &state.db,
        changes(&body.fields, image.clone()),
        state.clock.now(),
    )
    .await;
    let p = match result {
        Ok(p) => p,
        Err(e) => {
            if let Some(img) = &image {
                images::remove(&media, img);
            }
            return Err(e.into());
        }
    };
    Ok(Created::new(format!("/api/products/{}", p.slug))
        .body(Json(shape_one(&state.db, &p).await?)))
}

async fn apply_update(
    state: &AppState,
    product_id: u64,
    fields: &ProductIn,
    image: Option<(Vec<u8>, &'static str)>,
) -> ApiResult<ProductOut> {
    let mut errors = Vec::new();
    fields.check(Edit::Update, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let media = media_dir(state);
    let new_image = match &image {
        Some((bytes, field)) => Some(images::store(
            &media,
            bytes,
            state.config.uploads.max_bytes,
            field,
        )?),
        None => None,
    };
    match store::update_product(
        &state.db,
        product_id,
        changes(fields, new_image.clone()),
        state.clock.now(),
    )
    .await
    {
        Ok((old, new)) => {
            if let (Some(old_image), Some(_)) = (&old.image, &new_image) {
                images::remove(&media, old_image);
            }
            shape_one(&state.db, &new).await
        }
        Err(e) => {
            if let Some(img) = &new_image {
                images::remove(&media, img);
            }
            Err(e.into())
        }
    }
}

/// Admin: changes any subset of the create fields (JSON or multipart); a new image
/// replaces the old file.
#[openapi(tag = "Catalog admin")]
#[patch("/<product_id>", data = "<body>")]
async fn update_product(
    state: &State<AppState>,
    _admin: AdminUser,
    product_id: u64,
    body: ProductBody,
) -> ApiResult<Json<ProductOut>> {
    Ok(Json(
        apply_update(state, product_id, &body.fields, body.image).await?,
    ))
}

/// An image upload: multipart with the file as `file` (`image` or `image_url` accepted).
pub struct ImageUpload(Option<(Vec<u8>, &'static str)>);

#[rocket::async_trait]
impl<'r> FromData<'r> for ImageUpload {
    type Error = ();

    async fn from_data(req: &'r Request<'_>, data: Data<'r>) -> rocket::data::Outcome<'r, Self> {
        let max = req
            .rocket()
            .state::<AppState>()
            .map(|s| s.config.uploads.max_bytes)
            .unwrap_or(5 * 1024 * 1024);
        if !req.content_type().is_some_and(|c| c.is_form_data()) {
            let e = ApiError::UnsupportedMediaType("Send the image as multipart/form-data".into());
            return rocket::data::Outcome::Error((e.stash(req), ()));
        }
        match parse_form(req, data, max).await {
            Ok(body) => rocket::data::Outcome::Success(ImageUpload(body.image)),
            Err(e) => rocket::data::Outcome::Error((e.stash(req), ())),
        }
    }
}

impl<'r> OpenApiFromData<'r> for ImageUpload {
    fn request_body(_gen: &mut OpenApiGenerator) -> rocket_okapi::Result<RequestBody> {
        let form = multipart_schema(Upload::Image);
        Ok(RequestBody {
            content: [(
                "multipart/form-data".to_string(),
                MediaType {
                    schema: Some(form),
                    ..Default::default()
                },
            )]
            .into_iter()
            .collect(),
            required: true,
            ..Default::default()
        })
    }
}

/// Admin: sets a product's image (PNG, JPEG, WebP or GIF, recognised by content; at most
/// `uploads.max_bytes` and 10,000 px a side). No file: 422; too large: 413; another
/// type: 415.
#[openapi(tag = "Catalog admin")]
#[post("/<product_id>/image", data = "<upload>")]
async fn upload_image(
    state: &State<AppState>,
    _admin: AdminUser,
    product_id: u64,
    upload: ImageUpload,
) -> ApiResult<Json<ProductOut>> {
    let image = upload.0.ok_or_else(|| {
        ApiError::validation(FieldError::new("body", "file", "Field required", "missing"))
    })?;
    Ok(Json(
        apply_update(state, product_id, &ProductIn::default(), Some(image)).await?,
    ))
}

/// Admin: deletes a product. It leaves listing and search at once; one that past orders
/// name is kept archived so their history and the export stay whole.
#[openapi(tag = "Catalog admin")]
#[delete("/<product_id>")]
async fn delete_product(
    state: &State<AppState>,
    _admin: AdminUser,
    product_id: u64,
) -> ApiResult<NoContent> {
    match store::delete_product(&state.db, product_id, state.clock.now()).await? {
        Deleted::Removed(p) => {
            if let Some(img) = &p.image {
                images::remove(&media_dir(state), img);
            }
        }
        Deleted::Archived(_) => {}
    }
    Ok(NoContent)
}

/// Every category with its number of live products.
#[openapi(tag = "Categories")]
#[get("/category")]
async fn list_categories(state: &State<AppState>) -> ApiResult<Json<Vec<CategoryOut>>> {
    Ok(Json(
        store::categories(&state.db)
            .await?
            .iter()
            .map(CategoryOut::from)
            .collect(),
    ))
}

/// Admin: creates a category; a name already used (ignoring case) is a 409.
#[openapi(tag = "Categories")]
#[post("/category", data = "<body>")]
async fn create_category(
    state: &State<AppState>,
    _admin: AdminUser,
    body: ApiJson<CategoryIn>,
) -> ApiResult<Created<Json<CategoryOut>>> {
    let c = store::create_category(&state.db, &body.name).await?;
    Ok(Created::new(format!("/api/products/category/{}", c.id)).body(Json(CategoryOut::from(&c))))
}

/// Admin: renames a category (its slug follows).
#[openapi(tag = "Categories")]
#[patch("/category/<category_id>", data = "<body>")]
async fn rename_category(
    state: &State<AppState>,
    _admin: AdminUser,
    category_id: u64,
    body: ApiJson<CategoryIn>,
) -> ApiResult<Json<CategoryOut>> {
    let c = store::rename_category(&state.db, category_id, &body.name).await?;
    Ok(Json(CategoryOut::from(&c)))
}

/// Admin: deletes a category; its products lose it and nothing else.
#[openapi(tag = "Categories")]
#[delete("/category/<category_id>")]
async fn delete_category(
    state: &State<AppState>,
    _admin: AdminUser,
    category_id: u64,
) -> ApiResult<NoContent> {
    store::delete_category(&state.db, category_id, state.clock.now()).await?;
    Ok(NoContent)
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) = openapi_get_routes_spec![settings:
        list_products, search_products, get_product, create_product, update_product,
        upload_image, delete_product, list_categories, create_category, rename_category,
        delete_category
    ];
    // A slug or an id; the words of the static routes next to it are not products.
    openapi::param_schema(
        &mut spec,
        ("get", "/{product_id}"),
        "path",
        "product_id",
        serde_json::json!({
            "type": "string", "minLength": 1,
            "not": {"enum": ["category", "search"]},
            "description": "The product's slug, or its id"
        }),
    );
    // A new product needs a title and a price (an update takes any subset).
    openapi::require_body_fields(&mut spec, "post", "/", &["title", "price"]);
    const SLUG: &str = "A slug that another product holds";
    const IMAGE: &str = "An image that is not PNG, JPEG, WebP or GIF";
    openapi::answers(
        &mut spec,
        &[
            ("post", "/", 409, SLUG),
            ("post", "/", 415, IMAGE),
            ("patch", "/{product_id}", 409, SLUG),
            ("patch", "/{product_id}", 415, IMAGE),
            (
                "post",
                "/{product_id}/image",
                415,
                "Not multipart, or an image that is not PNG, JPEG, WebP or GIF",
            ),
            ("post", "/category", 409, "A category of that name exists"),
            (
                "patch",
                "/category/{category_id}",
                409,
                "A category of that name exists",
            ),
        ],
    );
    (routes, spec)
}

/// A stored image, with headers that stop browsers treating it as anything else.
pub struct MediaFile {
    bytes: Vec<u8>,
    content_type: &'static str,
    etag: String,
}

impl<'r> rocket::response::Responder<'r, 'static> for MediaFile {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let mut res = Response::build();
        res.header(Header::new("ETag", self.etag.clone()))
            .header(Header::new(
                "Cache-Control",
                "public, max-age=31536000, immutable",
            ))
            .header(Header::new("X-Content-Type-Options", "nosniff"))
            .header(Header::new("Content-Security-Policy", "sandbox"));
        if req.headers().get("If-None-Match").any(|t| t == self.etag) {
            res.status(Status::NotModified);
        } else {
            let ct = ContentType::parse_flexible(self.content_type).unwrap_or(ContentType::Binary);
            res.header(ct)
                .sized_body(self.bytes.len(), Cursor::new(self.bytes));
        }
        res.ok()
    }
}

#[get("/media/<name>")]
async fn media(state: &State<AppState>, name: &str) -> ApiResult<MediaFile> {
    let missing = || ApiError::NotFound("Not found".into());
    if !images::is_generated_name(name) {
        return Err(missing());
    }
    let bytes = tokio::fs::read(media_dir(state).join(name))
        .await
        .map_err(|_| missing())?;
    Ok(MediaFile {
        content_type: images::content_type_of(name).ok_or_else(missing)?,
        etag: format!("\"{}\"", &name[..32]),
        bytes,
    })
}

pub fn media_routes() -> Vec<rocket::Route> {
    rocket::routes![media]
}
