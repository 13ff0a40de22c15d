//! Answers of public reads (the catalog), kept as JSON bytes until the database next
//! changes: a repeated listing, search or product page is one map lookup.
//!
//! Every committed write moves `Backend::version`. A reader takes the version before it reads
//! and stores its answer under it, and a hit needs the current version, so an answer built
//! from data older than a write is never served after that write.

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

/// An answer and the database version it was built at.
type Entry = (u64, Arc<[u8]>);

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
        if let Ok(entries) = self.entries.read() {
            if let Some((v, bytes)) = entries.get(&key) {
                if *v == version {
                    return Ok(JsonBytes(bytes.clone(), PhantomData));
                }
            }
        }
        let value = make().await?;
        let bytes: Arc<[u8]> = serde_json::to_vec(&value)
            .map_err(|e| ApiError::Internal(format!("serializing an answer: {e}")))?
            .into();
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= self.capacity {
                entries.clear();
            }
            let newer = entries.get(&key).is_some_and(|(v, _)| *v > version);
            if !newer {
                entries.insert(key, (version, bytes.clone()));
            }
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
