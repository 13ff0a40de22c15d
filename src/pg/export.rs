//! Writing a `ShopData` into the data model's tables with binary COPY, in one transaction.

use std::collections::HashMap;
use std::pin::Pin;

use rust_decimal::Decimal;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;
use tokio_postgres::Transaction;

use super::schema::{self, Table};
use super::{connect, pg_error, time_of};
use crate::commands::{finish_bar, Progress};
use crate::db::Db;
use crate::transfer::ShopData;

fn money(cents: i64) -> Decimal {
    Decimal::new(cents, 2)
}

/// One table's COPY, with its progress bar.
struct Copy<'a> {
    writer: Pin<Box<BinaryCopyInWriter>>,
    bar: indicatif::ProgressBar,
    table: &'a Table,
}

impl<'a> Copy<'a> {
    async fn start(
        tx: &Transaction<'_>,
        tables: &'a [Table],
        data: &ShopData,
        progress: &dyn Progress,
        name: &str,
    ) -> Result<Copy<'a>, String> {
        let (table, rows) = (self::table(tables, name), count(data, name));
        let sql = format!(
            "COPY {} ({}) FROM STDIN (FORMAT binary)",
            table.name,
            table.column_list()
        );
        let sink = tx.copy_in(&sql).await.map_err(pg_error)?;
        Ok(Copy {
            writer: Box::pin(BinaryCopyInWriter::new(sink, &table.wire_types())),
            bar: progress.bar(rows, table.name),
            table,
        })
    }

    async fn row(&mut self, values: &[&(dyn ToSql + Sync)]) -> Result<(), String> {
        self.writer
            .as_mut()
            .write(values)
            .await
            .map_err(|e| format!("writing {}: {}", self.table.name, pg_error(e)))?;
        self.bar.inc(1);
        Ok(())
    }

    async fn finish(mut self) -> Result<u64, String> {
        let n = self.writer.as_mut().finish().await.map_err(pg_error)?;
        finish_bar(&self.bar, None);
        Ok(n)
    }
}

/// Reads the shop, creates the tables and loads them; answers the row count of each
/// table. The sales half of the shop is decoded while the catalog half is copied and
/// constrained.
pub async fn export(
    db: Db,
    url: &str,
    ca_file: Option<&std::path::Path>,
    drop_existing: bool,
    progress: &dyn Progress,
) -> Result<Vec<(&'static str, u64)>, String> {
    let store = |e: crate::db::StoreError| e.to_string();
    let reader = db.clone();
    let sales = tokio::task::spawn_blocking(move || ShopData::read_sales(&reader));
    let mut client = connect(url, ca_file).await?;
    let mut data = ShopData::read_catalog(&db).map_err(store)?;
    let tx = client.transaction().await.map_err(pg_error)?;
    let tables = schema::tables();
    prepare(&tx, &tables, drop_existing).await?;
    tx.batch_execute("SET LOCAL maintenance_work_mem = '256MB'")
        .await
        .map_err(pg_error)?;
    let mut copied = copy_catalog(&tx, &tables, &data, progress).await?;
    finish(&tx, &tables, &data, &copied).await?;
    let sales = sales
        .await
        .map_err(|e| format!("reading the orders failed: {e}"))?
        .map_err(store)?;
    data.add_sales(sales);
    let more = copy_sales(&tx, &tables, &data, progress).await?;
    finish(&tx, &tables, &data, &more).await?;
    tx.commit().await.map_err(pg_error)?;
    copied.extend(more);
    copied.sort_by_key(|(name, _)| tables.iter().position(|t| t.name == *name));
    Ok(copied)
}

fn table<'a>(tables: &'a [Table], name: &str) -> &'a Table {
    tables
        .iter()
        .find(|t| t.name == name)
        .expect("every exported table is in the schema")
}

fn count(data: &ShopData, table: &str) -> u64 {
    data.row_counts()
        .into_iter()
        .find(|(name, _)| *name == table)
        .map(|(_, n)| n)
        .unwrap_or(0)
}

type Copied = Vec<(&'static str, u64)>;

/// Refuses tables that hold rows (unless `drop_existing`), then creates the shop's.
async fn prepare(
    tx: &Transaction<'_>,
    tables: &[Table],
    drop_existing: bool,
) -> Result<(), String> {
    let names: Vec<&str> = tables.iter().map(|t| t.name).collect();
    let existing: Vec<String> = tx
        .query(
            "SELECT table_name::text FROM information_schema.tables \
             WHERE table_schema = current_schema() AND table_name = ANY($1)",
            &[&names],
        )
        .await
        .map_err(pg_error)?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !existing.is_empty() {
        if !drop_existing {
            for name in &existing {
                let has_rows: bool = tx
                    .query_one(&format!("SELECT EXISTS (SELECT 1 FROM {name})"), &[])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                if has_rows {
                    return Err(format!(
                        "table {name} in the target database already holds rows; nothing was \
                         written (add --drop-existing to replace the shop's tables)"
                    ));
                }
            }
        }
        // Empty tables of the same names (or, with --drop-existing, full ones) give way
        // to the shop's layout.
        let cascade = if drop_existing { " CASCADE" } else { "" };
        tx.batch_execute(&format!(
            "DROP TABLE IF EXISTS {}{cascade}",
            existing.join(", ")
        ))
        .await
        .map_err(pg_error)?;
    }
    for t in tables {
        tx.batch_execute(&t.create_sql()).await.map_err(pg_error)?;
    }
    Ok(())
}

async fn copy_catalog(
    tx: &Transaction<'_>,
    tables: &[Table],
    data: &ShopData,
    progress: &dyn Progress,
) -> Result<Copied, String> {
    let mut copied = Copied::new();
    let mut c = Copy::start(tx, tables, data, progress, "users").await?;
    for u in &data.users {
        c.row(&[
            &(u.id as i64),
            &u.email,
            &u.hashed_password,
            &u.name,
            &u.is_active,
            &u.is_admin,
            &u.is_verified,
            &time_of(u.created_at),
            &time_of(u.updated_at),
        ])
        .await?;
    }
    copied.push(("users", c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "categories").await?;
    for cat in &data.categories {
        c.row(&[&(cat.id as i64), &cat.name, &cat.slug]).await?;
    }
    copied.push(("categories", c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "products").await?;
    for p in &data.products {
        c.row(&[
            &(p.id as i64),
            &p.title,
            &p.description,
            &p.slug,
            &money(p.price),
            &p.stock_quantity,
            &p.image_url(),
            &p.archived_at.map(time_of),
            &time_of(p.created_at),
            &time_of(p.updated_at),
        ])
        .await?;
    }
    copied.push(("products", c.finish().await?));

    let name = "product_categories";
    let mut c = Copy::start(tx, tables, data, progress, name).await?;
    for p in &data.products {
        for category in &p.category_ids {
            c.row(&[&(p.id as i64), &(*category as i64)]).await?;
        }
    }
    copied.push((name, c.finish().await?));

    let prices: HashMap<u64, i64> = data.products.iter().map(|p| (p.id, p.price)).collect();
    let mut c = Copy::start(tx, tables, data, progress, "cart_items").await?;
    for cart in &data.carts {
        for line in &cart.lines {
            let price = prices.get(&line.product_id).copied().unwrap_or(0);
            c.row(&[
                &(line.id as i64),
                &(cart.user_id as i64),
                &(line.product_id as i64),
                &line.quantity,
                &money(price),
            ])
            .await?;
        }
    }
    copied.push(("cart_items", c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "reviews").await?;
    for r in &data.reviews {
        c.row(&[
            &(r.id as i64),
            &(r.product_id as i64),
            &(r.user_id as i64),
            &i16::from(r.rating),
            &r.title,
            &r.body,
            &time_of(r.created_at),
            &time_of(r.updated_at),
        ])
        .await?;
    }
    copied.push(("reviews", c.finish().await?));
    Ok(copied)
}

async fn copy_sales(
    tx: &Transaction<'_>,
    tables: &[Table],
    data: &ShopData,
    progress: &dyn Progress,
) -> Result<Copied, String> {
    let mut copied = Copied::new();
    let name = "shipping_addresses";
    let mut c = Copy::start(tx, tables, data, progress, name).await?;
    for a in &data.addresses {
        let f = &a.fields;
        c.row(&[
            &(a.id as i64),
            &(a.user_id as i64),
            &f.name,
            &f.phone,
            &f.address_line1,
            &f.address_line2,
            &f.city,
            &f.state,
            &f.postal_code,
            &f.country,
            &a.deleted,
        ])
        .await?;
    }
    copied.push((name, c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "orders").await?;
    for o in &data.orders {
        let f = &o.address;
        c.row(&[
            &(o.id as i64),
            &(o.user_id as i64),
            &money(o.total_price),
            &o.status.as_str(),
            &time_of(o.created_at),
            &time_of(o.updated_at),
            &(o.shipping_address_id as i64),
            &f.name,
            &f.phone,
            &f.address_line1,
            &f.address_line2,
            &f.city,
            &f.state,
            &f.postal_code,
            &f.country,
        ])
        .await?;
    }
    copied.push(("orders", c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "order_items").await?;
    for o in &data.orders {
        for item in &o.items {
            let product = (item.product_id != 0).then_some(item.product_id as i64);
            c.row(&[
                &(item.id as i64),
                &(o.id as i64),
                &product,
                &item.title,
                &item.quantity,
                &money(item.price),
            ])
            .await?;
        }
    }
    copied.push(("order_items", c.finish().await?));

    let mut c = Copy::start(tx, tables, data, progress, "payments").await?;
    for p in &data.payments {
        c.row(&[
            &(p.id as i64),
            &(p.order_id as i64),
            &(p.user_id as i64),
            &money(p.amount),
            &p.status.as_str(),
            &p.payment_gateway,
            &p.transaction_id,
            &p.is_paid,
            &time_of(p.created_at),
        ])
        .await?;
    }
    copied.push(("payments", c.finish().await?));

    let name = "shipping_statuses";
    let mut c = Copy::start(tx, tables, data, progress, name).await?;
    for s in &data.shippings {
        c.row(&[
            &(s.id as i64),
            &(s.order_id as i64),
            &s.status.as_str(),
            &time_of(s.updated_at),
        ])
        .await?;
    }
    copied.push((name, c.finish().await?));

    // History entries have no id of their own in shopbox: they are numbered in order.
    let name = "shipping_status_history";
    let mut c = Copy::start(tx, tables, data, progress, name).await?;
    let mut id = 0i64;
    for s in &data.shippings {
        for (status, at) in &s.history {
            id += 1;
            c.row(&[&id, &(s.order_id as i64), &status.as_str(), &time_of(*at)])
                .await?;
        }
    }
    copied.push((name, c.finish().await?));
    Ok(copied)
}

/// Checks the rows each COPY stored against the shop's, then adds the tables' keys,
/// constraints and indexes and moves their sequences past every id.
async fn finish(
    tx: &Transaction<'_>,
    tables: &[Table],
    data: &ShopData,
    copied: &Copied,
) -> Result<(), String> {
    for (name, stored) in copied {
        let want = count(data, name);
        if *stored != want {
            return Err(format!(
                "table {name} took {stored} rows where the shop has {want}; nothing was written"
            ));
        }
        let t = table(tables, name);
        tx.batch_execute(&t.after_load.join(";\n"))
            .await
            .map_err(|e| format!("constraints of {name}: {}", pg_error(e)))?;
        if t.has_id {
            tx.execute(
                &format!(
                    "SELECT setval(pg_get_serial_sequence('{name}', 'id'), \
                     coalesce(max(id), 0) + 1, false) FROM {name}"
                ),
                &[],
            )
            .await
            .map_err(pg_error)?;
        }
    }
    Ok(())
}
