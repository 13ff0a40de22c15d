//! What is served beyond the domain APIs: the storefront and dashboard pages with their
//! assets, the dashboard's admin API, health, metrics, shop details, and the OpenAPI
//! document with Swagger UI.

pub mod admin_api;
pub mod assets;
pub mod pages;

use rocket::http::{ContentType, Status};
use rocket::serde::json::Json;
use rocket::{get, State};
use rocket_okapi::okapi::openapi3::{Components, Info, OpenApi};
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::swagger_ui::{make_swagger_ui, SwaggerUIConfig};
use rocket_okapi::{openapi, openapi_get_routes_spec};
use schemars::JsonSchema;
use serde::Serialize;

use crate::http::AppState;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Prometheus metrics: requests by route template and status, latency histograms,
/// domain counters.
#[get("/metrics")]
fn metrics(state: &State<AppState>) -> (ContentType, String) {
    (
        ContentType::new("text", "plain").with_params(("version", "0.0.4")),
        state.metrics.render(crate::http::metrics::StorageCounts {
            writes: state.db.version(),
            flushes: state.db.group_flushes(),
        }),
    )
}

#[derive(Serialize, JsonSchema)]
pub struct Health {
    /// `ok` when the database answers.
    pub status: String,
}

/// Liveness and readiness: 200 `{"status": "ok"}` when the database answers, else 503.
#[openapi(tag = "Shop")]
#[get("/health")]
async fn health(state: &State<AppState>) -> (Status, Json<Health>) {
    if state.db.healthy().await {
        (
            Status::Ok,
            Json(Health {
                status: "ok".into(),
            }),
        )
    } else {
        (
            Status::ServiceUnavailable,
            Json(Health {
                status: "unavailable".into(),
            }),
        )
    }
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
