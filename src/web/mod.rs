//! What is served beyond the API routes: the shop's page, embedded assets, health,
//! metrics, shop details, and the OpenAPI document with Swagger UI.

use rocket::http::{ContentType, Header, Status};
use rocket::response::content::RawHtml;
use rocket::serde::json::Json;
use rocket::{get, Request, Response, State};
use rocket_okapi::okapi::openapi3::{Components, Info, OpenApi};
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::swagger_ui::{make_swagger_ui, SwaggerUIConfig};
use rocket_okapi::{openapi, openapi_get_routes_spec};
use rust_embed::RustEmbed;
use schemars::JsonSchema;
use serde::Serialize;
use std::borrow::Cow;
use std::io::Cursor;
use std::path::PathBuf;

use crate::http::AppState;

#[derive(RustEmbed)]
#[folder = "static/"]
struct Assets;

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// An embedded file with its type and an ETag from its embedded hash.
pub struct Asset {
    body: Cow<'static, [u8]>,
    content_type: ContentType,
    etag: String,
}

impl<'r> rocket::response::Responder<'r, 'static> for Asset {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let fresh = req
            .headers()
            .get("If-None-Match")
            .any(|tag| tag == self.etag);
        let mut res = Response::build();
        res.header(Header::new("ETag", self.etag))
            .header(Header::new("Cache-Control", "public, max-age=3600"));
        if fresh {
            res.status(Status::NotModified);
        } else {
            res.header(self.content_type)
                .sized_body(self.body.len(), Cursor::new(self.body));
        }
        res.ok()
    }
}

fn asset(path: &str) -> Option<Asset> {
    let file = Assets::get(path)?;
    let content_type = path
        .rsplit_once('.')
        .and_then(|(_, ext)| ContentType::from_extension(ext))
        .unwrap_or(ContentType::Binary);
    Some(Asset {
        etag: format!("\"{}\"", hex::encode(&file.metadata.sha256_hash()[..12])),
        body: file.data,
        content_type,
    })
}

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[get("/")]
fn index(state: &State<AppState>) -> RawHtml<String> {
    let page = Assets::get("index.html")
        .map(|f| String::from_utf8_lossy(&f.data).into_owned())
        .unwrap_or_default();
    RawHtml(
        page.replace("{{shop_name}}", &escape_html(&state.config.shop_name))
            .replace("{{version}}", VERSION),
    )
}

#[get("/static/<path..>")]
fn static_file(path: PathBuf) -> Option<Asset> {
    asset(path.to_str()?)
}

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
fn health(state: &State<AppState>) -> (Status, Json<Health>) {
    if state.db.healthy() {
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
    rocket::routes![index, static_file, metrics]
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
