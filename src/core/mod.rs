//! What every module uses: errors, JSON bodies, pagination, request ids, metrics, time.

pub mod auth;
pub mod cache;
pub mod error;
pub mod json;
pub mod metrics;
pub mod money;
pub mod origin;
pub mod pagination;
pub mod password;
pub mod ratelimit;
pub mod request_id;
pub mod text;
pub mod time;
pub mod tokens;

pub use error::{ApiError, ApiResult, FieldError};
pub use json::{ApiJson, Validate};
pub use pagination::{Page, PageQuery, Pagination};
