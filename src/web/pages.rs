//! The storefront and the admin dashboard: two HTML shells whose JavaScript modules draw
//! each page from the API. Every client-side route answers its shell, so deep links and
//! reloads work; pages are never cached without revalidation and carry a strict CSP.

use rocket::http::uri::Origin;
use rocket::http::{ContentType, Header, Method, Status};
use rocket::request::{FromRequest, Outcome};
use rocket::response::Redirect;
use rocket::route::{Handler, Route};
use rocket::{get, Data, Request, Response};
use sha2::{Digest, Sha256};
use std::io::Cursor;

use super::assets;
use crate::AppState;

/// No inline script or style anywhere; images from the shop itself (and `data:` for
/// generated ones); the pages talk only to their own origin and are never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; \
form-action 'self'; frame-ancestors 'none'";

#[derive(Debug, Clone, Copy)]
pub enum Shell {
    Shop,
    Admin,
}

impl Shell {
    fn template(self) -> &'static str {
        match self {
            Shell::Shop => "shop.html",
            Shell::Admin => "admin.html",
        }
    }
}

/// The storefront's routes (the JavaScript router knows the same list).
const SHOP_PATHS: &[&str] = &[
    "/",
    "/products",
    "/product/<slug>",
    "/cart",
    "/checkout",
    "/orders",
    "/orders/<id>",
    "/account",
    "/login",
    "/register",
    "/forgot-password",
    "/reset-password",
    "/verify-email",
];

/// `/admin` and everything under it.
const ADMIN_PATHS: &[&str] = &["/admin/<path..>"];

fn escape_html(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A shell filled in with the shop's name and the current asset URLs.
pub fn render(shell: Shell, shop_name: &str) -> String {
    assets::text(shell.template())
        .replace("{{shop_name}}", &escape_html(shop_name))
        .replace("{{version}}", super::VERSION)
        .replace("{{assets}}", &format!("/assets/{}", assets::version()))
}

/// An HTML page: revalidated on every use (ETag), with the CSP and its companions.
pub struct Page(pub String);

impl<'r> rocket::response::Responder<'r, 'static> for Page {
    fn respond_to(self, req: &'r Request<'_>) -> rocket::response::Result<'static> {
        let etag = assets::etag(&Sha256::digest(self.0.as_bytes()));
        let fresh = req.headers().get("If-None-Match").any(|t| t == etag);
        let mut res = Response::build();
        res.header(Header::new("ETag", etag))
            .header(Header::new("Cache-Control", "no-cache"))
            .header(Header::new("Content-Security-Policy", CSP))
            .header(Header::new("X-Content-Type-Options", "nosniff"))
            .header(Header::new("X-Frame-Options", "DENY"))
            // Reset and verify pages carry a token in their URL: it must not travel on.
            .header(Header::new("Referrer-Policy", "no-referrer"));
        if fresh {
            res.status(Status::NotModified);
        } else {
            res.header(ContentType::HTML)
                .sized_body(self.0.len(), Cursor::new(self.0.into_bytes()));
        }
        res.ok()
    }
}

#[derive(Clone)]
struct ShellHandler(Shell);

#[rocket::async_trait]
impl Handler for ShellHandler {
    async fn handle<'r>(&self, req: &'r Request<'_>, _: Data<'r>) -> rocket::route::Outcome<'r> {
        let Some(state) = req.rocket().state::<AppState>() else {
            return rocket::route::Outcome::Error(Status::InternalServerError);
        };
        rocket::route::Outcome::from(req, Page(render(self.0, &state.config.shop_name)))
    }
}

/// A request from a browser navigating: its preferred type is `text/html`. API clients
/// (JSON, `*/*` or no `Accept`) are forwarded to the API route.
pub struct WantsHtml;

#[rocket::async_trait]
impl<'r> FromRequest<'r> for WantsHtml {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match req.accept().map(|a| a.preferred().media_type()) {
            Some(m) if m.top() == "text" && m.sub() == "html" => Outcome::Success(WantsHtml),
            _ => Outcome::Forward(Status::NotFound),
        }
    }
}

/// The verification link opened in a browser goes to the storefront's page, which
/// verifies through the API and shows the result; other clients reach the API route.
#[get("/api/account/verify")]
pub fn verify_link(_html: WantsHtml, uri: &Origin<'_>) -> Redirect {
    verify_page(uri)
}

/// The same for the `verify-email` alias.
#[get("/api/account/verify-email")]
pub fn verify_email_link(_html: WantsHtml, uri: &Origin<'_>) -> Redirect {
    verify_page(uri)
}

fn verify_page(uri: &Origin<'_>) -> Redirect {
    match uri.query() {
        Some(q) => Redirect::to(format!("/verify-email?{}", q.as_str())),
        None => Redirect::to("/verify-email"),
    }
}

pub fn routes() -> Vec<Route> {
    let shells = SHOP_PATHS
        .iter()
        .map(|p| (*p, Shell::Shop))
        .chain(ADMIN_PATHS.iter().map(|p| (*p, Shell::Admin)))
        .map(|(path, shell)| Route::new(Method::Get, path, ShellHandler(shell)));
    let mut routes: Vec<Route> = shells.collect();
    // Tried before the API's own verify routes, whose default ranks go down to -12; the
    // attribute cannot say a negative rank.
    routes.extend(
        rocket::routes![verify_link, verify_email_link]
            .into_iter()
            .map(|mut r| {
                r.rank = -20;
                r
            }),
    );
    routes.extend(rocket::routes![
        assets::versioned,
        assets::unversioned,
        assets::favicon
    ]);
    routes
}
