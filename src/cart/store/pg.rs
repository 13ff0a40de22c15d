//! Carts on PostgreSQL: `cart_items` as `export-pg` writes it, one row per line (with the
//! product's price when the line last changed). A change takes the user's row first, so
//! that one user's cart changes and checkouts follow one another.

use deadpool_postgres::GenericClient;

use crate::cart::model::{Cart, CartLine};
use crate::db::pg::{id, key, PgDb, Prepared};
use crate::db::{StoreError, StoreResult};

/// A user's cart inside a transaction (checkout), lines in the order they were added.
pub async fn cart_tx(c: &impl GenericClient, user_id: u64) -> StoreResult<Cart> {
    let rows = c
        .pquery(
            "SELECT id, product_id, quantity FROM cart_items WHERE user_id = $1 ORDER BY id",
            &[&key(user_id)],
        )
        .await?;
    Ok(Cart {
        user_id,
        lines: rows
            .iter()
            .map(|r| CartLine {
                id: id(r.get(0)),
                product_id: id(r.get(1)),
                quantity: r.get(2),
            })
            .collect(),
    })
}

/// Takes the user's row for the transaction: cart changes and checkouts of one user run
/// one after the other. False when there is no such user.
pub async fn lock_user(c: &impl GenericClient, user_id: u64) -> StoreResult<bool> {
    Ok(c.pquery_opt(
        "SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE",
        &[&key(user_id)],
    )
    .await?
    .is_some())
}

/// Empties a user's cart (checkout).
pub async fn clear(c: &impl GenericClient, user_id: u64) -> StoreResult<()> {
    c.pexec(
        "DELETE FROM cart_items WHERE user_id = $1",
        &[&key(user_id)],
    )
    .await?;
    Ok(())
}

pub async fn cart(pg: &PgDb, user_id: u64) -> StoreResult<Cart> {
    cart_tx(&pg.client().await?, user_id).await
}

/// Changes the quantity of a product's line by `delta`, never beyond stock. A missing
/// line is created when `create`, else is `NotInCart`.
pub async fn change(
    pg: &PgDb,
    user_id: u64,
    product_id: u64,
    delta: i64,
    create: bool,
) -> StoreResult<Option<CartLine>> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    lock_user(&tx, user_id).await?;
    let Some(product) = tx
        .pquery_opt(
            "SELECT title, stock_quantity, price FROM products \
             WHERE id = $1 AND archived_at IS NULL",
            &[&key(product_id)],
        )
        .await?
    else {
        return Err(StoreError::NotFound("Product"));
    };
    let (title, stock, price): (String, i64, rust_decimal::Decimal) =
        (product.get(0), product.get(1), product.get(2));
    let line = tx
        .pquery_opt(
            "SELECT id, quantity FROM cart_items WHERE user_id = $1 AND product_id = $2",
            &[&key(user_id), &key(product_id)],
        )
        .await?;
    let (line_id, had) = match (line, create) {
        (Some(r), _) => (Some(r.get::<_, i64>(0)), r.get::<_, i64>(1)),
        (None, true) => (None, 0),
        (None, false) => return Err(StoreError::NotInCart),
    };
    let quantity = had + delta;
    if quantity > stock {
        return Err(StoreError::CartOverStock { title, left: stock });
    }
    let out = match (line_id, quantity > 0) {
        (Some(lid), true) => {
            tx.pexec(
                "UPDATE cart_items SET quantity = $2, price = $3 WHERE id = $1",
                &[&lid, &quantity, &price],
            )
            .await?;
            Some(lid)
        }
        (Some(lid), false) => {
            tx.pexec("DELETE FROM cart_items WHERE id = $1", &[&lid])
                .await?;
            None
        }
        (None, true) => Some(
            tx.pquery_one(
                "INSERT INTO cart_items (user_id, product_id, quantity, price) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&key(user_id), &key(product_id), &quantity, &price],
            )
            .await?
            .get::<_, i64>(0),
        ),
        (None, false) => None,
    };
    pg.commit(tx).await?;
    Ok(out.map(|lid| CartLine {
        id: id(lid),
        product_id,
        quantity,
    }))
}

pub async fn remove_line(pg: &PgDb, user_id: u64, line_id: u64) -> StoreResult<()> {
    let mut client = pg.client().await?;
    let tx = client.transaction().await?;
    lock_user(&tx, user_id).await?;
    let n = tx
        .pexec(
            "DELETE FROM cart_items WHERE id = $1 AND user_id = $2",
            &[&key(line_id), &key(user_id)],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("Cart item"));
    }
    pg.commit(tx).await
}
