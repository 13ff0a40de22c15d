//! Request ids, request logging, metrics and the trailing-slash rule, as one fairing.
//!
//! The request line names the client (its address as the rate limiter sees it, through
//! `trusted_proxies`) and the user when the request authenticated. A 2xx or 3xx logs at
//! info, a 4xx (a wrong path, a refused body) at debug, a 5xx at error. The path comes with
//! its query string, any token or password in it redacted.

use rand::Rng;
use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::uri::Origin;
use rocket::http::Header;
use rocket::{Data, Request, Response};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use crate::http::metrics::Metrics;
use crate::http::{ratelimit, AppState};

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

/// The id of the user a request authenticated as (0: none), for its log line.
struct LoggedUser(AtomicU64);

fn logged_user<'r>(req: &'r Request<'_>) -> &'r AtomicU64 {
    &req.local_cache(|| LoggedUser(AtomicU64::new(0))).0
}

/// Says which user the request authenticated as, for its log line.
pub fn note_user(req: &Request<'_>, user_id: u64) {
    logged_user(req).store(user_id, Ordering::Relaxed);
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
        let client = req
            .rocket()
            .state::<AppState>()
            .and_then(|state| ratelimit::client_ip(req, &state.config))
            .map(|ip| ip.to_string())
            .unwrap_or_else(|| "-".into());
        let state_failed = req
            .rocket()
            .state::<AppState>()
            .is_some_and(|state| state.db.failure().is_some());
        let user = match logged_user(req).load(Ordering::Relaxed) {
            0 => "-".to_string(),
            id => id.to_string(),
        };
        // With its query, secrets taken out (`?token=...` of a verification link).
        let uri = crate::core::redact::secrets(&req.uri().to_string()).into_owned();
        macro_rules! line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    request_id = %id,
                    client = %client,
                    user = %user,
                    method = %req.method(),
                    path = %uri,
                    status,
                    micros = elapsed.as_micros() as u64,
                    "request"
                )
            };
        }
        match status {
            // A shop whose disk failed answers 503 until it has stopped: its one ERROR line
            // says why, these do not repeat it.
            503 if state_failed => line!(tracing::Level::WARN),
            500.. => line!(tracing::Level::ERROR),
            400..=499 => line!(tracing::Level::DEBUG),
            _ => line!(tracing::Level::INFO),
        }
    }
}
