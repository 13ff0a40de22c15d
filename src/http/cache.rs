//! Answers of public reads (the catalog), kept as JSON bytes while what they were built
//! from stays the same: a repeated listing, search or product page is one map lookup.
//!
//! Each answer is kept with a stamp: numbers the caller took before it read anything, and
//! that it can check later (`stamped`): the catalog stamps an answer with its catalog
//! version and the revisions of the products in it, so a cart change or an order of other
//! products leaves it cached. `json` stamps with `Backend::version`, which every committed
//! write moves. Either way an answer built from data older than a write it depends on is
//! never served after that write.

use std::collections::HashMap;
use std::io::Cursor;
use std::marker::PhantomData;
use std::sync::{Arc, RwLock};

use rocket::http::ContentType;
use rocket::response::{self, Responder};
use rocket::serde::json::Json;
use rocket::Request;
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::Responses;
use rocket_okapi::response::OpenApiResponderInner;
use schemars::JsonSchema;
use serde::Serialize;

use crate::http::error::{ApiError, ApiResult};

/// An answer and the stamp it was built at.
type Entry = (Arc<[u64]>, Arc<[u8]>);

pub struct ResponseCache {
    entries: RwLock<HashMap<String, Entry>>,
    capacity: usize,
}

impl Default for ResponseCache {
    fn default() -> Self {
        ResponseCache::new(1024)
    }
}

impl ResponseCache {
    /// At most `capacity` answers; when full, it starts over (a listing page is at most a
    /// few dozen KB, so the bound is tens of MB).
    pub fn new(capacity: usize) -> Self {
        ResponseCache {
            entries: RwLock::new(HashMap::new()),
            capacity,
        }
    }

    /// The answer for `key` as of `version` (taken before reading anything), from the
    /// cache or from `make`, whose success is kept. Errors are never kept.
    pub async fn json<T: Serialize, F: std::future::Future<Output = ApiResult<T>>>(
        &self,
        key: String,
        version: u64,
        make: impl FnOnce() -> F,
    ) -> ApiResult<JsonBytes<T>> {
        self.stamped(
            key,
            |stamp| stamp == [version],
            || async move { Ok((make().await?, vec![version])) },
        )
        .await
    }

    /// The answer for `key`, from the cache while `current` accepts the stamp it was kept
    /// with, or from `make`, which answers the value and its stamp (taken before it read
    /// anything). Errors are never kept.
    pub async fn stamped<
        T: Serialize,
        F: std::future::Future<Output = ApiResult<(T, Vec<u64>)>>,
    >(
        &self,
        key: String,
        current: impl Fn(&[u64]) -> bool,
        make: impl FnOnce() -> F,
    ) -> ApiResult<JsonBytes<T>> {
        let cached = self
            .entries
            .read()
            .ok()
            .and_then(|entries| entries.get(&key).cloned());
        if let Some((stamp, bytes)) = cached {
            if current(&stamp) {
                return Ok(JsonBytes(bytes, PhantomData));
            }
        }
        let (value, stamp) = make().await?;
        let bytes: Arc<[u8]> = serde_json::to_vec(&value)
            .map_err(|e| ApiError::Internal(format!("serializing an answer: {e}")))?
            .into();
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            entries.insert(key, (stamp.into(), bytes.clone()));
        }
        Ok(JsonBytes(bytes, PhantomData))
    }
}

/// A JSON body already serialized; documented as the `T` it was made from.
pub struct JsonBytes<T>(Arc<[u8]>, PhantomData<fn() -> T>);

impl<'r, T> Responder<'r, 'static> for JsonBytes<T> {
    fn respond_to(self, _: &'r Request<'_>) -> response::Result<'static> {
        rocket::Response::build()
            .header(ContentType::JSON)
            .sized_body(self.0.len(), Cursor::new(self.0))
            .ok()
    }
}

impl<T: Serialize + JsonSchema + Send> OpenApiResponderInner for JsonBytes<T> {
    fn responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        <Json<T> as OpenApiResponderInner>::responses(gen)
    }
}
