//! Request ids, request logging, metrics and the trailing-slash rule, as one fairing.

use rand::Rng;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::Header;
use rocket::{Data, Request, Response};
use std::sync::Arc;
use std::time::Instant;

use crate::http::metrics::Metrics;

/// The id of one request: taken from a sane incoming `X-Request-Id`, otherwise generated.
#[derive(Clone)]
pub struct RequestId(pub String);

struct Started(Instant);

const CATEGORY_ALIAS: &str = "/api/products-category";

impl RequestId {
    pub fn of(req: &Request<'_>) -> String {
        req.local_cache(|| RequestId(generate())).0.clone()
    }
}

fn generate() -> String {
    format!("{:016x}", rand::thread_rng().gen::<u64>())
}

fn acceptable(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

pub struct RequestFairing {
    pub metrics: Arc<Metrics>,
}

#[rocket::async_trait]
impl Fairing for RequestFairing {
    fn info(&self) -> Info {
        Info {
            name: "request id, logging, metrics, trailing slash",
            kind: Kind::Request | Kind::Response,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Started(Instant::now()));
        let incoming = req
            .headers()
            .get_one("X-Request-Id")
            .filter(|id| acceptable(id))
            .map(str::to_string);
        req.local_cache(|| RequestId(incoming.unwrap_or_else(generate)));

        // `/api/x/` and `/api/x` reach the same route, without a redirect; so do the
        // aliases `/api/products-category/...` and `/api/products/category/...`.
        let path = req.uri().path().as_str();
        let mut rewritten = None;
        if path.starts_with("/api/") && path.len() > 5 && path.ends_with('/') {
            rewritten = Some(path.trim_end_matches('/').to_string());
        }
        let current = rewritten.as_deref().unwrap_or(path);
        if let Some(rest) = current.strip_prefix(CATEGORY_ALIAS) {
            if rest.is_empty() || rest.starts_with('/') {
                rewritten = Some(format!("/api/products/category{rest}"));
            }
        }
        if let Some(path) = rewritten {
            let uri = match req.uri().query() {
                Some(q) => format!("{path}?{q}"),
                None => path,
            };
            if let Ok(origin) = Origin::parse_owned(uri) {
                req.set_uri(origin);
            }
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let id = RequestId::of(req);
        res.set_header(Header::new("X-Request-Id", id.clone()));
        let elapsed = req.local_cache(|| Started(Instant::now())).0.elapsed();
        let route = req
            .route()
            .map(|r| r.uri.origin.path().to_string())
            .unwrap_or_else(|| "unmatched".to_string());
        let status = res.status().code;
        self.metrics
            .observe(req.method().as_str(), &route, status, elapsed);
        tracing::info!(
            request_id = %id,
            method = %req.method(),
            path = %req.uri().path(),
            status,
            micros = elapsed.as_micros() as u64,
            "request"
        );
    }
}
