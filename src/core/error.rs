//! What a store answers when it cannot do what was asked: a typed reason, which the HTTP
//! layer turns into a status and a message in one place (`http::error`).

/// Why a store refused, or failed.
#[derive(Debug, Clone, PartialEq)]
pub enum StoreError {
    /// No such record, or not the caller's to see; names what was looked for ("Order").
    NotFound(&'static str),
    /// A product that is not in the caller's cart.
    NotInCart,
    /// The caller has not reviewed this product.
    NotReviewed,
    /// A unique key that another record holds.
    Duplicate(Unique),
    /// A product names a category that does not exist.
    UnknownCategory(u64),
    /// A checkout of a cart with nothing (still on sale) in it.
    EmptyCart,
    /// A checkout line asks for more than the stock holds.
    OutOfStock {
        product_id: u64,
        title: String,
        left: i64,
    },
    /// A cart line would hold more than the stock.
    CartOverStock { title: String, left: i64 },
    /// Stock was to change for a product that no longer exists.
    ProductGone(u64),
    /// The amount a client sent differs from the cart total (cents).
    AmountMismatch { total: i64 },
    /// An order in this status cannot be cancelled.
    NotCancellable(&'static str),
    /// The order was cancelled already.
    AlreadyCancelled,
    /// An order whose payment failed has no shipping to change.
    NoShipping,
    /// A shipping status may not move from one status to the other.
    InvalidTransition {
        from: &'static str,
        to: &'static str,
    },
    /// The database could not make writes durable (a full disk, an I/O error): it takes
    /// no more writes, and the server stops for its supervisor to restart it from what is
    /// on disk. Carries the engine's words.
    Unwritable(String),
    /// The storage engine failed, or stored data cannot be read: a fault, never the
    /// caller's doing. Carries the engine's words for the log.
    Storage(String),
}

/// The unique keys a record can hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unique {
    Email,
    CategoryName,
    CategorySlug,
    Slug,
    /// One review per author and product.
    Review,
}

impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StoreError::Storage(m) => f.write_str(m),
            StoreError::Unwritable(m) => write!(f, "the database could not write to disk: {m}"),
            other => write!(f, "{other:?}"),
        }
    }
}

impl std::error::Error for StoreError {}

pub type StoreResult<T> = Result<T, StoreError>;
