//! Reading a shop out of PostgreSQL (shopbox's own tables, or the FastAPI reference
//! backend's through `reference`), then writing it into the data folder.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::time::Instant;

use futures_util::{pin_mut, StreamExt};
use tokio_postgres::binary_copy::{BinaryCopyOutRow, BinaryCopyOutStream};
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::Client;

use super::source::{cents, micros, Changes, Queries};
use super::{
    connect, current_tables, is_shopbox_layout, pg_error, rate, reference, runtime, shown,
};
use crate::account::model::User;
use crate::cart::model::{Cart, CartLine};
use crate::commands::{finish_bar, progress_bar};
use crate::config::Config;
use crate::db::Db;
use crate::order::model::{Order, OrderItem, OrderStatus};
use crate::payment::model::{Payment, PaymentStatus};
use crate::product::images::is_generated_name;
use crate::product::model::{Category, Product};
use crate::review::model::Review;
use crate::shipping::model::{Address, AddressFields, ShipState, Shipping};
use crate::transfer::{self, ShopData};
use indicatif::MultiProgress;

/// Which tables the source database holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// SPEC.md's tables, as `export-pg` writes them.
    Shopbox,
    /// The FastAPI reference backend's tables (REFERENCE_SCHEMA.md).
    Reference,
}

fn shopbox_queries() -> Queries {
    let m = micros;
    Queries {
        users: format!(
            "SELECT id::int8, email::text, hashed_password::text, name::text, is_active, \
             is_admin, is_verified, {}, {} FROM users ORDER BY id",
            m("created_at"),
            m("updated_at")
        ),
        categories: "SELECT id::int8, name::text, slug::text FROM categories ORDER BY id".into(),
        products: format!(
            "SELECT id::int8, title::text, description::text, slug::text, {}, \
             stock_quantity::int8, image_url::text, {}, {}, {} FROM products ORDER BY id",
            cents("price"),
            m("archived_at"),
            m("created_at"),
            m("updated_at")
        ),
        product_categories: "SELECT product_id::int8, category_id::int8 \
                             FROM product_categories ORDER BY product_id, category_id"
            .into(),
        cart_items: "SELECT id::int8, user_id::int8, product_id::int8, quantity::int8 \
                     FROM cart_items ORDER BY id"
            .into(),
        addresses: "SELECT id::int8, user_id::int8, name::text, phone::text, \
                    address_line1::text, address_line2::text, city::text, state::text, \
                    postal_code::text, country::text, is_deleted FROM shipping_addresses \
                    ORDER BY id"
            .into(),
        orders: format!(
            "SELECT id::int8, user_id::int8, {}, status::text, {}, {}, \
             shipping_address_id::int8, ship_name::text, ship_phone::text, \
             ship_address_line1::text, ship_address_line2::text, ship_city::text, \
             ship_state::text, ship_postal_code::text, ship_country::text \
             FROM orders ORDER BY id",
            cents("total_price"),
            m("created_at"),
            m("updated_at")
        ),
        order_items: format!(
            "SELECT id::int8, order_id::int8, product_id::int8, title::text, \
             quantity::int8, {} FROM order_items ORDER BY id",
            cents("price")
        ),
        payments: format!(
            "SELECT id::int8, order_id::int8, user_id::int8, {}, status::text, \
             payment_gateway::text, transaction_id::text, is_paid, {} \
             FROM payments ORDER BY id",
            cents("amount"),
            m("created_at")
        ),
        shippings: format!(
            "SELECT id::int8, order_id::int8, status::text, {} \
             FROM shipping_statuses ORDER BY id",
            m("updated_at")
        ),
        history: format!(
            "SELECT id::int8, order_id::int8, status::text, {} \
             FROM shipping_status_history ORDER BY order_id, id",
            m("at")
        ),
        reviews: Some(format!(
            "SELECT id::int8, product_id::int8, user_id::int8, rating::int8, title::text, \
             body::text, {}, {} FROM reviews ORDER BY id",
            m("created_at"),
            m("updated_at")
        )),
    }
}

/// Recognises the source's tables.
async fn layout(client: &Client) -> Result<Layout, String> {
    let tables = current_tables(client).await.map_err(pg_error)?;
    let has = |t: &str| tables.iter().any(|n| n == t);
    if is_shopbox_layout(&tables) {
        Ok(Layout::Shopbox)
    } else if has("product_category") && has("shipping_status") {
        Ok(Layout::Reference)
    } else {
        Err(
            "the database holds neither shopbox's tables (from export-pg) nor the FastAPI \
             reference backend's; nothing was imported"
                .into(),
        )
    }
}

/// A row reader that notes problems instead of stopping at the first.
struct Row<'a> {
    row: &'a BinaryCopyOutRow,
    table: &'static str,
    bad: &'a mut Vec<String>,
    changes: &'a mut Changes,
}

impl Row<'_> {
    fn id(&self) -> u64 {
        self.row.try_get::<i64>(0).map(|v| v as u64).unwrap_or(0)
    }

    fn opt<'b, T: FromSql<'b>>(&'b self, i: usize) -> Option<T> {
        self.row.try_get::<Option<T>>(i).ok().flatten()
    }

    /// A required whole number; a null is a bad row.
    fn int(&mut self, i: usize, column: &str) -> i64 {
        match self.row.try_get::<Option<i64>>(i).ok().flatten() {
            Some(v) => v,
            None => {
                let id = self.id();
                self.bad
                    .push(format!("{} id {id}: {column} is null", self.table));
                0
            }
        }
    }

    /// A required reference; zero or negative ids are bad rows.
    fn id_at(&mut self, i: usize, column: &str) -> u64 {
        let v = self.int(i, column);
        if v < 0 {
            let id = self.id();
            self.bad
                .push(format!("{} id {id}: {column} {v} is negative", self.table));
        }
        v.max(0) as u64
    }

    /// Text, where a null becomes empty (and is noted).
    fn text(&mut self, i: usize, column: &str) -> String {
        match self.row.try_get::<Option<String>>(i).ok().flatten() {
            Some(v) => v,
            None => {
                let id = self.id();
                self.changes
                    .note(format!("{}.{column}: null became empty", self.table), id);
                String::new()
            }
        }
    }

    fn flag(&self, i: usize) -> bool {
        self.row
            .try_get::<Option<bool>>(i)
            .ok()
            .flatten()
            .unwrap_or(false)
    }

    fn status<S: serde::de::DeserializeOwned>(&mut self, text: &str) -> Option<S> {
        let parsed = serde_json::from_value(serde_json::Value::String(text.to_string())).ok();
        if parsed.is_none() {
            let id = self.id();
            self.bad
                .push(format!("{} id {id}: unknown status {text:?}", self.table));
        }
        parsed
    }
}

const I8: Type = Type::INT8;
const T: Type = Type::TEXT;
const B: Type = Type::BOOL;

/// Reads queries of one source, noting bad rows and changes as it goes.
struct Reader<'a> {
    client: &'a Client,
    bars: &'a MultiProgress,
    bad: Vec<String>,
    changes: Changes,
}

impl Reader<'_> {
    /// Streams one query's rows through `each`, each row named as `label` in messages,
    /// with a progress bar over the rows of the source's `table`.
    async fn read(
        &mut self,
        table: &str,
        label: &'static str,
        sql: &str,
        types: &[Type],
        mut each: impl FnMut(&mut Row<'_>),
    ) -> Result<u64, String> {
        let expected: i64 = self
            .client
            .query_one(&format!("SELECT count(*) FROM {table}"), &[])
            .await
            .map_err(pg_error)?
            .get(0);
        let bar = self.bars.add(progress_bar(expected.max(0) as u64, table));
        let stream = self
            .client
            .copy_out(&format!("COPY ({sql}) TO STDOUT (FORMAT binary)"))
            .await
            .map_err(|e| format!("reading {table}: {}", pg_error(e)))?;
        let rows = BinaryCopyOutStream::new(stream, types);
        pin_mut!(rows);
        let mut n = 0u64;
        while let Some(row) = rows.next().await {
            let row = row.map_err(|e| format!("reading {table}: {}", pg_error(e)))?;
            each(&mut Row {
                row: &row,
                table: label,
                bad: &mut self.bad,
                changes: &mut self.changes,
            });
            n += 1;
            if n.is_multiple_of(1024) {
                bar.inc(1024);
            }
        }
        bar.set_position(n);
        bar.finish();
        Ok(n)
    }
}

/// Where each record sits in `items`, by its key.
fn positions<T>(items: &[T], key: impl Fn(&T) -> u64) -> HashMap<u64, usize> {
    items.iter().enumerate().map(|(i, t)| (key(t), i)).collect()
}

/// The source's layout and the queries that read it.
struct Source<'a> {
    layout: Layout,
    queries: &'a Queries,
}

impl Source<'_> {
    fn reference(&self) -> bool {
        self.layout == Layout::Reference
    }

    /// The source's name for one of SPEC.md's tables.
    fn table(&self, shopbox: &'static str, theirs: &'static str) -> &'static str {
        match self.layout {
            Layout::Shopbox => shopbox,
            Layout::Reference => theirs,
        }
    }
}

/// Reads every table into a `ShopData` on two connections, each on its own thread (the
/// catalog with shipping and reviews, and the orders with their payments); problems that
/// make a row meaningless go to `bad`.
fn read_shop(
    rt: &tokio::runtime::Runtime,
    clients: [&Client; 2],
    layout: Layout,
    queries: &Queries,
    changes: &mut Changes,
    bad: &mut Vec<String>,
) -> Result<ShopData, String> {
    let bars = MultiProgress::new();
    let source = Source { layout, queries };
    let reader = |client| Reader {
        client,
        bars: &bars,
        bad: Vec::new(),
        changes: Changes::default(),
    };
    let (first, second) = std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            rt.block_on(async {
                let (mut r, mut data) = (reader(clients[0]), ShopData::default());
                read_catalog(&mut r, &source, &mut data).await?;
                read_fulfilment(&mut r, &source, &mut data).await?;
                Ok((data, r))
            })
        });
        let second = scope.spawn(|| {
            rt.block_on(async {
                let (mut r, mut data) = (reader(clients[1]), ShopData::default());
                read_orders(&mut r, &source, &mut data).await?;
                Ok((data, r))
            })
        });
        let failed = || Err("a reading thread failed".to_string());
        (
            first.join().unwrap_or_else(|_| failed()),
            second.join().unwrap_or_else(|_| failed()),
        )
    });
    let (mut data, first) = first?;
    let (orders, second) = second?;
    data.addresses = orders.addresses;
    data.orders = orders.orders;
    data.payments = orders.payments;
    for reader in [first, second] {
        bad.extend(reader.bad);
        changes.absorb(reader.changes);
    }
    if !bars.is_hidden() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\n");
    }
    Ok(data)
}

/// Users, categories, products and carts.
async fn read_catalog(
    reader: &mut Reader<'_>,
    source: &Source<'_>,
    data: &mut ShopData,
) -> Result<(), String> {
    let (reference, q) = (source.reference(), source.queries);

    reader
        .read(
            "users",
            "users",
            &q.users,
            &[I8, T, T, T, B, B, B, I8, I8],
            |r| {
                data.users.push(User {
                    id: r.id(),
                    email: r.text(1, "email"),
                    hashed_password: r.text(2, "hashed_password"),
                    name: r.text(3, "name"),
                    is_active: r.flag(4),
                    is_admin: r.flag(5),
                    is_verified: r.flag(6),
                    created_at: r.int(7, "created_at"),
                    updated_at: r.int(8, "updated_at"),
                    tokens_valid_after: 0,
                });
            },
        )
        .await?;

    reader
        .read(
            "categories",
            "categories",
            &q.categories,
            &[I8, T, T],
            |r| {
                data.categories.push(Category {
                    id: r.id(),
                    name: r.text(1, "name"),
                    // The reference has no slug: `reference::fix` makes one from the name.
                    slug: r.opt::<String>(2).unwrap_or_default(),
                    product_count: 0,
                });
            },
        )
        .await?;

    let types = [I8, T, T, T, I8, I8, T, I8, I8, I8];
    reader
        .read("products", "products", &q.products, &types, |r| {
            let id = r.id();
            let image = r
                .opt::<String>(6)
                .and_then(|url| image_name(&url, id, r.changes));
            data.products.push(Product {
                id,
                title: r.text(1, "title"),
                description: r.text(2, "description"),
                slug: r.text(3, "slug"),
                price: r.int(4, "price"),
                stock_quantity: r.int(5, "stock_quantity"),
                image,
                category_ids: Vec::new(),
                rating_sum: 0,
                rating_count: 0,
                archived_at: r.opt(7),
                referenced: false,
                created_at: r.int(8, "created_at"),
                updated_at: r.int(9, "updated_at"),
            });
        })
        .await?;

    let index = positions(&data.products, |p| p.id);
    reader
        .read(
            source.table("product_categories", "product_category"),
            "product_categories",
            &q.product_categories,
            &[I8, I8],
            |r| {
                let product = r.id_at(0, "product_id");
                let category = r.id_at(1, "category_id");
                match index.get(&product) {
                    Some(&i) => data.products[i].category_ids.push(category),
                    None => r.bad.push(format!(
                "product_categories: product {product} (with category {category}) does not exist"
            )),
                }
            },
        )
        .await?;

    let mut carts: BTreeMap<u64, Cart> = BTreeMap::new();
    reader
        .read(
            "cart_items",
            "cart_items",
            &q.cart_items,
            &[I8, I8, I8, I8],
            |r| {
                let id = r.id();
                let user_id = r.id_at(1, "user_id");
                let quantity = r.int(3, "quantity");
                let Some(product_id) = r.opt::<i64>(2) else {
                    r.changes
                        .note("cart_items: dropped, the product is gone", id);
                    return;
                };
                if quantity < 1 && reference {
                    r.changes
                        .note("cart_items: dropped, the quantity was below 1", id);
                    return;
                }
                let cart = carts.entry(user_id).or_insert_with(|| Cart {
                    user_id,
                    lines: Vec::new(),
                });
                match cart
                    .lines
                    .iter_mut()
                    .find(|l| l.product_id == product_id as u64)
                {
                    Some(line) if reference => {
                        line.quantity += quantity;
                        r.changes
                            .note("cart_items: merged into the same product's line", id);
                    }
                    _ => cart.lines.push(CartLine {
                        id,
                        product_id: product_id as u64,
                        quantity,
                    }),
                }
            },
        )
        .await?;
    data.carts = carts.into_values().collect();
    Ok(())
}

/// Addresses, and orders with their items and payments.
async fn read_orders(
    reader: &mut Reader<'_>,
    source: &Source<'_>,
    data: &mut ShopData,
) -> Result<(), String> {
    let (reference, q) = (source.reference(), source.queries);

    let types = [I8, I8, T, T, T, T, T, T, T, T, B];
    reader
        .read(
            "shipping_addresses",
            "shipping_addresses",
            &q.addresses,
            &types,
            |r| {
                data.addresses.push(Address {
                    id: r.id(),
                    user_id: r.id_at(1, "user_id"),
                    fields: AddressFields {
                        name: r.text(2, "name"),
                        phone: r.text(3, "phone"),
                        address_line1: r.text(4, "address_line1"),
                        address_line2: r.text(5, "address_line2"),
                        city: r.text(6, "city"),
                        state: r.text(7, "state"),
                        postal_code: r.text(8, "postal_code"),
                        country: r.text(9, "country"),
                    },
                    deleted: r.flag(10),
                });
            },
        )
        .await?;

    let types = [I8, I8, I8, T, I8, I8, I8, T, T, T, T, T, T, T, T];
    reader
        .read("orders", "orders", &q.orders, &types, |r| {
            let id = r.id();
            let raw = r.text(3, "status");
            let status = if reference && raw == "pending" {
                r.changes.note("orders: pending became payment_failed", id);
                Some(OrderStatus::PaymentFailed)
            } else {
                r.status(&raw)
            };
            let address_id = r.opt::<i64>(6);
            if address_id.is_none() {
                r.bad
                    .push(format!("orders id {id}: it has no shipping address"));
            }
            let order = Order {
                id,
                user_id: r.id_at(1, "user_id"),
                status: status.unwrap_or(OrderStatus::PaymentFailed),
                total_price: r.int(2, "total_price"),
                created_at: r.int(4, "created_at"),
                updated_at: r.int(5, "updated_at"),
                shipping_address_id: address_id.unwrap_or(0).max(0) as u64,
                address: AddressFields {
                    name: r.text(7, "ship_name"),
                    phone: r.text(8, "ship_phone"),
                    address_line1: r.text(9, "ship_address_line1"),
                    address_line2: r.text(10, "ship_address_line2"),
                    city: r.text(11, "ship_city"),
                    state: r.text(12, "ship_state"),
                    postal_code: r.text(13, "ship_postal_code"),
                    country: r.text(14, "ship_country"),
                },
                items: Vec::new(),
                payment_id: 0,
            };
            data.orders.push(order);
        })
        .await?;

    let index = positions(&data.orders, |o| o.id);
    let types = [I8, I8, I8, T, I8, I8];
    reader
        .read("order_items", "order_items", &q.order_items, &types, |r| {
            let id = r.id();
            let order_id = r.id_at(1, "order_id");
            let product_id = r.opt::<i64>(2).map(|v| v.max(0) as u64);
            if product_id.is_none() && reference {
                r.changes.note(
                    "order_items: the product is gone, titled \"Deleted product\"",
                    id,
                );
            }
            let item = OrderItem {
                id,
                product_id: product_id.unwrap_or(0),
                title: r.text(3, "title"),
                quantity: r.int(4, "quantity"),
                price: r.int(5, "price"),
            };
            match index.get(&order_id) {
                Some(&i) => data.orders[i].items.push(item),
                None => r.bad.push(format!(
                    "order_items id {id}: order {order_id} does not exist"
                )),
            }
        })
        .await?;

    let status_of: HashMap<u64, OrderStatus> =
        data.orders.iter().map(|o| (o.id, o.status)).collect();
    let types = [I8, I8, I8, I8, T, T, T, B, I8];
    reader
        .read("payments", "payments", &q.payments, &types, |r| {
            let id = r.id();
            let order_id = r.id_at(1, "order_id");
            let raw = r.text(4, "status");
            let status = if reference {
                Some(reference::payment_status(
                    &raw,
                    status_of.get(&order_id).copied(),
                    id,
                    r.changes,
                ))
            } else {
                r.status::<PaymentStatus>(&raw)
            };
            data.payments.push(Payment {
                id,
                order_id,
                user_id: r.id_at(2, "user_id"),
                amount: r.int(3, "amount"),
                status: status.unwrap_or(PaymentStatus::Failed),
                payment_gateway: r.text(5, "payment_gateway"),
                transaction_id: r.text(6, "transaction_id"),
                is_paid: r.flag(7),
                created_at: r.int(8, "created_at"),
            });
        })
        .await?;
    Ok(())
}

/// Shipping statuses with their history, and reviews.
async fn read_fulfilment(
    reader: &mut Reader<'_>,
    source: &Source<'_>,
    data: &mut ShopData,
) -> Result<(), String> {
    let q = source.queries;
    reader
        .read(
            source.table("shipping_statuses", "shipping_status"),
            "shipping_statuses",
            &q.shippings,
            &[I8, I8, T, I8],
            |r| {
                let raw = r.text(2, "status");
                let status = r.status::<ShipState>(&raw);
                data.shippings.push(Shipping {
                    id: r.id(),
                    order_id: r.id_at(1, "order_id"),
                    status: status.unwrap_or(ShipState::Pending),
                    updated_at: r.int(3, "updated_at"),
                    history: Vec::new(),
                });
            },
        )
        .await?;

    let index = positions(&data.shippings, |s| s.order_id);
    reader
        .read(
            source.table("shipping_status_history", "shipping_status"),
            "shipping_status_history",
            &q.history,
            &[I8, I8, T, I8],
            |r| {
                let id = r.id();
                let order_id = r.id_at(1, "order_id");
                let raw = r.text(2, "status");
                let status = r.status::<ShipState>(&raw);
                let at = r.int(3, "at");
                match (index.get(&order_id), status) {
                    (Some(&i), Some(status)) => data.shippings[i].history.push((status, at)),
                    (None, _) => r.bad.push(format!(
                        "shipping_status_history id {id}: order {order_id} has no shipping status"
                    )),
                    _ => {}
                }
            },
        )
        .await?;

    let Some(reviews) = &q.reviews else {
        return Ok(());
    };
    let types = [I8, I8, I8, I8, T, T, I8, I8];
    reader
        .read("reviews", "reviews", reviews, &types, |r| {
            let id = r.id();
            let rating = r.int(3, "rating");
            if !(1..=5).contains(&rating) {
                r.bad
                    .push(format!("reviews id {id}: rating {rating} is not 1 to 5"));
            }
            data.reviews.push(Review {
                id,
                product_id: r.id_at(1, "product_id"),
                user_id: r.id_at(2, "user_id"),
                user_name: String::new(),
                rating: rating.clamp(1, 5) as u8,
                title: r.text(4, "title"),
                body: r.text(5, "body"),
                created_at: r.int(6, "created_at"),
                updated_at: r.int(7, "updated_at"),
            });
        })
        .await?;
    Ok(())
}

/// The media file name of an image URL (`/media/<name>`, or the reference's
/// `media/images/<name>`); a name shopbox would not serve is dropped (and noted).
fn image_name(url: &str, product: u64, changes: &mut Changes) -> Option<String> {
    let name = url.rsplit('/').next().unwrap_or("").to_ascii_lowercase();
    if is_generated_name(&name) {
        Some(name)
    } else {
        changes.note(
            "products: image dropped, its file name is not one shopbox serves",
            product,
        );
        None
    }
}

/// Copies the products' image files from `from` (when given) into the media folder, and
/// notes those still missing there. Files already in the media folder are kept.
fn bring_images(
    data: &ShopData,
    from: Option<&Path>,
    media: &Path,
    changes: &mut Changes,
) -> Result<(), String> {
    for p in &data.products {
        let Some(name) = &p.image else {
            continue;
        };
        let target = media.join(name);
        if target.exists() {
            continue;
        }
        if let Some(source) = from.map(|d| d.join(name)).filter(|f| f.is_file()) {
            std::fs::copy(&source, &target)
                .map_err(|e| format!("cannot copy {}: {e}", source.display()))?;
            continue;
        }
        changes.note(
            format!(
                "products: image file missing from {} (copy it there, or use --media)",
                media.display()
            ),
            p.id,
        );
    }
    Ok(())
}

pub fn import(
    config: &Config,
    url: &str,
    force: bool,
    media_from: Option<&Path>,
) -> Result<String, String> {
    let db = crate::open_data(config).map_err(|e| e.0)?;
    let had_data = !transfer::is_empty(&db).map_err(|e| e.to_string())?;
    if had_data && !force {
        return Err(format!(
            "the data folder {} already holds a shop; nothing was imported (add --force to \
             replace it)",
            config.data_dir.display()
        ));
    }
    let started = Instant::now();
    let rt = runtime()?;
    let mut changes = Changes::default();
    let mut bad = Vec::new();
    let (client, second, layout) = rt.block_on(async {
        let ca_file = config.database.ca_file.as_deref();
        let client = connect(url, ca_file).await?;
        let layout = layout(&client).await?;
        Ok::<_, String>((client, connect(url, ca_file).await?, layout))
    })?;
    let queries = match layout {
        Layout::Shopbox => shopbox_queries(),
        Layout::Reference => reference::queries(),
    };
    let mut data = read_shop(
        &rt,
        [&client, &second],
        layout,
        &queries,
        &mut changes,
        &mut bad,
    )?;
    if layout == Layout::Reference {
        rt.block_on(reference::note_source_changes(&client, &mut changes))?;
    }
    drop((client, second));
    if layout == Layout::Reference {
        reference::fix(&mut data, &mut changes);
    }
    if bad.is_empty() {
        if let Err(invalid) = data.check() {
            bad = invalid.0;
        }
    }
    if !bad.is_empty() {
        return Err(format!(
            "nothing was imported: {} problem(s) in {}:\n{}",
            bad.len(),
            shown(url),
            transfer::Invalid(bad).to_string().trim_end()
        ));
    }
    bring_images(
        &data,
        media_from,
        &config.data_dir.join("media"),
        &mut changes,
    )?;

    let rows = data.total_rows();
    write_and_swap(config, &db, &data)?;
    drop(db);

    let source = match layout {
        Layout::Shopbox => "shopbox tables",
        Layout::Reference => "the FastAPI reference schema",
    };
    let mut out = format!(
        "imported {source} from {} into {}: {}\n",
        shown(url),
        config.data_dir.display(),
        rate(rows, started.elapsed())
    );
    for (table, n) in data.row_counts() {
        out.push_str(&format!("  {table:<24} {n:>10}\n"));
    }
    if had_data {
        out.push_str("the shop that was in the folder before was replaced (--force)\n");
    }
    if changes.is_empty() {
        out.push_str("no row needed a change\n");
    } else {
        out.push_str("changes made on the way in:\n");
        for line in changes.lines() {
            out.push_str(&format!("  {line}\n"));
        }
    }
    Ok(out.trim_end().to_string())
}

/// Writes the shop into a new database beside the current one, then swaps the two
/// folders, so the data folder holds either the old shop or the whole new one.
fn write_and_swap(config: &Config, current: &Db, data: &ShopData) -> Result<(), String> {
    let staging = config.data_dir.join("import-staging");
    let io = |what: &str, e: std::io::Error| format!("{what}: {e}");
    if staging.exists() {
        std::fs::remove_dir_all(&staging)
            .map_err(|e| io("cannot clear the folder of an earlier import", e))?;
    }
    let fresh = Db::open(
        &staging,
        config.cache_capacity_mb * 1024 * 1024,
        &crate::schema(),
    )
    .map_err(|e| e.0)?;
    let steps = indicatif::ProgressBar::new_spinner();
    steps.enable_steady_tick(std::time::Duration::from_millis(100));
    data.write_new(&fresh, &|tree| steps.set_message(format!("writing {tree}")))
        .map_err(|e| format!("cannot write the new database: {e}"))?;
    finish_bar(&steps, Some("written the new database"));
    drop(fresh);
    current
        .flush_blocking()
        .map_err(|e| format!("cannot flush the current database: {e}"))?;
    crate::db::swap_folders(current.path(), &staging.join("db"))
        .map_err(|e| io("cannot put the new database in place", e))?;
    // The old database (now in the staging folder) goes once this process lets go of it.
    let _ = std::fs::remove_dir_all(&staging);
    Ok(())
}
