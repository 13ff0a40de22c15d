//! What is served beyond the domain APIs: the storefront and dashboard pages with their
//! assets, the dashboard's admin API, health, metrics, shop details, and the OpenAPI
//! document with Swagger UI.

pub mod admin_api;
pub mod assets;
pub mod pages;

use rocket::http::{ContentType, Status};
use rocket::request::{FromRequest, Outcome, Request};
use rocket::serde::json::Json;
use rocket::{get, State};
use rocket_okapi::okapi::openapi3::{Components, Info, OpenApi};
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::swagger_ui::{make_swagger_ui, SwaggerUIConfig};
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use serde::Serialize;
use sha2::Digest;

use crate::http::{ApiError, AppState};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Leave to read `/metrics`: anyone's while `metrics.token` is unset, else only a request
/// with `Authorization: Bearer <metrics.token>` (401 otherwise).
pub struct MetricsAccess;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for MetricsAccess {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let Some(state) = req.rocket().state::<AppState>() else {
            return Outcome::Error((ApiError::Internal("no app state".into()).stash(req), ()));
        };
        let Some(token) = &state.config.metrics.token else {
            return Outcome::Success(MetricsAccess);
        };
        let given = req
            .headers()
            .get_one("Authorization")
            .and_then(|h| h.strip_prefix("Bearer "))
            .map(str::trim);
        // Compared as digests, so the time taken says nothing about the token.
        let digest = |t: &str| sha2::Sha256::digest(t.as_bytes());
        match given {
            Some(given) if digest(given) == digest(token) => Outcome::Success(MetricsAccess),
            Some(_) => Outcome::Error((
                ApiError::Unauthorized("Invalid metrics token".into()).stash(req),
                (),
            )),
            None => Outcome::Error((
                ApiError::Unauthorized(
                    "Not authenticated: send Authorization: Bearer <metrics.token>".into(),
                )
                .stash(req),
                (),
            )),
        }
    }
}

/// Prometheus metrics: requests by route template and status, latency histograms,
/// domain counters (all of them from the first scrape, at 0), revenue, the database's
/// size on disk and the process's uptime.
#[get("/metrics")]
async fn metrics(state: &State<AppState>, _access: MetricsAccess) -> (ContentType, String) {
    let db = state.db.clone();
    let size_bytes = tokio::task::spawn_blocking(move || db.size_on_disk())
        .await
        .ok()
        .flatten();
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        state.metrics.render(crate::http::metrics::StorageCounts {
            writes: state.db.version(),
            flushes: state.db.group_flushes(),
            size_bytes,
        }),
    )
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `ok`: everything is fine. `degraded`: the shop serves, but the free space of the
    /// data folder's disk is below `health.min_free_disk_mb` (writes may soon fail).
    /// `unavailable` (with a 503): the database does not answer.
    pub status: String,
    /// `ok` when the database answers a read, else `unavailable`.
    pub database: String,
    /// `ok`, or `low` when the free space is below the floor (`unknown` when it cannot be
    /// read).
    pub disk: String,
    /// Free space of the disk that holds the data folder, in MiB (available to shopbox).
    pub free_disk_mb: Option<u64>,
    /// The configured floor, `health.min_free_disk_mb` (0: not checked).
    pub min_free_disk_mb: u64,
}

/// Liveness and readiness. 200 with `status` `ok`; 200 with `degraded` when the disk of the
/// data folder has less free space than `health.min_free_disk_mb` (the shop still serves:
/// alert on it, do not restart for it); 503 with `unavailable` when the database does not
/// answer.
#[openapi(tag = "Shop")]
#[get("/health")]
async fn health(state: &State<AppState>) -> (Status, Json<Health>) {
    let database_ok = state.db.healthy().await;
    let dir = state.config.data_dir.clone();
    let free = tokio::task::spawn_blocking(move || crate::core::disk::free_bytes(&dir))
        .await
        .ok()
        .flatten();
    let floor_mb = state.config.health.min_free_disk_mb;
    let free_mb = free.map(|b| b / (1024 * 1024));
    let disk = match free_mb {
        Some(mb) if mb < floor_mb => "low",
        Some(_) => "ok",
        None => "unknown",
    };
    let (code, status) = match (database_ok, disk) {
        (false, _) => (Status::ServiceUnavailable, "unavailable"),
        (true, "low") => (Status::Ok, "degraded"),
        (true, _) => (Status::Ok, "ok"),
    };
    (
        code,
        Json(Health {
            status: status.into(),
            database: if database_ok { "ok" } else { "unavailable" }.into(),
            disk: disk.into(),
            free_disk_mb: free_mb,
            min_free_disk_mb: floor_mb,
        }),
    )
}

#[derive(Serialize, JsonSchema)]
pub struct ShopInfo {
    pub name: String,
    /// ISO 4217 code of the currency every price is in.
    pub currency: String,
    /// shopbox version.
    pub version: String,
}

/// The shop's name, currency and shopbox version.
#[openapi(tag = "Shop")]
#[get("/api/shop")]
fn shop(state: &State<AppState>) -> Json<ShopInfo> {
    Json(ShopInfo {
        name: state.config.shop_name.clone(),
        currency: state.config.currency.clone(),
        version: VERSION.to_string(),
    })
}

/// Routes outside the API modules that are documented.
pub fn documented_routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    openapi_get_routes_spec![settings: health, shop]
}

pub fn plain_routes() -> Vec<rocket::Route> {
    let mut routes = rocket::routes![metrics];
    routes.extend(pages::routes());
    routes
}

pub fn swagger_routes() -> Vec<rocket::Route> {
    make_swagger_ui(&SwaggerUIConfig {
        url: "../openapi.json".to_owned(),
        ..Default::default()
    })
    .into()
}

const API_DESCRIPTION: &str = "\
The REST API of a shopbox shop. JSON in and out; field names are snake_case; times are \
RFC 3339 UTC; money is a JSON number in the shop's currency (`GET /api/shop`) with at most \
2 decimals.\n\n\
**Errors** always carry `{\"detail\": ...}`. A 422 for a bad field carries \
`{\"detail\": [{\"loc\": [\"body\"|\"query\"|\"path\", field], \"msg\", \"type\"}]}`; \
malformed JSON is a 400. A 500 carries `{\"detail\": \"internal error\", \"request_id\"}` \
matching the `X-Request-Id` header every response has.\n\n\
**Lists** that grow take `page` (from 1) and `limit` (1 to 100, default 20; `size` is a \
synonym) and answer `{items, total, page, limit, pages}`.\n\n\
**Authentication**: log in at `/api/account/login`; browsers get HttpOnly cookies, other \
clients send `Authorization: Bearer <access_token>`. Routes marked `user` need a login; \
routes marked `admin` need an admin. `/api/x` and `/api/x/` are the same route.";

/// Fills in what the generated document cannot know: title, description, security schemes.
pub fn finish_spec(mut spec: OpenApi, shop_name: &str) -> OpenApi {
    spec.info = Info {
        title: format!("{shop_name} API"),
        version: VERSION.to_string(),
        description: Some(API_DESCRIPTION.to_string()),
        ..Default::default()
    };
    let components = spec.components.get_or_insert_with(Components::default);
    for (name, text) in [
        ("user", "A logged-in user: the `access_token` cookie, or `Authorization: Bearer <access_token>`."),
        ("admin", "A logged-in admin: the `access_token` cookie, or `Authorization: Bearer <access_token>` of an admin."),
    ] {
        components.security_schemes.insert(
            name.to_string(),
            rocket_okapi::okapi::openapi3::RefOr::Object(crate::account::guard::security_scheme(text)),
        );
    }
    spec
}
