//! The files under `static/`, embedded in the binary. Pages load them from
//! `/assets/<version>/...`, where the version is a hash of every embedded file: a changed
//! file gets a new URL, so these answers may be cached for a year. `/static/...` serves
//! the same files unversioned, revalidated on every use.

use rocket::http::{ContentType, Header, Status};
use rocket::{get, Request, Response};
use rust_embed::RustEmbed;
use sha2::{Digest, Sha256};
use std::borrow::Cow;
use std::io::Cursor;
use std::path::PathBuf;
use std::sync::OnceLock;

#[derive(RustEmbed)]
#[folder = "static/"]
pub struct Files;

const IMMUTABLE: &str = "public, max-age=31536000, immutable";
const REVALIDATE: &str = "no-cache";

/// An embedded file with its type, an ETag from its embedded hash, and how long it may be
/// cached.
pub struct Asset {
    body: Cow<'static, [u8]>,
    content_type: ContentType,
    etag: String,
    cache_control: &'static str,
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let fresh = req
            .headers()
            .get("If-None-Match")
            .any(|tag| tag == self.etag);
        let mut res = Response::build();
        res.header(Header::new("ETag", self.etag))
            .header(Header::new("Cache-Control", self.cache_control))
            .header(Header::new("X-Content-Type-Options", "nosniff"));
        if fresh {
            res.status(Status::NotModified);
        } else {
            res.header(self.content_type)
                .sized_body(self.body.len(), Cursor::new(self.body));
        }
        res.ok()
    }
}

/// A quoted ETag from the start of a SHA-256.
pub fn etag(hash: &[u8]) -> String {
    format!("\"{}\"", hex::encode(&hash[..12]))
}

fn asset(path: &str, cache_control: &'static str) -> Option<Asset> {
    let file = Files::get(path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        etag: etag(&file.metadata.sha256_hash()),
        body: file.data,
        content_type,
        cache_control,
    })
}

/// The hash of every embedded file's name and content, in hex: the `<version>` of asset
/// URLs. Computed once (in debug builds rust-embed reads `static/` from disk, so a
/// restarted server picks up edits).
pub fn version() -> &'static str {
    static VERSION: OnceLock<String> = OnceLock::new();
    VERSION.get_or_init(|| {
        let mut names: Vec<Cow<'static, str>> = Files::iter().collect();
        names.sort();
        let mut all = Sha256::new();
        for name in names {
            if let Some(file) = Files::get(&name) {
                all.update(name.as_bytes());
                all.update(file.metadata.sha256_hash());
            }
        }
        hex::encode(&all.finalize()[..8])
    })
}

/// The text of an embedded file (the page templates).
pub fn text(path: &str) -> String {
    Files::get(path)
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default()
}

/// A fingerprinted asset: cached for a year when the version is the current one. An old
/// version (a page loaded before an upgrade) gets today's file, revalidated.
#[get("/assets/<version>/<path..>")]
pub fn versioned(version: &str, path: PathBuf) -> Option<Asset> {
    let cache = if version == self::version() {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    asset(path.to_str()?, cache)
}

#[get("/static/<path..>")]
pub fn unversioned(path: PathBuf) -> Option<Asset> {
    asset(path.to_str()?, REVALIDATE)
}

#[get("/favicon.ico")]
pub fn favicon() -> Option<Asset> {
    asset("icons/favicon.svg", REVALIDATE)
}
