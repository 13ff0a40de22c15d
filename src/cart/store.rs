//! Cart reads and writes; composable into checkout's transaction.

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

/// Changes the quantity of a product's line by `delta` (creating it), never beyond stock;
/// answers the line, or `None` when it reached 0 and was removed.
pub async fn change(
    db: &Db,
    user_id: u64,
    product_id: u64,
    delta: i64,
    new_line_id: u64,
    create: bool,
) -> StoreResult<Option<CartLine>> {
    db.write(|tx| {
        let product = live_product(tx, product_id)?;
        let mut cart = cart_tx(tx, user_id)?;
        let position = cart.lines.iter().position(|l| l.product_id == product_id);
        let line = match position {
            Some(i) => &mut cart.lines[i],
            None if create => {
                cart.lines.push(CartLine {
                    id: new_line_id,
                    product_id,
                    quantity: 0,
                });
                cart.lines.last_mut().expect("just pushed")
            }
            None => return abort(StoreError::NotInCart),
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
