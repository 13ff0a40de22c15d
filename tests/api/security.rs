//! SECURITY.md items checked across the whole OpenAPI document, and token expiry at its
//! boundary.

use crate::common;

use common::*;
use rocket::http::{ContentType, Cookie, Header, Method, Status};
use serde_json::Value;
use std::collections::BTreeMap;

const FOREIGN: &str = "https://evil.example";
/// The default `public_url` of a test app.
const OWN: &str = "http://127.0.0.1:8000";

/// One request with the login cookies (or none) and an `Origin`.
async fn with_origin(
    t: &TestApp,
    method: Method,
    path: &str,
    cookies: Option<(&str, &str)>,
    origin: &str,
) -> (Status, Value) {
    let mut req = t
        .client
        .req(method, path.to_string())
        .header(ContentType::JSON)
        .header(Header::new("Origin", origin.to_string()))
        .body("{}");
    if let Some((access, refresh)) = cookies {
        req = req
            .cookie(Cookie::new("access_token", access.to_string()))
            .cookie(Cookie::new("refresh_token", refresh.to_string()));
    }
    let res = req.dispatch().await;
    let status = res.status();
    (status, res.into_json().await.unwrap_or(Value::Null))
}

fn is_cross_site_refusal(status: Status, body: &Value) -> bool {
    status == Status::Forbidden
        && body["detail"]
            .as_str()
            .is_some_and(|d| d.to_ascii_lowercase().contains("cross-site"))
}

/// Every POST, PUT, PATCH and DELETE of the document, sent with an admin's login cookies
/// from a foreign `Origin`: each operation that takes a login is a 403 naming the
/// cross-site rule (and is not one from the shop's own origin); each that takes none
/// answers as if no cookie had been sent, unless it refuses the cross-site cookie too.
#[rocket::async_test]
async fn cookie_writes_from_a_foreign_origin_are_refused_on_every_operation() {
    // One login per operation: more than the login rate limit allows.
    let t = app_with(|c| c.rate_limit.enabled = false, |r| r).await;
    admin(&t, "csrf-admin@example.com").await;
    let spec = openapi(&t).await;
    let mut walked: BTreeMap<String, usize> = BTreeMap::new();
    let mut with_login = 0;
    for (path, method, op) in operations(&spec) {
        if !["post", "put", "patch", "delete"].contains(&method) {
            continue;
        }
        let concrete = concrete_path(path);
        let m: Method = method.to_uppercase().parse().unwrap();
        // A fresh login each time: an operation may end its session (logout).
        let (access, refresh, _) = login(&t, "csrf-admin@example.com", PASSWORD).await;
        let cookies = Some((access.as_str(), refresh.as_str()));
        let (status, body) = with_origin(&t, m, &concrete, cookies, FOREIGN).await;
        if security_schemes(op).is_empty() {
            if !is_cross_site_refusal(status, &body) {
                let (bare, _) = with_origin(&t, m, &concrete, None, FOREIGN).await;
                assert_eq!(
                    status, bare,
                    "{method} {path}: the cookie changed the answer"
                );
            }
        } else {
            assert!(
                is_cross_site_refusal(status, &body),
                "{method} {path}: {status} {body}"
            );
            let (status, body) = with_origin(&t, m, &concrete, cookies, OWN).await;
            assert!(
                !is_cross_site_refusal(status, &body),
                "{method} {path} from the shop's own origin: {status} {body}"
            );
            with_login += 1;
        }
        *walked.entry(method.to_string()).or_default() += 1;
    }
    for method in ["post", "put", "patch", "delete"] {
        assert!(
            walked.contains_key(method),
            "no {method} walked: {walked:?}"
        );
    }
    assert!(with_login > 0);
    eprintln!("walked {walked:?}, {with_login} with a login");
}

/// A refresh by cookie from a foreign origin is refused although `/refresh` lists no
/// security scheme.
#[rocket::async_test]
async fn cookie_refresh_from_a_foreign_origin_is_refused() {
    let t = app().await;
    register(&t, "rf@example.com").await;
    let (access, refresh, _) = login(&t, "rf@example.com", PASSWORD).await;
    let cookies = Some((access.as_str(), refresh.as_str()));
    let (status, body) =
        with_origin(&t, Method::Post, "/api/account/refresh", cookies, FOREIGN).await;
    assert!(is_cross_site_refusal(status, &body), "{status} {body}");
    let (status, body) = with_origin(&t, Method::Post, "/api/account/refresh", cookies, OWN).await;
    assert_eq!(status, Status::Ok, "{body}");
}

fn claims_of(token: &str) -> Value {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&Base64UrlUnpadded::decode_vec(payload).unwrap()).unwrap()
}

/// SECURITY.md: `exp` is checked with at most 60 s of leeway. Tokens are minted with the
/// app's own key for a live session and an `exp` a few seconds either side of the limit.
#[rocket::async_test]
async fn access_token_exp_leeway_is_sixty_seconds() {
    let t = app().await;
    register(&t, "exp@example.com").await;
    let (access, _, body) = login(&t, "exp@example.com", PASSWORD).await;
    let user_id = body["user"]["id"].as_u64().unwrap();
    let sid = claims_of(&access)["sid"].as_u64().unwrap();
    let jwt = &state(&t).jwt;
    let now = rocket::time::OffsetDateTime::now_utc().unix_timestamp();
    let expiring_at = |exp: i64| jwt.issue(user_id, sid, now - 3600, exp - (now - 3600));

    let inside = expiring_at(now - 57);
    assert_eq!(claims_of(&inside)["exp"], now - 57);
    let (status, me) = send(&t, Method::Get, "/api/account/me", Some(&inside), None).await;
    assert_eq!(status, Status::Ok, "expired 57 s ago: {me}");
    assert_eq!(me["email"], "exp@example.com");

    let outside = expiring_at(now - 63);
    let (status, body) = send(&t, Method::Get, "/api/account/me", Some(&outside), None).await;
    assert_eq!(status, Status::Unauthorized, "expired 63 s ago: {body}");
    assert_eq!(body["detail"], "Token expired");
}

/// The shop's own origin is that of `public_url` even when it has a path, and no more.
#[rocket::async_test]
async fn the_own_origin_of_a_public_url_with_a_path() {
    let t = app_with(
        |c| c.public_url = Some("https://shop.example.com/store".into()),
        |r| r,
    )
    .await;
    register(&t, "path@example.com").await;
    let (access, refresh, _) = login(&t, "path@example.com", PASSWORD).await;
    let cookies = Some((access.as_str(), refresh.as_str()));
    for (origin, trusted) in [
        ("https://shop.example.com", true),
        ("https://shop.example.com/", true),
        ("https://shop.example", false),
        ("https://shop.example.com.evil.example", false),
        ("http://shop.example.com", false),
        ("https://shop.example.com/store", false),
    ] {
        let (status, body) = with_origin(
            &t,
            Method::Post,
            "/api/account/verify-request",
            cookies,
            origin,
        )
        .await;
        assert_eq!(
            !is_cross_site_refusal(status, &body),
            trusted,
            "{origin}: {status} {body}"
        );
    }
}

/// A preflight from an origin that is not allowed gets no CORS headers, and the same
/// empty 204 as an allowed one.
#[rocket::async_test]
async fn a_preflight_from_a_foreign_origin_gets_no_cors_headers() {
    let t = app().await;
    let res = t
        .client
        .options("/api/account/me")
        .header(Header::new("Origin", FOREIGN))
        .header(Header::new("Access-Control-Request-Method", "PATCH"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NoContent);
    for name in [
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Credentials",
        "Access-Control-Allow-Methods",
    ] {
        assert!(res.headers().get_one(name).is_none(), "{name}");
    }
}

/// An `Authorization` header that is not a usable bearer token leaves the cookie in charge.
#[rocket::async_test]
async fn a_non_bearer_authorization_header_falls_back_to_the_cookie() {
    let t = app().await;
    register(&t, "fallback@example.com").await;
    let (access, _, _) = login(&t, "fallback@example.com", PASSWORD).await;
    for header in ["Basic dXNlcjpwYXNz", "Bearer    ", "Bearer"] {
        let res = t
            .client
            .get("/api/account/me")
            .header(Header::new("Authorization", header))
            .cookie(Cookie::new("access_token", access.clone()))
            .dispatch()
            .await;
        assert_eq!(res.status(), Status::Ok, "{header:?}");
        let me: Value = res.into_json().await.unwrap();
        assert_eq!(me["email"], "fallback@example.com");
    }
    let (status, _) = send(&t, Method::Get, "/api/account/me", Some("not-a-jwt"), None).await;
    assert_eq!(status, Status::Unauthorized);
}

/// Every operation that takes a login documents its 401 and 403, and so does `/refresh`;
/// rate-limited ones document their 429.
#[rocket::async_test]
async fn secured_operations_document_their_refusals() {
    let t = app().await;
    let spec = openapi(&t).await;
    let mut secured = 0;
    for (path, method, op) in operations(&spec) {
        if security_schemes(op).is_empty() && path != "/api/account/refresh" {
            continue;
        }
        for status in ["401", "403"] {
            assert!(
                op["responses"][status]["description"].is_string(),
                "{method} {path} does not document {status}"
            );
        }
        secured += 1;
    }
    assert!(secured > 1);
    // SPEC.md's rate-limited routes document their 429.
    let paths = &spec["paths"];
    for path in ["login", "register", "forgot-password", "verify-request"] {
        let op = &paths[format!("/api/account/{path}")]["post"];
        assert!(
            op["responses"]["429"]["description"].is_string(),
            "{path}: {op}"
        );
    }
    let schemes = &spec["components"]["securitySchemes"];
    for name in ["user", "admin"] {
        assert_eq!(schemes[name]["type"], "http", "{schemes}");
        assert_eq!(schemes[name]["scheme"], "bearer", "{schemes}");
    }
}
