//! The FastAPI reference backend's tables (REFERENCE_SCHEMA.md), mapped into shopbox's
//! records. SQL does what it can (casts, joins for item titles and address copies, float
//! prices to cents); `fix` does the rest and notes every change it makes.

use std::collections::{HashMap, HashSet};

use tokio_postgres::Client;

use super::pg_error;
use super::source::{cents, micros, Changes, Queries};
use crate::core::text::{slug_reserved, slug_shaped, slugify};
use crate::order::model::OrderStatus;
use crate::payment::model::{Payment, PaymentStatus};
use crate::shipping::model::{ShipState, Shipping};
use crate::transfer::{ShopData, MAX_SLUG};

/// A time column as microseconds, or now where it is null.
fn micros_or(columns: &[&str]) -> String {
    let mut parts: Vec<String> = columns.iter().map(|c| micros(c)).collect();
    parts.push(micros("now()"));
    format!("coalesce({})", parts.join(", "))
}

pub fn queries() -> Queries {
    Queries {
        users: format!(
            "SELECT id::int8, email::text, hashed_password::text, \
             split_part(email::text, '@', 1), coalesce(is_active, true), \
             coalesce(is_admin, false), coalesce(is_verified, false), {}, {} \
             FROM users ORDER BY id",
            micros_or(&["created_at"]),
            micros_or(&["updated_at", "created_at"])
        ),
        categories: "SELECT id::int8, name::text, NULL::text FROM categories ORDER BY id".into(),
        products: format!(
            "SELECT id::int8, title::text, description::text, slug::text, {}, \
             coalesce(stock_quantity, 0)::int8, image_url::text, NULL::int8, {}, {} \
             FROM products ORDER BY id",
            cents("price"),
            micros_or(&["created_at"]),
            micros_or(&["updated_at", "created_at"])
        ),
        product_categories: "SELECT product_id::int8, category_id::int8 FROM product_category \
                             ORDER BY product_id, category_id"
            .into(),
        cart_items: "SELECT id::int8, user_id::int8, product_id::int8, quantity::int8 \
                     FROM cart_items ORDER BY id"
            .into(),
        addresses: "SELECT id::int8, user_id::int8, name::text, NULL::text, \
                    address_line1::text, address_line2::text, city::text, state::text, \
                    pin_code::text, country::text, false FROM shipping_addresses ORDER BY id"
            .into(),
        orders: format!(
            "SELECT o.id::int8, o.user_id::int8, {}, o.status::text, {}, {}, \
             o.shipping_address_id::int8, a.name::text, NULL::text, a.address_line1::text, \
             a.address_line2::text, a.city::text, a.state::text, a.pin_code::text, \
             a.country::text \
             FROM orders o LEFT JOIN shipping_addresses a ON a.id = o.shipping_address_id \
             ORDER BY o.id",
            cents("o.total_price"),
            micros_or(&["o.created_at"]),
            micros_or(&["o.created_at"])
        ),
        order_items: format!(
            "SELECT i.id::int8, i.order_id::int8, i.product_id::int8, \
             coalesce(p.title, 'Deleted product')::text, i.quantity::int8, {} \
             FROM order_items i LEFT JOIN products p ON p.id = i.product_id ORDER BY i.id",
            cents("i.price")
        ),
        // The reference kept whole units in `amount`: the order's total is the amount.
        payments: format!(
            "SELECT p.id::int8, p.order_id::int8, p.user_id::int8, {}, p.status::text, \
             p.payment_gateway::text, coalesce(p.pg_payment_id, p.pg_order_id, '')::text, \
             coalesce(p.is_paid, false), {} \
             FROM payments p LEFT JOIN orders o ON o.id = p.order_id ORDER BY p.id",
            cents("o.total_price"),
            micros_or(&["p.created_at"])
        ),
        // Several rows of one order: the latest is its status, all of them its history.
        shippings: format!(
            "SELECT DISTINCT ON (order_id) id::int8, order_id::int8, status::text, {} \
             FROM shipping_status ORDER BY order_id, updated_at DESC NULLS LAST, id DESC",
            micros_or(&["updated_at"])
        ),
        history: format!(
            "SELECT id::int8, order_id::int8, status::text, {} FROM shipping_status \
             ORDER BY order_id, updated_at NULLS FIRST, id",
            micros_or(&["updated_at"])
        ),
        reviews: None,
    }
}

/// A reference payment status in shopbox's terms.
pub fn payment_status(
    raw: &str,
    order: Option<OrderStatus>,
    id: u64,
    changes: &mut Changes,
) -> PaymentStatus {
    match raw {
        "success" => PaymentStatus::Success,
        "failed" => PaymentStatus::Failed,
        "cancelled" if order == Some(OrderStatus::Cancelled) => {
            changes.note(
                "payments: cancelled (of a cancelled order) became refunded",
                id,
            );
            PaymentStatus::Refunded
        }
        other => {
            changes.note(format!("payments: {other} became failed"), id);
            PaymentStatus::Failed
        }
    }
}

/// Changes only the source can show: rows left behind and values rounded on the way.
pub async fn note_source_changes(client: &Client, changes: &mut Changes) -> Result<(), String> {
    let lists = [
        (
            "refresh_tokens: not imported (everyone signs in again)",
            "SELECT id::int8 FROM refresh_tokens ORDER BY id",
        ),
        (
            "products: price rounded to the cent",
            "SELECT id::int8 FROM products \
             WHERE price::numeric * 100 <> round(price::numeric * 100) ORDER BY id",
        ),
        (
            "orders: total_price rounded to the cent",
            "SELECT id::int8 FROM orders \
             WHERE total_price::numeric * 100 <> round(total_price::numeric * 100) ORDER BY id",
        ),
        (
            "order_items: price rounded to the cent",
            "SELECT id::int8 FROM order_items \
             WHERE price::numeric * 100 <> round(price::numeric * 100) ORDER BY id",
        ),
        (
            "payments: amount set to the order's total_price (the reference kept whole units)",
            "SELECT p.id::int8 FROM payments p JOIN orders o ON o.id = p.order_id \
             WHERE p.amount::numeric * 100 <> round(o.total_price::numeric * 100) ORDER BY p.id",
        ),
    ];
    for (what, sql) in lists {
        for row in client.query(sql, &[]).await.map_err(pg_error)? {
            changes.note(what, row.get::<_, i64>(0) as u64);
        }
    }
    Ok(())
}

/// The first of `wanted`, `wanted-2`, `wanted-3`... not in `taken`; claims it.
fn unique_slug(wanted: &str, taken: &mut HashSet<String>) -> String {
    let mut n = 1;
    loop {
        let candidate = if n == 1 {
            wanted.to_string()
        } else {
            format!("{wanted}-{n}")
        };
        if taken.insert(candidate.clone()) {
            return candidate;
        }
        n += 1;
    }
}

/// What the reference never had or never checked, made into what shopbox keeps.
pub fn fix(data: &mut ShopData, changes: &mut Changes) {
    for u in &data.users {
        changes.note("users: name taken from the email before @", u.id);
    }

    let mut taken = HashSet::new();
    for c in &mut data.categories {
        c.slug = unique_slug(&slugify(&c.name, "category"), &mut taken);
        changes.note("categories: slug made from the name", c.id);
    }

    // Good slugs keep their place first; the others are remade around them.
    let mut taken: HashSet<String> = data
        .products
        .iter()
        .filter(|p| slug_shaped(&p.slug, MAX_SLUG) && slugify(&p.slug, "product") == p.slug)
        .map(|p| p.slug.clone())
        .collect();
    for p in &mut data.products {
        if !slug_shaped(&p.slug, MAX_SLUG) {
            let base = if p.slug.trim().is_empty() {
                &p.title
            } else {
                &p.slug
            };
            p.slug = unique_slug(&slugify(base, "product"), &mut taken);
            changes.note(
                "products: slug remade from lowercase letters, digits and dashes",
                p.id,
            );
        } else if slug_reserved(&p.slug) {
            p.slug = unique_slug(&format!("{}-item", p.slug), &mut taken);
            changes.note(
                "products: slug was a number or a reserved word, suffixed",
                p.id,
            );
        } else if slugify(&p.slug, "product") != p.slug {
            // Dashes doubled or at an end: tidy, still unique.
            p.slug = unique_slug(&slugify(&p.slug, "product"), &mut taken);
            changes.note("products: slug tidied", p.id);
        }
    }

    let status: HashMap<u64, OrderStatus> = data.orders.iter().map(|o| (o.id, o.status)).collect();
    data.shippings.retain(|s| {
        let failed = status.get(&s.order_id) == Some(&OrderStatus::PaymentFailed);
        if failed {
            changes.note(
                "shipping_status: dropped, its order's payment failed (pending order)",
                s.id,
            );
        }
        !failed
    });

    let paid: HashSet<u64> = data.payments.iter().map(|p| p.order_id).collect();
    let mut next_payment = data.payments.iter().map(|p| p.id).max().unwrap_or(0);
    for o in &data.orders {
        if paid.contains(&o.id) {
            continue;
        }
        next_payment += 1;
        let (status, is_paid) = match o.status {
            OrderStatus::PaymentFailed => (PaymentStatus::Failed, false),
            OrderStatus::Confirmed => (PaymentStatus::Success, true),
            OrderStatus::Cancelled => (PaymentStatus::Refunded, false),
        };
        data.payments.push(Payment {
            id: next_payment,
            order_id: o.id,
            user_id: o.user_id,
            amount: o.total_price,
            status,
            payment_gateway: "mock".into(),
            transaction_id: String::new(),
            is_paid,
            created_at: o.created_at,
        });
        changes.note(
            format!("orders: no payment, a {} one was added", status.as_str()),
            o.id,
        );
    }

    let shipped: HashSet<u64> = data.shippings.iter().map(|s| s.order_id).collect();
    let mut next_shipping = data.shippings.iter().map(|s| s.id).max().unwrap_or(0);
    for o in &data.orders {
        let (state, at) = match o.status {
            OrderStatus::PaymentFailed => continue,
            OrderStatus::Confirmed => (ShipState::Pending, o.created_at),
            OrderStatus::Cancelled => (ShipState::Cancelled, o.updated_at),
        };
        if shipped.contains(&o.id) {
            continue;
        }
        next_shipping += 1;
        data.shippings.push(Shipping {
            id: next_shipping,
            order_id: o.id,
            status: state,
            updated_at: at,
            history: vec![(state, at)],
        });
        changes.note(
            format!(
                "orders: {} without a shipping status, now {}",
                o.status.as_str(),
                state.as_str()
            ),
            o.id,
        );
    }
}
