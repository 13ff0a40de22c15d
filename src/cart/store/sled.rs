//! Carts on sled: one record per user (nothing can be scanned inside a transaction).

use crate::cart::model::{Cart, CartLine};
use crate::db::{abort, Db, StoreError, StoreResult, Tx, TxResult};
use crate::product::model::Product;

pub fn cart(db: &Db, user_id: u64) -> StoreResult<Cart> {
    Ok(db.get::<Cart>(user_id)?.unwrap_or(Cart {
        user_id,
        lines: Vec::new(),
    }))
}

pub fn cart_tx(tx: &Tx<'_>, user_id: u64) -> TxResult<Cart> {
    Ok(tx.get::<Cart>(user_id)?.unwrap_or(Cart {
        user_id,
        lines: Vec::new(),
    }))
}

/// Empties a user's cart (checkout).
pub fn clear(tx: &Tx<'_>, user_id: u64) -> TxResult<()> {
    tx.remove::<Cart>(user_id)
}

fn live_product(tx: &Tx<'_>, product_id: u64) -> TxResult<Product> {
    match tx
        .get::<Product>(product_id)?
        .filter(|p| p.archived_at.is_none())
    {
        Some(p) => Ok(p),
        None => abort(StoreError::NotFound("Product")),
    }
}

/// Adds `quantity` of a product to its line, or to a new line with the id `new_line`
/// (taken beforehand with `next_id(CARTS)`); never beyond stock.
pub async fn add(
    db: &Db,
    user_id: u64,
    product_id: u64,
    quantity: i64,
    new_line: u64,
) -> StoreResult<Option<CartLine>> {
    change(db, user_id, product_id, quantity, Some(new_line)).await
}

/// One less of a product; answers the line, or `None` when it reached 0 and went.
pub async fn decrease(db: &Db, user_id: u64, product_id: u64) -> StoreResult<Option<CartLine>> {
    change(db, user_id, product_id, -1, None).await
}

/// Changes the quantity of a product's line by `delta`, never beyond stock. A missing
/// line is created with the id `new_line`, or without one is `NotInCart`.
async fn change(
    db: &Db,
    user_id: u64,
    product_id: u64,
    delta: i64,
    new_line: Option<u64>,
) -> StoreResult<Option<CartLine>> {
    db.write(|tx| {
        let product = live_product(tx, product_id)?;
        let mut cart = cart_tx(tx, user_id)?;
        let position = cart.lines.iter().position(|l| l.product_id == product_id);
        let line = match (position, new_line) {
            (Some(i), _) => &mut cart.lines[i],
            (None, Some(id)) => {
                cart.lines.push(CartLine {
                    id,
                    product_id,
                    quantity: 0,
                });
                cart.lines.last_mut().expect("just pushed")
            }
            (None, None) => return abort(StoreError::NotInCart),
        };
        let quantity = line.quantity + delta;
        if quantity > product.stock_quantity {
            return abort(StoreError::CartOverStock {
                title: product.title,
                left: product.stock_quantity,
            });
        }
        line.quantity = quantity;
        let out = (quantity > 0).then(|| line.clone());
        cart.lines.retain(|l| l.quantity > 0);
        cart.user_id = user_id;
        if cart.lines.is_empty() {
            tx.remove::<Cart>(user_id)?;
        } else {
            tx.put(user_id, &cart)?;
        }
        Ok(out)
    })
    .await
}

/// Removes a line by its id; another user's line is not found.
pub async fn remove_line(db: &Db, user_id: u64, line_id: u64) -> StoreResult<()> {
    db.write(|tx| {
        let mut cart = cart_tx(tx, user_id)?;
        let before = cart.lines.len();
        cart.lines.retain(|l| l.id != line_id);
        if cart.lines.len() == before {
            return abort(StoreError::NotFound("Cart item"));
        }
        if cart.lines.is_empty() {
            tx.remove::<Cart>(user_id)
        } else {
            tx.put(user_id, &cart)
        }
    })
    .await
}
