//! The empty shop: pages, health, metrics, OpenAPI, the error model and request ids.

use crate::common;

use rocket::http::{Header, Status};
use rocket::{get, post, routes};
use serde::Deserialize;
use serde_json::Value;
use shopbox::http::{ApiError, ApiJson, ApiResult, FieldError, PageQuery, Validate};

use common::app;

#[rocket::async_test]
async fn index_page_names_the_shop_and_links_the_docs() {
    let t = common::app_with(|c| c.shop_name = "Tea & <Cakes>".into(), |r| r).await;
    let res = t.client.get("/").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    let body = res.into_string().await.unwrap();
    assert!(body.contains("Tea &amp; &lt;Cakes&gt;"));
    assert!(body.contains("href=\"/docs/\""));
    let css = t.client.get("/static/style.css").dispatch().await;
    assert_eq!(css.status(), Status::Ok);
    let etag = css.headers().get_one("ETag").unwrap().to_string();
    let again = t
        .client
        .get("/static/style.css")
        .header(Header::new("If-None-Match", etag))
        .dispatch()
        .await;
    assert_eq!(again.status(), Status::NotModified);
}

#[rocket::async_test]
async fn health_and_shop_answer() {
    let t = app().await;
    let res = t.client.get("/health").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_json::<Value>().await.unwrap()["status"], "ok");
    let shop: Value = t
        .client
        .get("/api/shop")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert_eq!(shop["name"], "shopbox");
    assert_eq!(shop["currency"], "USD");
    assert_eq!(shop["version"], env!("CARGO_PKG_VERSION"));
}

#[rocket::async_test]
async fn trailing_slash_reaches_the_same_route_without_redirect() {
    let t = app().await;
    let res = t.client.get("/api/shop/").dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_json::<Value>().await.unwrap()["currency"], "USD");
}

#[rocket::async_test]
async fn unknown_paths_answer_json_404_with_a_request_id() {
    let t = app().await;
    let res = t.client.get("/api/nothing-here").dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
    assert!(res.headers().get_one("X-Request-Id").is_some());
    assert_eq!(
        res.into_json::<Value>().await.unwrap(),
        serde_json::json!({"detail": "Not found"})
    );
}

#[rocket::async_test]
async fn a_sane_incoming_request_id_is_kept_and_a_wild_one_replaced() {
    let t = app().await;
    let res = t
        .client
        .get("/health")
        .header(Header::new("X-Request-Id", "abc-123"))
        .dispatch()
        .await;
    assert_eq!(res.headers().get_one("X-Request-Id"), Some("abc-123"));
    let res = t
        .client
        .get("/health")
        .header(Header::new("X-Request-Id", "bad id\"<>"))
        .dispatch()
        .await;
    let id = res.headers().get_one("X-Request-Id").unwrap();
    assert_eq!(id.len(), 16);
}

#[rocket::async_test]
async fn metrics_count_requests_by_route_template_with_latency() {
    let t = app().await;
    t.client.get("/api/shop").dispatch().await;
    t.client.get("/api/nothing").dispatch().await;
    let text = t
        .client
        .get("/metrics")
        .dispatch()
        .await
        .into_string()
        .await
        .unwrap();
    assert!(text.contains(
        "shopbox_http_requests_total{method=\"GET\",route=\"/api/shop\",status=\"200\"} 1"
    ));
    assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"));
    assert!(text.contains(
        "shopbox_http_request_duration_seconds_bucket{route=\"/api/shop\",le=\"+Inf\"} 1"
    ));
}

#[rocket::async_test]
async fn openapi_documents_routes_and_declares_security_schemes() {
    let t = app().await;
    let spec: Value = t
        .client
        .get("/openapi.json")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert!(spec["paths"]["/api/shop"]["get"].is_object());
    assert!(spec["paths"]["/health"]["get"].is_object());
    let schemes = &spec["components"]["securitySchemes"];
    assert_eq!(schemes["user"]["scheme"], "bearer");
    assert_eq!(schemes["admin"]["scheme"], "bearer");
    let docs = t.client.get("/docs/").dispatch().await;
    assert_eq!(docs.status(), Status::SeeOther);
    let ui = t.client.get("/docs/index.html").dispatch().await;
    assert_eq!(ui.status(), Status::Ok);
    let config: Value = t
        .client
        .get("/docs/swagger-ui-config.json")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    assert_eq!(config["url"], "../openapi.json");
}

// Routes mounted only by these tests, to drive the error model through the real app.

#[derive(Deserialize)]
struct Widget {
    name: String,
    count: u32,
}

impl Validate for Widget {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.name.trim().is_empty() {
            errors.push(FieldError::body("name", "must not be empty"));
        }
        if self.count > 10 {
            errors.push(FieldError::body("count", "must be at most 10"));
        }
    }
}

#[post("/widgets", data = "<body>")]
fn create_widget(body: ApiJson<Widget>) -> (Status, String) {
    (Status::Created, format!("{}:{}", body.name, body.count))
}

#[get("/widgets/<widget_id>?<page..>")]
fn list_widget(widget_id: u64, page: PageQuery) -> ApiResult<String> {
    let mut errors = Vec::new();
    let p = page.parse(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    Ok(format!("{widget_id}:{}:{}", p.page, p.limit))
}

#[get("/boom")]
fn boom() -> ApiResult<String> {
    Err(ApiError::Internal("disk on fire at /var/secret".into()))
}

#[get("/panic")]
fn panics() -> &'static str {
    panic!("handler bug")
}

async fn test_routes_app() -> common::TestApp {
    common::app_with(
        |_| {},
        |r| {
            r.mount(
                "/api/test",
                routes![create_widget, list_widget, boom, panics],
            )
        },
    )
    .await
}

#[rocket::async_test]
async fn body_validation_errors_are_fastapi_shaped() {
    let t = test_routes_app().await;
    let post = |body: &'static str| t.client.post("/api/test/widgets").body(body).dispatch();

    let ok = post(r#"{"name": "a", "count": 2, "unknown": true}"#).await;
    assert_eq!(ok.status(), Status::Created);
    assert_eq!(ok.into_string().await.unwrap(), "a:2");

    let res = post(r#"{"name": " ", "count": 11}"#).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["body", "name"])
    );
    assert_eq!(
        body["detail"][1]["loc"],
        serde_json::json!(["body", "count"])
    );
    assert!(body["detail"][1]["msg"].is_string());
    assert!(body["detail"][1]["type"].is_string());

    let res = post(r#"{"name": "a"}"#).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["body", "count"])
    );
    assert_eq!(body["detail"][0]["type"], "missing");

    let res = post(r#"{"name": "a", "count": "many"}"#).await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["body", "count"])
    );

    let res = post(r#"{"name": "a", "#).await;
    assert_eq!(res.status(), Status::BadRequest);
    let body: Value = res.into_json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .starts_with("Malformed JSON"));

    let res = post(r#"{"name": "a", "count": 1e400}"#).await;
    assert!(res.status() == Status::BadRequest || res.status() == Status::UnprocessableEntity);

    let big = format!(
        r#"{{"name": "{}", "count": 1}}"#,
        "x".repeat(2 * 1024 * 1024)
    );
    let res = t
        .client
        .post("/api/test/widgets")
        .body(big)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::PayloadTooLarge);
    let body: Value = res.into_json().await.unwrap();
    assert!(body["detail"].is_string());
}

#[rocket::async_test]
async fn query_and_path_errors_name_their_parameter() {
    let t = test_routes_app().await;
    let res = t
        .client
        .get("/api/test/widgets/5?size=50&page=2")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_string().await.unwrap(), "5:2:50");

    let res = t.client.get("/api/test/widgets/5?limit=0").dispatch().await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["query", "limit"])
    );

    let res = t
        .client
        .get("/api/test/widgets/5?limit=101&page=x")
        .dispatch()
        .await;
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["detail"].as_array().unwrap().len(), 2);

    let res = t.client.get("/api/test/widgets/abc").dispatch().await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        body["detail"][0]["loc"],
        serde_json::json!(["path", "widget_id"])
    );
}

#[rocket::async_test]
async fn internal_errors_hide_the_cause_and_carry_the_request_id() {
    let t = test_routes_app().await;
    for path in ["/api/test/boom", "/api/test/panic"] {
        let res = t.client.get(path).dispatch().await;
        assert_eq!(res.status(), Status::InternalServerError, "{path}");
        let id = res.headers().get_one("X-Request-Id").unwrap().to_string();
        let body: Value = res.into_json().await.unwrap();
        assert_eq!(body["detail"], "internal error");
        assert_eq!(body["request_id"], id.as_str());
        assert!(!body.to_string().contains("secret"));
    }
}
