//! 405 Method Not Allowed: a path that routes serve with other methods answers 405 with
//! an `Allow` header, not a 404; so does a method Rocket does not know (`QUERY`), which
//! it would otherwise answer with a bare 400.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::http::Method;
use rocket::{Data, Request};

/// Marks each request that went through the request fairings. Rocket hands a request whose
/// method it does not know straight to the catchers as a 400 with `GET` in its place, so a
/// catcher seeing an unmarked request knows its method was refused.
pub struct MethodFairing;

struct Routed(bool);

#[rocket::async_trait]
impl Fairing for MethodFairing {
    fn info(&self) -> Info {
        Info {
            name: "405 for methods a path does not serve",
            kind: Kind::Request,
        }
    }

    async fn on_request(&self, req: &mut Request<'_>, _: &mut Data<'_>) {
        req.local_cache(|| Routed(true));
    }
}

/// Whether Rocket refused this request's method before any fairing saw it.
pub fn unknown_method(req: &Request<'_>) -> bool {
    !req.local_cache(|| Routed(false)).0
}

/// The path as the routes see it: `/api/x/` is `/api/x`, and `/api/products-category...`
/// is `/api/products/category...` (the request fairing rewrites both before routing, but
/// a request with an unknown method never reaches it).
fn routed_path(path: &str) -> String {
    let mut path = path.to_string();
    if path.starts_with("/api/") && path.len() > 5 {
        path = path.trim_end_matches('/').to_string();
    }
    if let Some(rest) = path.strip_prefix("/api/products-category") {
        if rest.is_empty() || rest.starts_with('/') {
            path = format!("/api/products/category{rest}");
        }
    }
    path
}

/// Whether a route's path template matches a request path (ignoring parameter types).
fn template_matches(template: &str, path: &str) -> bool {
    let mut want = template.split('/').filter(|s| !s.is_empty());
    let mut have = path.split('/').filter(|s| !s.is_empty());
    loop {
        match (want.next(), have.next()) {
            (None, None) => return true,
            (Some(t), rest) if t.starts_with('<') && t.ends_with("..>") => {
                let _ = rest;
                return true;
            }
            (Some(t), Some(h)) => {
                let dynamic = t.starts_with('<') && t.ends_with('>');
                if !dynamic && t != h {
                    return false;
                }
            }
            _ => return false,
        }
    }
}

/// The methods the routes serve at this request's path, in a stable order, with `HEAD`
/// where `GET` is served (Rocket answers it) and `OPTIONS` (the CORS preflight answers
/// every path). Routes whose path is exactly this one (`/api/orders/checkout`) come
/// before those that would take it as a parameter (`/api/orders/<order_id>`). Empty when
/// no route but the preflight serves the path.
pub fn allowed_methods(req: &Request<'_>) -> Vec<Method> {
    let path = routed_path(req.uri().path().as_str());
    let matching: Vec<_> = req
        .rocket()
        .routes()
        .filter(|r| r.method != Method::Options)
        .filter(|r| template_matches(r.uri.origin.path().as_str(), &path))
        .collect();
    let exact: Vec<_> = matching
        .iter()
        .filter(|r| !r.uri.origin.path().as_str().contains('<'))
        .collect();
    let mut found: Vec<Method> = if exact.is_empty() {
        matching.iter().map(|r| r.method).collect()
    } else {
        exact.iter().map(|r| r.method).collect()
    };
    if found.is_empty() {
        return found;
    }
    if found.contains(&Method::Get) {
        found.push(Method::Head);
    }
    found.push(Method::Options);
    const ORDER: [Method; 7] = [
        Method::Get,
        Method::Head,
        Method::Post,
        Method::Put,
        Method::Patch,
        Method::Delete,
        Method::Options,
    ];
    ORDER.into_iter().filter(|m| found.contains(m)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_match_by_segment() {
        assert!(template_matches(
            "/api/products/<slug>",
            "/api/products/red"
        ));
        assert!(!template_matches("/api/products/<slug>", "/api/products"));
        assert!(!template_matches(
            "/api/products/<slug>",
            "/api/products/a/b"
        ));
        assert!(template_matches("/media/<name>", "/media/x.png"));
        assert!(template_matches("/docs/<path..>", "/docs/a/b"));
        assert!(template_matches("/", "/"));
        assert!(!template_matches("/", "/x"));
    }

    #[test]
    fn the_alias_and_trailing_slash_route_like_their_targets() {
        assert_eq!(routed_path("/api/products/"), "/api/products");
        assert_eq!(
            routed_path("/api/products-category/3"),
            "/api/products/category/3"
        );
        assert_eq!(
            routed_path("/api/products-categoryx"),
            "/api/products-categoryx"
        );
        assert_eq!(routed_path("/admin/"), "/admin/");
    }
}
