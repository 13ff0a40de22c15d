//! Which origins may call the API with cookies: the CSRF check for cookie-authenticated
//! writes, and CORS answers that allow credentials only to those origins.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::{Header, Method, Status};
use rocket::{options, Request, Response};

use crate::config::Config;

fn origin_of(url: &str) -> &str {
    // `scheme://host[:port]` without any path.
    match url.find("://") {
        Some(i) => match url[i + 3..].find('/') {
            Some(j) => &url[..i + 3 + j],
            None => url,
        },
        None => url,
    }
}

/// Whether `origin` is the shop itself (its `public_url`, or the scheme and `Host` of this
/// very request) or one of `cors.allowed_origins`.
pub fn is_trusted_origin(req: &Request<'_>, config: &Config, origin: &str) -> bool {
    let origin = origin.trim_end_matches('/');
    if origin.eq_ignore_ascii_case(origin_of(&config.public_url())) {
        return true;
    }
    if config
        .cors
        .allowed_origins
        .iter()
        .any(|o| o.eq_ignore_ascii_case(origin))
    {
        return true;
    }
    match req.headers().get_one("Host") {
        Some(host) => ["http://", "https://"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}{host}"))),
        None => false,
    }
}

/// The CSRF rule for a cookie-authenticated request: a write from a foreign `Origin`, or
/// without one but marked `Sec-Fetch-Site: cross-site`, is refused.
pub fn cookie_write_allowed(req: &Request<'_>, config: &Config) -> bool {
    if matches!(req.method(), Method::Get | Method::Head | Method::Options) {
        return true;
    }
    match req.headers().get_one("Origin") {
        Some(origin) => is_trusted_origin(req, config, origin),
        None => req.headers().get_one("Sec-Fetch-Site") != Some("cross-site"),
    }
}

/// Adds CORS headers for trusted origins.
pub struct Cors;

#[rocket::async_trait]
impl Fairing for Cors {
    fn info(&self) -> Info {
        Info {
            name: "CORS for trusted origins",
            kind: Kind::Response,
        }
    }

    async fn on_response<'r>(&self, req: &'r Request<'_>, res: &mut Response<'r>) {
        let Some(origin) = req.headers().get_one("Origin") else {
            return;
        };
        let Some(state) = req.rocket().state::<crate::http::AppState>() else {
            return;
        };
        res.adjoin_header(Header::new("Vary", "Origin"));
        if !is_trusted_origin(req, &state.config, origin) {
            return;
        }
        res.set_header(Header::new(
            "Access-Control-Allow-Origin",
            origin.to_string(),
        ));
        res.set_header(Header::new("Access-Control-Allow-Credentials", "true"));
        res.set_header(Header::new(
            "Access-Control-Expose-Headers",
            "X-Request-Id, Retry-After, Idempotent-Replayed",
        ));
        if req.method() == Method::Options {
            res.set_status(Status::NoContent);
            res.set_header(Header::new(
                "Access-Control-Allow-Methods",
                "GET, POST, PUT, PATCH, DELETE, OPTIONS",
            ));
            res.set_header(Header::new(
                "Access-Control-Allow-Headers",
                "Authorization, Content-Type, Idempotency-Key, X-Request-Id",
            ));
            res.set_header(Header::new("Access-Control-Max-Age", "600"));
        }
    }
}

/// CORS preflight: answered for every path; the fairing adds the headers when allowed.
#[options("/<_..>")]
pub fn preflight() -> Status {
    Status::NoContent
}
