//! The HTTP layer every route stands on: the application state, the one error responder,
//! JSON bodies, pagination, origins and CORS, rate limits, request ids and the request
//! log, the response cache and metrics. It knows no domain.

pub mod cache;
pub mod error;
pub mod json;
pub mod methods;
pub mod metrics;
pub mod openapi;
pub mod origin;
pub mod pagination;
pub mod ratelimit;
pub mod request_id;
pub mod schema;
pub mod unwritable;

use std::sync::Arc;

use crate::config::Config;
use crate::core::password::Passwords;
use crate::core::time::Clock;
use crate::core::tokens::Jwt;
use crate::db::Backend;

pub use crate::core::page::{Page, Pagination};
pub use error::{ApiError, ApiResult, FieldError};
pub use json::{ApiJson, Message, Validate};
pub use pagination::PageQuery;

/// What every handler can reach: configuration and the database (through the stores).
pub struct AppState {
    pub config: Arc<Config>,
    /// The storage engine the shop runs on; handlers pass it to the stores.
    pub db: Backend,
    pub jwt: Jwt,
    pub passwords: Passwords,
    pub limiter: ratelimit::RateLimiter,
    pub metrics: Arc<metrics::Metrics>,
    pub clock: Clock,
    /// Public catalog answers, until the next write.
    pub catalog_cache: cache::ResponseCache,
}
