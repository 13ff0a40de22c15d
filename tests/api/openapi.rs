//! The OpenAPI document tells the truth (issue 11 item 6): what it declares about
//! parameters, bodies and statuses is what the server does, and the server answers what a
//! client of the document expects (405 with `Allow`, 422 naming the field).

use crate::common;

use common::*;
use rocket::http::{ContentType, Header, Method, Status};
use serde_json::{json, Value};

fn op<'s>(spec: &'s Value, method: &str, path: &str) -> &'s Value {
    let op = &spec["paths"][path][method];
    assert!(op.is_object(), "the document has no {method} {path}");
    op
}

fn param<'s>(op: &'s Value, name: &str) -> &'s Value {
    op["parameters"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no parameter {name} in {op}"))
}

/// A body's schema with `$ref`s to components followed (one level, and `allOf`).
fn body_schema(spec: &Value, op: &Value) -> Value {
    let schema = &op["requestBody"]["content"]["application/json"]["schema"];
    let resolve = |s: &Value| -> Value {
        match s["$ref"].as_str() {
            Some(r) => spec["components"]["schemas"][r.rsplit('/').next().unwrap()].clone(),
            None => s.clone(),
        }
    };
    let mut out = resolve(schema);
    if let Some(parts) = schema["allOf"].as_array() {
        let mut merged = resolve(&parts[0]);
        merged["required"] = schema["required"].clone();
        out = merged;
    }
    out
}

#[rocket::async_test]
async fn pagination_parameters_are_optional_and_bounded_like_the_server() {
    let t = app().await;
    let spec = openapi(&t).await;
    let mut seen = 0;
    for (path, method, op) in operations(&spec) {
        for p in op["parameters"].as_array().into_iter().flatten() {
            let name = p["name"].as_str().unwrap();
            if p["in"] != "query" || !["page", "limit", "size"].contains(&name) {
                continue;
            }
            seen += 1;
            let at = format!("{method} {path} {name}");
            assert_ne!(p["required"], true, "{at}");
            assert_eq!(p["schema"]["type"], "integer", "{at}");
            assert_eq!(p["schema"]["minimum"], 1.0, "{at}");
            assert!(p["schema"]["maximum"].is_number(), "{at}");
            assert!(p["schema"].get("nullable").is_none(), "{at}");
            if name != "page" {
                assert_eq!(p["schema"]["maximum"], 100.0, "{at}");
            }
        }
    }
    assert!(
        seen >= 3 * 8,
        "only {seen} pagination parameters documented"
    );
    // The server refuses just outside what the document allows, and takes its edges.
    for (query, status) in [
        ("limit=0", Status::UnprocessableEntity),
        ("limit=101", Status::UnprocessableEntity),
        ("size=0", Status::UnprocessableEntity),
        ("page=0", Status::UnprocessableEntity),
        ("limit=1&page=1", Status::Ok),
        ("limit=100", Status::Ok),
    ] {
        let (got, body) = send(
            &t,
            Method::Get,
            &format!("/api/products?{query}"),
            None,
            None,
        )
        .await;
        assert_eq!(got, status, "{query}: {body}");
    }
}

#[rocket::async_test]
async fn optional_filters_are_optional_and_the_verify_token_required() {
    let t = app().await;
    let spec = openapi(&t).await;
    for path in ["/api/products/", "/api/products/search"] {
        let op = op(&spec, "get", path);
        for name in [
            "category",
            "categories",
            "title",
            "description",
            "min_price",
            "in_stock",
            "sort",
            "q",
        ] {
            assert_ne!(param(op, name)["required"], true, "{path} {name}");
        }
        assert_eq!(param(op, "category")["schema"]["type"], "array");
        let sorts = param(op, "sort")["schema"]["enum"].clone();
        assert_eq!(
            sorts,
            json!([
                "newest",
                "price_asc",
                "price_desc",
                "title",
                "rating",
                "relevance"
            ])
        );
    }
    let admin_orders = op(&spec, "get", "/api/orders/admin/all");
    for name in ["status", "shipping_status", "user_id"] {
        assert_ne!(param(admin_orders, name)["required"], true, "{name}");
    }
    for path in ["/api/account/verify", "/api/account/verify-email"] {
        assert_eq!(
            param(op(&spec, "get", path), "token")["required"],
            true,
            "{path}"
        );
        let (status, body) = send(&t, Method::Get, path, None, None).await;
        assert_eq!(status, Status::UnprocessableEntity, "{body}");
    }
    // Every optional filter left out: a plain list.
    let (status, _) = send(&t, Method::Get, "/api/products/", None, None).await;
    assert_eq!(status, Status::Ok);
    let summary = op(&spec, "get", "/api/admin/summary");
    assert_eq!(param(summary, "low_stock")["schema"]["type"], "integer");
}

#[rocket::async_test]
async fn a_new_product_requires_its_title_and_price_in_both_forms() {
    let t = app().await;
    let spec = openapi(&t).await;
    let create = &op(&spec, "post", "/api/products/")["requestBody"]["content"];
    for media in ["application/json", "multipart/form-data"] {
        let schema = &create[media]["schema"];
        // Stated on the operation's own schema (schemathesis cannot generate for `allOf`
        // with `required` beside it), and a null is no title or price.
        assert!(schema["allOf"].is_null(), "{media}: {schema}");
        assert_eq!(schema["required"], json!(["price", "title"]), "{media}");
        for field in ["title", "price"] {
            assert_ne!(
                schema["properties"][field]["nullable"], true,
                "{media} {field}"
            );
        }
    }
    // The shared schema that PATCH uses stays optional and nullable.
    let shared = &spec["components"]["schemas"]["ProductIn"];
    assert!(shared["required"].is_null());
    assert_eq!(shared["properties"]["title"]["nullable"], true);
    let update = &op(&spec, "patch", "/api/products/{product_id}")["requestBody"]["content"];
    assert!(update["multipart/form-data"]["schema"]["required"].is_null());
    // An image upload needs its file, under any of its three names.
    let image = &op(&spec, "post", "/api/products/{product_id}/image")["requestBody"]["content"]
        ["multipart/form-data"]["schema"];
    assert_eq!(image["minProperties"], 1);
}

#[rocket::async_test]
async fn bodies_declare_the_lengths_and_formats_the_server_checks() {
    let t = app().await;
    let spec = openapi(&t).await;
    let register = body_schema(&spec, op(&spec, "post", "/api/account/register"));
    let props = &register["properties"];
    assert_eq!(props["email"]["format"], "email");
    assert_eq!(props["email"]["maxLength"], 254);
    assert_eq!(props["password"]["minLength"], 8);
    assert_eq!(props["password"]["maxLength"], 128);
    assert_eq!(props["name"]["maxLength"], 100);
    assert!(props["name"]["pattern"].is_string());
    let me = body_schema(&spec, op(&spec, "patch", "/api/account/me"));
    assert_eq!(me["properties"]["name"]["maxLength"], 100);
    for path in [
        "/api/account/change-password",
        "/api/account/reset-password",
    ] {
        let s = body_schema(&spec, op(&spec, "post", path));
        assert_eq!(s["properties"]["new_password"]["minLength"], 8, "{path}");
        assert_eq!(s["properties"]["new_password"]["maxLength"], 128, "{path}");
    }
    let forgot = body_schema(&spec, op(&spec, "post", "/api/account/forgot-password"));
    assert_eq!(forgot["properties"]["email"]["format"], "email");
    let address = body_schema(&spec, op(&spec, "post", "/api/shippings/addresses"));
    assert_eq!(
        address["required"],
        json!(["address_line1", "city", "country", "postal_code", "state"])
    );
    assert_eq!(address["properties"]["postal_code"]["maxLength"], 20);

    // The server's limits are the document's: at the edge accepted, past it refused.
    let (status, body) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "edge@example.com", "password": "x".repeat(128), "name": "n".repeat(100)}),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    for bad in [
        json!({"email": "a@example.com", "password": "x".repeat(129)}),
        json!({"email": "a@example.com", "password": "x".repeat(7)}),
        json!({"email": "a@example.com", "password": "long enough", "name": "n".repeat(101)}),
        json!({"email": "a@example.com", "password": "long enough", "name": "   "}),
        json!({"email": "not an email", "password": "long enough"}),
    ] {
        let (status, body) = post_json(&t, "/api/account/register", bad.clone()).await;
        assert_eq!(status, Status::UnprocessableEntity, "{bad} -> {body}");
    }
    // A name padded past 100 characters is past the limit, as the schema counts it.
    let token = customer(&t, "c@example.com").await;
    let padded = format!("  {}  ", "n".repeat(98));
    let (status, _) = send(
        &t,
        Method::Patch,
        "/api/account/me",
        Some(&token),
        Some(json!({"name": padded})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
}

#[rocket::async_test]
async fn every_status_the_server_answers_is_documented() {
    let t = app().await;
    let spec = openapi(&t).await;
    let has = |method: &str, path: &str, code: &str| {
        assert!(
            op(&spec, method, path)["responses"][code].is_object(),
            "{method} {path} does not document {code}"
        );
    };
    has("post", "/api/account/login", "401");
    has("post", "/api/account/login", "403");
    has("post", "/api/account/register", "409");
    has("post", "/api/carts/add", "409");
    has("patch", "/api/carts/increase/{product_id}", "409");
    has("post", "/api/orders/checkout", "409");
    has("patch", "/api/orders/cancel/{order_id}", "409");
    has("put", "/api/shippings/status/{order_id}", "409");
    has("post", "/api/products/", "409");
    has("post", "/api/products/", "415");
    has("post", "/api/products/{product_id}/image", "415");
    has("post", "/api/products/category", "409");
    has("post", "/api/products/{product_id}/reviews", "409");
    has("patch", "/api/account/users/{user_id}", "409");
    let mut bodies = 0;
    for (path, method, op) in operations(&spec) {
        if op["requestBody"].is_object() {
            bodies += 1;
            assert!(
                op["responses"]["413"].is_object(),
                "{method} {path} reads a body but does not document 413"
            );
        }
    }
    assert!(bodies >= 15, "only {bodies} operations with a body");

    // And the server does answer them.
    register(&t, "taken@example.com").await;
    let (status, _) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "taken@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::Conflict);
    let (status, _) = post_json(
        &t,
        "/api/account/login",
        json!({"email": "taken@example.com", "password": "wrong password"}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    let admin = admin(&t, "a@example.com").await;
    let res = t
        .client
        .post("/api/products/1/image")
        .header(bearer(&admin))
        .header(ContentType::JSON)
        .body("{}")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnsupportedMediaType);
}

#[rocket::async_test]
async fn the_product_route_does_not_promise_a_product_for_category_or_search() {
    let t = app().await;
    let spec = openapi(&t).await;
    // One template per path: `/api/products/{slug}` and `/api/products/{product_id}` were
    // the same path under two names.
    let mut templates = std::collections::HashMap::new();
    for path in spec["paths"].as_object().unwrap().keys() {
        let shape: Vec<&str> = path
            .trim_end_matches('/')
            .split('/')
            .map(|s| if s.starts_with('{') { "{}" } else { s })
            .collect();
        if let Some(other) = templates.insert(shape.join("/"), path.clone()) {
            panic!("{path} and {other} are the same path");
        }
    }
    let get = op(&spec, "get", "/api/products/{product_id}");
    let schema = &param(get, "product_id")["schema"];
    let excluded = schema["not"]["enum"].as_array().expect("words excluded");
    for word in ["category", "search"] {
        assert!(excluded.contains(&json!(word)), "{word} is not excluded");
        // What the server answers there is not a product.
        let (status, body) = send(
            &t,
            Method::Get,
            &format!("/api/products/{word}"),
            None,
            None,
        )
        .await;
        assert_eq!(status, Status::Ok);
        assert!(body.get("slug").is_none(), "{word}: {body}");
    }
    assert!(op(&spec, "get", "/api/products/category")["responses"]["200"].is_object());
}

#[rocket::async_test]
async fn the_category_alias_is_documented_and_answers() {
    let t = app().await;
    let spec = openapi(&t).await;
    op(&spec, "get", "/api/products-category");
    op(&spec, "post", "/api/products-category");
    op(&spec, "patch", "/api/products-category/{category_id}");
    op(&spec, "delete", "/api/products-category/{category_id}");
    let ids: Vec<&str> = operations(&spec)
        .iter()
        .filter_map(|(_, _, op)| op["operationId"].as_str())
        .collect();
    let unique: std::collections::HashSet<&&str> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "operation ids repeat");
    let (status, body) = send(&t, Method::Get, "/api/products-category/", None, None).await;
    assert_eq!(status, Status::Ok);
    assert!(body.is_array());
}

#[rocket::async_test]
async fn a_method_a_path_does_not_serve_is_405_with_allow() {
    let t = app().await;
    for (method, path, allowed) in [
        (Method::Trace, "/api/products", vec!["GET", "POST"]),
        (
            Method::Put,
            "/api/products/1",
            vec!["GET", "PATCH", "DELETE"],
        ),
        (Method::Delete, "/api/carts/", vec!["GET"]),
        (Method::Get, "/api/account/login", vec!["POST"]),
        (
            Method::Trace,
            "/api/products-category/",
            vec!["GET", "POST"],
        ),
        (Method::Post, "/health", vec!["GET"]),
        // Paths served exactly, asked with a method that an admin route on
        // `/api/products/<product_id>` would take them for: 405 before its login check.
        (Method::Patch, "/api/products/search", vec!["GET"]),
        (Method::Delete, "/api/products/search", vec!["GET"]),
        (Method::Patch, "/api/products/category", vec!["GET", "POST"]),
        (
            Method::Delete,
            "/api/products-category",
            vec!["GET", "POST"],
        ),
    ] {
        let res = t.client.req(method, path).dispatch().await;
        assert_eq!(res.status(), Status::MethodNotAllowed, "{method} {path}");
        let allow = res
            .headers()
            .get_one("Allow")
            .expect("an Allow header")
            .to_string();
        for m in allowed {
            assert!(
                allow.split(", ").any(|a| a == m),
                "{method} {path}: Allow: {allow}"
            );
        }
        assert!(!allow.split(", ").any(|a| a == method.as_str()), "{allow}");
        let body: Value = res.into_json().await.unwrap();
        assert!(body["detail"].is_string());
    }
    // A method the path is served with still asks for a login first.
    let res = t.client.patch("/api/products/1").dispatch().await;
    assert_eq!(res.status(), Status::Unauthorized);
    // A path nothing serves stays a 404.
    let res = t
        .client
        .req(Method::Trace, "/api/nothing-here")
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::NotFound);
    let res = t.client.get("/api/nothing-here").dispatch().await;
    assert_eq!(res.status(), Status::NotFound);
}

#[test]
fn a_method_rocket_does_not_know_is_405_on_a_served_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(dir.path(), &[]);
    server.wait_ready();
    let (status, headers, body) = http(server.port, "QUERY", "/api/products", &[], "").unwrap();
    assert_eq!(status, 405, "{body}");
    let allow = headers
        .iter()
        .find(|(k, _)| k == "allow")
        .map(|(_, v)| v.clone())
        .expect("an Allow header");
    assert!(allow.contains("GET"), "{allow}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["detail"].is_string());
    let (status, _, _) = http(server.port, "QUERY", "/api/nothing-here", &[], "").unwrap();
    assert_ne!(status, 405);
    let (status, headers, _) = http(server.port, "TRACE", "/api/products/", &[], "").unwrap();
    assert_eq!(status, 405);
    assert!(headers.iter().any(|(k, _)| k == "allow"));
}

#[rocket::async_test]
async fn a_repeated_parameter_with_a_bad_value_is_a_422() {
    let t = app().await;
    let token = customer(&t, "c@example.com").await;
    for query in [
        "/api/products?page=abc&page=1",
        "/api/products?page=1&page=abc",
        "/api/products?limit=0&limit=5",
        "/api/products?limit=5&limit=0",
        "/api/products?page=1&page=2",
        "/api/products/search?size=5&size=500",
        "/api/products?min_price=1&min_price=x",
        "/api/products?sort=title&sort=nonsense",
        "/api/products?in_stock=true&in_stock=maybe",
        "/api/orders?page=1&page=0",
        "/api/payments?limit=5&limit=0",
        "/api/products/1/reviews?limit=5&limit=0",
    ] {
        let (status, body) = send(&t, Method::Get, query, Some(&token), None).await;
        assert_eq!(status, Status::UnprocessableEntity, "{query}: {body}");
        assert_eq!(body["detail"][0]["loc"][0], "query", "{query}: {body}");
    }
    let (status, body) = send(
        &t,
        Method::Get,
        "/api/products?page=2&page=2&limit=5",
        None,
        None,
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(body["page"], 2);
    // Filters may repeat: either value matches.
    let (status, _) = send(&t, Method::Get, "/api/products?title=a&title=b", None, None).await;
    assert_eq!(status, Status::Ok);
}

#[rocket::async_test]
async fn postal_code_and_pin_code_together_name_the_field() {
    let t = app().await;
    let token = customer(&t, "c@example.com").await;
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/shippings/addresses",
        Some(&token),
        Some(
            json!({"address_line1": "1 Main St", "city": "Town", "state": "ST",
            "postal_code": "12345", "pin_code": "54321", "country": "US"}),
        ),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity, "{body}");
    assert_eq!(
        body["detail"][0]["loc"],
        json!(["body", "postal_code"]),
        "{body}"
    );
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/shippings/addresses",
        Some(&token),
        Some(
            json!({"address_line1": "1 Main St", "city": "Town", "state": "ST",
            "pin_code": "54321", "country": "US"}),
        ),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    assert_eq!(body["postal_code"], "54321");
}

#[rocket::async_test]
async fn an_empty_multipart_body_is_not_too_large() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let (status, p) = send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Lamp", "price": 1})),
    )
    .await;
    assert_eq!(status, Status::Created);
    let image = format!("/api/products/{}/image", p["id"]);
    for path in ["/api/products", image.as_str()] {
        for content_type in ["multipart/form-data; boundary=xyz", "multipart/form-data"] {
            let res = t
                .client
                .post(path.to_string())
                .header(bearer(&admin))
                .header(Header::new("Content-Type", content_type))
                .body("")
                .dispatch()
                .await;
            let status = res.status();
            let body: Value = res.into_json().await.unwrap_or(Value::Null);
            assert!(
                status == Status::BadRequest || status == Status::UnprocessableEntity,
                "{path} {content_type}: {status} {body}"
            );
        }
    }
}

/// Every amount, sent or answered, is one `Money` schema: a number of at most 2 decimals
/// between 0 and the largest amount the shop keeps.
#[rocket::async_test]
async fn amounts_are_one_money_schema_with_its_bounds() {
    let t = app().await;
    let spec = openapi(&t).await;
    let schemas = &spec["components"]["schemas"];
    assert_eq!(
        schemas["Money"],
        json!({
            "description": "An amount in the shop's currency, at most 2 decimals",
            "type": "number",
            "multipleOf": 0.01,
            "minimum": 0.0,
            "maximum": 9_999_999_999.99,
        })
    );
    // Sent (`MoneyIn`) and answered (`Money`) amounts name the same schema.
    assert_eq!(
        schemas["ProductIn"]["properties"]["price"]["allOf"][0]["$ref"],
        "#/components/schemas/Money"
    );
    assert_eq!(
        schemas["ProductOut"]["properties"]["price"]["$ref"],
        "#/components/schemas/Money"
    );
}
