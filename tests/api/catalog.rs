//! `/api/products`: every route, filter and sort, failure paths, images, search, archive.

use crate::common;

use common::*;
use rocket::http::{ContentType, Header, Method, Status};
use serde_json::{json, Value};

async fn category(t: &TestApp, admin: &str, name: &str) -> u64 {
    let (status, body) = send(
        t,
        Method::Post,
        "/api/products/category",
        Some(admin),
        Some(json!({"name": name})),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    body["id"].as_u64().unwrap()
}

async fn product(t: &TestApp, admin: &str, body: Value) -> Value {
    let (status, reply) = send(
        t,
        Method::Post,
        "/api/products",
        Some(admin),
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, Status::Created, "{body} -> {reply}");
    reply
}

fn titles(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap().to_string())
        .collect()
}

async fn get(t: &TestApp, path: &str) -> (Status, Value) {
    send(t, Method::Get, path, None, None).await
}

fn multipart(fields: &[(&str, &str)], file: Option<(&str, &str, &[u8])>) -> (ContentType, Vec<u8>) {
    let boundary = "shopboxboundary42";
    let mut body = Vec::new();
    for (name, value) in fields {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes());
    }
    if let Some((field, filename, bytes)) = file {
        body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{field}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n").as_bytes());
        body.extend_from_slice(bytes);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (
        ContentType::new("multipart", "form-data").with_params(("boundary", boundary)),
        body,
    )
}

#[rocket::async_test]
async fn create_read_update_and_slug_rules() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let shoes = category(&t, &admin, "Shoes").await;
    let p = product(
        &t,
        &admin,
        json!({"title": "Red Shoes", "description": "Very red", "price": 19.99,
        "stock_quantity": 3, "category_ids": [shoes]}),
    )
    .await;
    assert_eq!(p["slug"], "red-shoes");
    assert_eq!(p["price"], 19.99);
    assert_eq!(p["in_stock"], true);
    assert_eq!(p["categories"][0]["name"], "Shoes");
    assert_eq!(p["rating_count"], 0);
    assert!(p["image_url"].is_null());
    let again = product(&t, &admin, json!({"title": "Red Shoes", "price": 5})).await;
    assert_eq!(again["slug"], "red-shoes-2");
    let reserved = product(&t, &admin, json!({"title": "Search", "price": 1})).await;
    assert_eq!(reserved["slug"], "search-item");
    let numeric = product(&t, &admin, json!({"title": "1234", "price": 1})).await;
    assert_eq!(numeric["slug"], "1234-item");

    let (status, by_slug) = get(&t, "/api/products/red-shoes").await;
    assert_eq!(status, Status::Ok);
    assert_eq!(by_slug["id"], p["id"]);
    let (_, by_id) = get(&t, &format!("/api/products/{}", p["id"])).await;
    assert_eq!(by_id["slug"], "red-shoes");
    assert_eq!(
        get(&t, "/api/products/no-such-thing").await.0,
        Status::NotFound
    );

    let path = format!("/api/products/{}", p["id"]);
    let (status, upd) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"price": 25, "stock_quantity": 0, "title": "Crimson Shoes"})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{upd}");
    assert_eq!(upd["price"], 25.0);
    assert_eq!(upd["in_stock"], false);
    assert_eq!(upd["title"], "Crimson Shoes");
    assert_eq!(upd["slug"], "red-shoes", "a slug stays unless changed");
    // SPEC: a duplicate slug is a 409; only slugs made from titles get suffixes.
    let (status, taken) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"slug": "red-shoes-2"})),
    )
    .await;
    assert_eq!(status, Status::Conflict, "{taken}");
    assert_eq!(taken["detail"], "Slug already exists");
    let (status, renamed) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"slug": "crimson-shoes"})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{renamed}");
    assert_eq!(renamed["slug"], "crimson-shoes");
    // Its own slug again is no conflict.
    let (status, same) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"slug": "crimson-shoes"})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{same}");
    assert_eq!(
        send(
            &t,
            Method::Patch,
            "/api/products/999",
            Some(&admin),
            Some(json!({"price": 1}))
        )
        .await
        .0,
        Status::NotFound
    );
}

/// Issue 11 item 5: `custom` used to become `custom-2` with a 201.
#[rocket::async_test]
async fn an_explicit_slug_that_is_taken_is_a_409() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let first = product(
        &t,
        &admin,
        json!({"title": "First", "price": 1, "slug": "custom"}),
    )
    .await;
    assert_eq!(first["slug"], "custom");
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Second", "price": 2, "slug": "custom"})),
    )
    .await;
    assert_eq!(status, Status::Conflict, "{body}");
    assert_eq!(body["detail"], "Slug already exists");
    let (_, list) = get(&t, "/api/products").await;
    assert_eq!(list["total"], 1, "the refused product was not written");

    // The same through multipart.
    let (ct, form) = multipart(
        &[("title", "Third"), ("price", "3"), ("slug", "custom")],
        None,
    );
    let res = t
        .client
        .post("/api/products")
        .header(ct)
        .header(bearer(&admin))
        .body(form)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Conflict);

    // A slug held by an archived product is taken too (its orders still name it).
    let kept = product(
        &t,
        &admin,
        json!({"title": "Kept", "price": 1, "slug": "kept"}),
    )
    .await;
    let kept_id = kept["id"].as_u64().unwrap();
    common::mark_referenced(&t, kept_id).await;
    let (status, _) = send(
        &t,
        Method::Delete,
        &format!("/api/products/{kept_id}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::NoContent);
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Kept again", "price": 2, "slug": "kept"})),
    )
    .await;
    assert_eq!(status, Status::Conflict, "{body}");
    // A title-made slug still gets its suffix.
    let made = product(&t, &admin, json!({"title": "Custom", "price": 1})).await;
    assert_eq!(made["slug"], "custom-2");
}

#[rocket::async_test]
async fn bad_input_and_wrong_callers_are_refused() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let cust = customer(&t, "c@example.com").await;
    for (body, field) in [
        (json!({"title": "X", "price": 1.999}), "price"),
        (json!({"title": "X", "price": -1}), "price"),
        (json!({"title": "", "price": 1}), "title"),
        (json!({"price": 1}), "title"),
        (json!({"title": "X"}), "price"),
        (
            json!({"title": "X", "price": 1, "stock_quantity": -3}),
            "stock_quantity",
        ),
        (json!({"title": "X", "price": "cheap"}), "price"),
        (
            json!({"title": "X", "price": 1, "slug": "Bad Slug"}),
            "slug",
        ),
        // A number would be read as a product id, `search` as the search route.
        (json!({"title": "X", "price": 1, "slug": "42"}), "slug"),
        (json!({"title": "X", "price": 1, "slug": "search"}), "slug"),
    ] {
        let (status, reply) = send(
            &t,
            Method::Post,
            "/api/products",
            Some(&admin),
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, Status::UnprocessableEntity, "{body} -> {reply}");
        let locs: Vec<Value> = reply["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["loc"].clone())
            .collect();
        assert!(locs.contains(&json!(["body", field])), "{body} -> {reply}");
    }
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ContentType::JSON)
        .body(r#"{"title": "X", "price": 1e400}"#)
        .dispatch()
        .await;
    assert!([Status::BadRequest, Status::UnprocessableEntity].contains(&res.status()));
    let (status, _) = send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "X", "price": 1, "category_ids": [77]})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);

    let body = json!({"title": "X", "price": 1});
    assert_eq!(
        send(
            &t,
            Method::Post,
            "/api/products",
            Some(&cust),
            Some(body.clone())
        )
        .await
        .0,
        Status::Forbidden
    );
    assert_eq!(
        send(&t, Method::Post, "/api/products", None, Some(body))
            .await
            .0,
        Status::Unauthorized
    );
    assert_eq!(
        send(
            &t,
            Method::Post,
            "/api/products/category",
            Some(&cust),
            Some(json!({"name": "N"}))
        )
        .await
        .0,
        Status::Forbidden
    );
    assert_eq!(
        send(&t, Method::Delete, "/api/products/1", Some(&cust), None)
            .await
            .0,
        Status::Forbidden
    );

    category(&t, &admin, "Hats").await;
    let (status, _) = send(
        &t,
        Method::Post,
        "/api/products/category",
        Some(&admin),
        Some(json!({"name": "hats"})),
    )
    .await;
    assert_eq!(status, Status::Conflict);
    let (status, _) = send(
        &t,
        Method::Post,
        "/api/products/category",
        Some(&admin),
        Some(json!({"name": " "})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
}

#[rocket::async_test]
async fn categories_count_rename_alias_and_delete() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let hats = category(&t, &admin, "Hats").await;
    let caps = category(&t, &admin, "Caps").await;
    let p = product(
        &t,
        &admin,
        json!({"title": "Wool Hat", "price": 10, "category_ids": [hats, caps]}),
    )
    .await;
    product(
        &t,
        &admin,
        json!({"title": "Straw Hat", "price": 12, "category_ids": [hats]}),
    )
    .await;
    let (_, list) = get(&t, "/api/products/category").await;
    assert_eq!(list[0]["product_count"], 2);
    assert_eq!(list[1]["product_count"], 1);
    let (_, alias) = get(&t, "/api/products-category/").await;
    assert_eq!(alias, list);

    let (status, renamed) = send(
        &t,
        Method::Patch,
        &format!("/api/products/category/{hats}"),
        Some(&admin),
        Some(json!({"name": "Headwear"})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(renamed["slug"], "headwear");
    assert_eq!(renamed["product_count"], 2);
    // Search follows the new name.
    let (_, found) = get(&t, "/api/products/search?q=headwear").await;
    assert_eq!(found["total"], 2);
    let (_, found) = get(&t, "/api/products/search?q=hats").await;
    assert_eq!(found["total"], 0, "the old name left the index: {found}");
    let (_, found) = get(&t, "/api/products/search?q=hat").await;
    assert_eq!(found["total"], 2);

    let (status, _) = send(
        &t,
        Method::Delete,
        &format!("/api/products-category/{caps}"),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(status, Status::NoContent);
    let (_, wool) = get(&t, &format!("/api/products/{}", p["id"])).await;
    assert_eq!(wool["categories"].as_array().unwrap().len(), 1);
    assert_eq!(
        send(
            &t,
            Method::Delete,
            "/api/products/category/999",
            Some(&admin),
            None
        )
        .await
        .0,
        Status::NotFound
    );
}

#[rocket::async_test]
async fn every_filter_and_sort_combines() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let shoes = category(&t, &admin, "Shoes").await;
    let hats = category(&t, &admin, "Hats").await;
    product(&t, &admin, json!({"title": "Alpha Boot", "description": "Leather", "price": 30, "stock_quantity": 1, "category_ids": [shoes]})).await;
    product(&t, &admin, json!({"title": "beta sneaker", "description": "Canvas", "price": 10, "stock_quantity": 0, "category_ids": [shoes]})).await;
    product(&t, &admin, json!({"title": "Gamma Cap", "description": "Cotton leather", "price": 20, "stock_quantity": 5, "category_ids": [hats]})).await;
    product(&t, &admin, json!({"title": "Delta Beanie", "description": "Wool", "price": 15.5, "stock_quantity": 2, "category_ids": [hats, shoes]})).await;

    let (_, all) = get(&t, "/api/products").await;
    assert_eq!(
        titles(&all),
        ["Delta Beanie", "Gamma Cap", "beta sneaker", "Alpha Boot"]
    );
    assert_eq!(
        (
            all["total"].as_u64(),
            all["pages"].as_u64(),
            all["limit"].as_u64()
        ),
        (Some(4), Some(1), Some(20))
    );
    let (_, asc) = get(&t, "/api/products?sort=price_asc").await;
    assert_eq!(
        titles(&asc),
        ["beta sneaker", "Delta Beanie", "Gamma Cap", "Alpha Boot"]
    );
    let (_, desc) = get(&t, "/api/products?sort=price_desc&limit=2&page=2").await;
    assert_eq!(titles(&desc), ["Delta Beanie", "beta sneaker"]);
    assert_eq!(desc["pages"], 2);
    let (_, by_title) = get(&t, "/api/products?sort=title").await;
    assert_eq!(
        titles(&by_title),
        ["Alpha Boot", "beta sneaker", "Delta Beanie", "Gamma Cap"]
    );
    let (_, rated) = get(&t, "/api/products?sort=rating").await;
    assert_eq!(rated["total"], 4);

    let (_, cat) = get(&t, "/api/products?category=shoes&sort=price_asc").await;
    assert_eq!(titles(&cat), ["beta sneaker", "Delta Beanie", "Alpha Boot"]);
    let (_, cat) = get(&t, &format!("/api/products?category={hats}")).await;
    assert_eq!(titles(&cat), ["Delta Beanie", "Gamma Cap"]);
    let (_, either) = get(
        &t,
        &format!("/api/products?category={hats}&category=shoes&sort=title"),
    )
    .await;
    assert_eq!(either["total"], 4);
    let (_, named) = get(&t, "/api/products?categories=Hats&categories=Nope").await;
    assert_eq!(named["total"], 2);
    let (_, both) = get(&t, "/api/products?categories=hats&category=shoes").await;
    assert_eq!(titles(&both), ["Delta Beanie"]);
    let (_, unknown) = get(&t, "/api/products?category=nope").await;
    assert_eq!(
        (unknown["total"].as_u64(), unknown["pages"].as_u64()),
        (Some(0), Some(0))
    );

    let (_, ranged) = get(&t, "/api/products?min_price=15&max_price=20&sort=price_asc").await;
    assert_eq!(titles(&ranged), ["Delta Beanie", "Gamma Cap"]);
    let (_, ranged) = get(&t, "/api/products?min_price=15&category=shoes").await;
    assert_eq!(titles(&ranged), ["Delta Beanie", "Alpha Boot"]);
    let (_, stocked) = get(&t, "/api/products?in_stock=true&sort=price_asc").await;
    assert_eq!(
        titles(&stocked),
        ["Delta Beanie", "Gamma Cap", "Alpha Boot"]
    );
    let (_, out) = get(&t, "/api/products?in_stock=false").await;
    assert_eq!(titles(&out), ["beta sneaker"]);
    let (_, by_t) = get(&t, "/api/products?title=BETA&title=gamma").await;
    assert_eq!(by_t["total"], 2);
    let (_, by_d) = get(
        &t,
        "/api/products?description=LEATHER&in_stock=true&category=hats",
    )
    .await;
    assert_eq!(titles(&by_d), ["Gamma Cap"]);
    let (_, past) = get(&t, "/api/products?page=5").await;
    assert_eq!(past["items"], json!([]));
    assert_eq!(past["total"], 4);

    for bad in [
        "sort=cheapest",
        "min_price=abc",
        "max_price=-1",
        "in_stock=maybe",
        "limit=0",
        "size=101",
        "page=0",
        "min_price=1.234",
        "min_price=1.6813359134243917e-148",
        "limit=5&size=29559543902143180800",
    ] {
        let (status, body) = get(&t, &format!("/api/products?{bad}")).await;
        assert_eq!(status, Status::UnprocessableEntity, "{bad}");
        assert_eq!(body["detail"][0]["loc"][0], "query", "{bad}");
    }
}

#[rocket::async_test]
async fn search_ranks_prefixes_and_combines_with_filters() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let shoes = category(&t, &admin, "Shoes").await;
    product(&t, &admin, json!({"title": "Red Shoes", "description": "Bright", "price": 30, "category_ids": [shoes]})).await;
    product(&t, &admin, json!({"title": "Blue Sandals", "description": "Goes with red shorts", "price": 20, "stock_quantity": 4})).await;
    product(
        &t,
        &admin,
        json!({"title": "Crème Brûlée Torch", "description": "Kitchen", "price": 15}),
    )
    .await;
    product(
        &t,
        &admin,
        json!({"title": "Red Hat", "description": "Wool", "price": 10}),
    )
    .await;

    let (_, hits) = get(&t, "/api/products/search?q=red%20sho").await;
    assert_eq!(
        titles(&hits),
        ["Red Shoes", "Blue Sandals"],
        "title match ranks above description match"
    );
    let (_, hits) = get(&t, "/api/products/search?q=RED").await;
    assert_eq!(hits["total"], 3);
    assert_ne!(titles(&hits)[2], "Red Shoes");
    let (_, accents) = get(&t, "/api/products/search?q=creme%20brulee").await;
    assert_eq!(titles(&accents), ["Crème Brûlée Torch"]);
    let (_, by_cat) = get(&t, "/api/products/search?q=shoes").await;
    assert_eq!(titles(&by_cat)[0], "Red Shoes");
    let (_, filtered) = get(&t, "/api/products/search?q=red&in_stock=true").await;
    assert_eq!(titles(&filtered), ["Blue Sandals"]);
    let (_, sorted) = get(&t, "/api/products/search?q=red&sort=price_asc").await;
    assert_eq!(titles(&sorted), ["Red Hat", "Blue Sandals", "Red Shoes"]);
    let (_, in_cat) = get(&t, "/api/products/search?q=red&category=shoes").await;
    assert_eq!(titles(&in_cat), ["Red Shoes"]);
    let (_, none) = get(&t, "/api/products/search?q=zebra").await;
    assert_eq!(
        (none["total"].as_u64(), none["pages"].as_u64()),
        (Some(0), Some(0))
    );
    let (_, no_q) = get(&t, "/api/products/search").await;
    assert_eq!(no_q["total"], 4);
    assert_eq!(
        titles(&no_q)[0],
        "Red Hat",
        "without q, search sorts like the list"
    );

    // Index consistency after changes to title, price and categories.
    let (_, red) = get(&t, "/api/products/red-hat").await;
    let path = format!("/api/products/{}", red["id"]);
    send(
        &t,
        Method::Patch,
        &path,
        Some(&admin),
        Some(json!({"title": "Green Hat", "price": 99, "category_ids": [shoes]})),
    )
    .await;
    let (_, hits) = get(&t, "/api/products/search?q=red").await;
    assert_eq!(hits["total"], 2);
    let (_, hits) = get(&t, "/api/products/search?q=green").await;
    assert_eq!(titles(&hits), ["Green Hat"]);
    let (_, cat) = get(&t, "/api/products?category=shoes&sort=price_desc").await;
    assert_eq!(titles(&cat), ["Green Hat", "Red Shoes"]);
    let (_, cats) = get(&t, "/api/products/category").await;
    assert_eq!(cats[0]["product_count"], 2);
    assert!(common::catalog_indexes_ok(&t));
}

#[rocket::async_test]
async fn delete_removes_or_archives() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let kept = product(&t, &admin, json!({"title": "Ordered Lamp", "price": 40})).await;
    let gone = product(&t, &admin, json!({"title": "Unloved Lamp", "price": 40})).await;
    let db = &state(&t).db;
    let kept_id = kept["id"].as_u64().unwrap();
    common::mark_referenced(&t, kept_id).await;

    for p in [&kept, &gone] {
        let (status, _) = send(
            &t,
            Method::Delete,
            &format!("/api/products/{}", p["id"]),
            Some(&admin),
            None,
        )
        .await;
        assert_eq!(status, Status::NoContent);
    }
    let (_, list) = get(&t, "/api/products").await;
    assert_eq!(list["total"], 0);
    let (_, hits) = get(&t, "/api/products/search?q=lamp").await;
    assert_eq!(hits["total"], 0);
    assert_eq!(
        get(&t, "/api/products/ordered-lamp").await.0,
        Status::NotFound
    );
    let archived = shopbox::product::store::product(db, kept_id)
        .await
        .unwrap()
        .unwrap();
    assert!(archived.archived_at.is_some());
    assert!(
        shopbox::product::store::product(db, gone["id"].as_u64().unwrap())
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        send(
            &t,
            Method::Delete,
            &format!("/api/products/{kept_id}"),
            Some(&admin),
            None
        )
        .await
        .0,
        Status::NotFound
    );
    // The archived product keeps its slug; a new product gets a suffix.
    let again = product(&t, &admin, json!({"title": "Ordered Lamp", "price": 1})).await;
    assert_eq!(again["slug"], "ordered-lamp-2");
    assert!(common::catalog_indexes_ok(&t));
}

#[rocket::async_test]
async fn images_by_content_with_caps_and_safe_serving() {
    let t = app_with(|c| c.uploads.max_bytes = 4096, |r| r).await;
    let admin = admin(&t, "a@example.com").await;
    let png = shopbox::product::images::demo_png(1, 16);
    let (ct, body) = multipart(
        &[("title", "Pic Mug"), ("price", "7.5"), ("category_ids", "")],
        Some(("image", "mug.txt", &png)),
    );
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Created);
    let p: Value = res.into_json().await.unwrap();
    let url = p["image_url"].as_str().unwrap().to_string();
    assert!(url.starts_with("/media/") && url.ends_with(".png"));
    let res = t.client.get(url.clone()).dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(
        res.headers().get_one("X-Content-Type-Options"),
        Some("nosniff")
    );
    assert_eq!(
        res.headers().get_one("Content-Security-Policy"),
        Some("sandbox")
    );
    assert_eq!(res.headers().get_one("Content-Type"), Some("image/png"));
    assert!(res.headers().get_one("ETag").is_some());
    assert!(res.headers().get_one("Cache-Control").is_some());
    assert_eq!(res.into_bytes().await.unwrap(), png);

    // Replacing removes the old file.
    let path = format!("/api/products/{}/image", p["id"]);
    let (ct, body) = multipart(
        &[],
        Some(("file", "x.png", &shopbox::product::images::demo_png(2, 16))),
    );
    let res = t
        .client
        .post(path.clone())
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let replaced: Value = res.into_json().await.unwrap();
    assert_ne!(replaced["image_url"], p["image_url"]);
    assert_eq!(
        t.client.get(url).dispatch().await.status(),
        Status::NotFound
    );

    let (ct, body) = multipart(&[], Some(("file", "evil.png", b"<svg onload=alert(1)>")));
    let res = t
        .client
        .post(path.clone())
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnsupportedMediaType);
    let (ct, body) = multipart(&[], Some(("file", "big.png", &vec![0x89; 10_000])));
    let res = t
        .client
        .post(path.clone())
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::PayloadTooLarge);
    let (ct, body) = multipart(&[("note", "no file")], None);
    let res = t
        .client
        .post(path.clone())
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    // A PNG header claiming 20,000 px a side.
    let mut huge = png.clone();
    huge[16..20].copy_from_slice(&20_000u32.to_be_bytes());
    let (ct, body) = multipart(&[], Some(("image_url", "huge.png", &huge)));
    let res = t
        .client
        .post(path)
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);

    for bad in [
        "/media/../jwt_secret",
        "/media/..%2Fjwt_secret",
        "/media/jwt_secret",
        "/media/0123456789abcdef0123456789abcdef.png",
    ] {
        assert_eq!(
            t.client
                .get(bad)
                .header(Header::new("Accept", "*/*"))
                .dispatch()
                .await
                .status(),
            Status::NotFound,
            "{bad}"
        );
    }

    // Deleting the product removes its file.
    let file = replaced["image_url"].as_str().unwrap().to_string();
    send(
        &t,
        Method::Delete,
        &format!("/api/products/{}", p["id"]),
        Some(&admin),
        None,
    )
    .await;
    assert_eq!(
        t.client.get(file).dispatch().await.status(),
        Status::NotFound
    );
}

#[rocket::async_test]
async fn multipart_create_and_update_take_repeated_category_ids() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let a = category(&t, &admin, "A").await.to_string();
    let b = category(&t, &admin, "B").await.to_string();
    let (ct, body) = multipart(
        &[
            ("title", "Form Thing"),
            ("price", "3"),
            ("stock_quantity", "2"),
            ("category_ids", &a),
            ("category_ids", &b),
        ],
        None,
    );
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Created);
    let p: Value = res.into_json().await.unwrap();
    assert_eq!(p["categories"].as_array().unwrap().len(), 2);
    let (ct, body) = multipart(&[("price", "4.25")], None);
    let res = t
        .client
        .patch(format!("/api/products/{}", p["id"]))
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_json::<Value>().await.unwrap()["price"], 4.25);
    let (ct, body) = multipart(&[("title", "T"), ("price", "lots")], None);
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    // A field of one value given twice is a 422 naming it, not dropped.
    let (ct, body) = multipart(
        &[
            ("title", "Twice"),
            ("price", "1"),
            ("stock_quantity", "null"),
            ("stock_quantity", "null"),
        ],
        None,
    );
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ct)
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::UnprocessableEntity);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["detail"][0]["loc"], json!(["body", "stock_quantity"]));
}

#[rocket::async_test]
async fn a_file_part_without_a_content_type_arrives_whole() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    // RFC 7578 makes a part's Content-Type optional: a file sent without one is still
    // its bytes (not text with every byte that is not UTF-8 replaced).
    let png = shopbox::product::images::demo_png(3, 16);
    let boundary = "plainfileboundary";
    let mut body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"title\"\r\n\r\nBare Mug\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"price\"\r\n\r\n2\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"mug.png\"\r\n\r\n"
    )
    .into_bytes();
    body.extend_from_slice(&png);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let res = t
        .client
        .post("/api/products")
        .header(bearer(&admin))
        .header(ContentType::new("multipart", "form-data").with_params(("boundary", boundary)))
        .body(body)
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Created);
    let p: Value = res.into_json().await.unwrap();
    let url = p["image_url"].as_str().unwrap().to_string();
    let res = t.client.get(url).dispatch().await;
    assert_eq!(res.status(), Status::Ok);
    assert_eq!(res.into_bytes().await.unwrap(), png);
}

#[rocket::async_test]
async fn a_category_page_by_price_decodes_about_one_page() {
    if common::sled_only("a_category_page_by_price_decodes_about_one_page") {
        return;
    }
    let t = app().await;
    let db = &state(&t).db;
    let cats: Vec<u64> = {
        let mut ids = Vec::new();
        for n in ["One", "Two", "Three", "Four"] {
            ids.push(
                shopbox::product::store::create_category(db, n)
                    .await
                    .unwrap()
                    .id,
            );
        }
        ids
    };
    let now = shopbox::core::time::now_micros();
    let products: Vec<shopbox::product::model::Product> = (0..10_000u64)
        .map(|i| {
            let id = common::sled(&t)
                .next_id(shopbox::product::model::PRODUCTS)
                .unwrap();
            shopbox::product::model::Product {
                id,
                title: format!("Thing {i}"),
                description: String::new(),
                slug: format!("thing-{i}"),
                price: ((i * 7919) % 10_000) as i64,
                stock_quantity: 1,
                image: None,
                category_ids: vec![cats[(i % 4) as usize]],
                rating_sum: 0,
                rating_count: 0,
                archived_at: None,
                referenced: false,
                created_at: now,
                updated_at: now,
            }
        })
        .collect();
    for chunk in products.chunks(500) {
        shopbox::product::store::insert_products_batch(db, chunk)
            .await
            .unwrap();
    }
    for query in [
        format!("/api/products?category={}&sort=price_asc", cats[1]),
        "/api/products".to_string(),
        "/api/products?sort=price_desc&limit=50".to_string(),
        format!("/api/products?category={}", cats[2]),
    ] {
        let before = common::sled(&t).decoded_count();
        let (status, page) = get(&t, &query).await;
        let decoded = common::sled(&t).decoded_count() - before;
        assert_eq!(status, Status::Ok);
        let items = page["items"].as_array().unwrap().len() as u64;
        assert!(
            decoded <= items + 10,
            "{query} decoded {decoded} records for {items} items"
        );
        assert!(page["total"].as_u64().unwrap() >= 2500, "{query}");
    }
    let (_, page) = get(
        &t,
        &format!("/api/products?category={}&sort=price_asc", cats[1]),
    )
    .await;
    let prices: Vec<f64> = page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["price"].as_f64().unwrap())
        .collect();
    assert!(prices.windows(2).all(|w| w[0] <= w[1]));
    assert_eq!(page["total"], 2500);
}

#[rocket::async_test]
async fn repeated_reads_are_answered_from_cache_until_any_write() {
    if common::sled_only("repeated_reads_are_answered_from_cache_until_any_write") {
        return;
    }
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let lamp = product(
        &t,
        &admin,
        json!({"title": "Desk Lamp", "price": 10, "stock_quantity": 5}),
    )
    .await;
    let id = lamp["id"].as_u64().unwrap();
    let paths = [
        "/api/products",
        "/api/products/search?q=lamp",
        "/api/products/desk-lamp",
    ];
    let db = common::sled(&t);
    let cold = db.decoded_count();
    let mut first = Vec::new();
    for path in paths {
        first.push(get(&t, path).await.1);
    }
    let decoded = db.decoded_count();
    assert!(decoded > cold, "the first reads decode records");
    // The same reads again decode nothing: they come from the cache, unchanged.
    for (path, before) in paths.iter().zip(&first) {
        assert_eq!(&get(&t, path).await.1, before);
    }
    assert_eq!(db.decoded_count(), decoded);

    // Any write, here a price change, is seen by every read right after it.
    let (status, _) = send(
        &t,
        Method::Patch,
        &format!("/api/products/{id}"),
        Some(&admin),
        Some(json!({"price": 12.5})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(get(&t, paths[0]).await.1["items"][0]["price"], 12.5);
    assert_eq!(get(&t, paths[1]).await.1["items"][0]["price"], 12.5);
    assert_eq!(get(&t, paths[2]).await.1["price"], 12.5);
    // A miss is not kept as an answer: the product appears once created.
    assert_eq!(
        get(&t, "/api/products/floor-lamp").await.0,
        Status::NotFound
    );
    product(&t, &admin, json!({"title": "Floor Lamp", "price": 30})).await;
    assert_eq!(get(&t, "/api/products/floor-lamp").await.0, Status::Ok);
    assert_eq!(get(&t, paths[1]).await.1["total"], 2);
}

#[rocket::async_test]
async fn cart_writes_keep_catalog_answers_cached_and_an_order_shows_its_stock_at_once() {
    if common::sled_only(
        "cart_writes_keep_catalog_answers_cached_and_an_order_shows_its_stock_at_once",
    ) {
        return;
    }
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    let lamp = common::new_product(&t, &admin, "Desk Lamp", 10.0, 5).await;
    let mug = common::new_product(&t, &admin, "Tea Mug", 4.0, 9).await;
    let ann = customer(&t, "ann@example.com").await;
    let home = common::address(&t, &ann).await;
    let lamp_path = format!("/api/products/{lamp}");
    let mug_path = format!("/api/products/{mug}");
    let paths = [
        "/api/products".to_string(),
        "/api/products/search?q=mug".to_string(),
        lamp_path.clone(),
        mug_path.clone(),
    ];
    let db = common::sled(&t);
    let mut first = Vec::new();
    for path in &paths {
        first.push(get(&t, path).await.1);
    }
    // Cart writes (and an address) change nothing the catalog answers: the reads after
    // them decode no record.
    let (status, _) = common::add(&t, &ann, mug, 2).await;
    assert_eq!(status, Status::Created);
    common::address(&t, &ann).await;
    let decoded = db.decoded_count();
    for (path, before) in paths.iter().zip(&first) {
        assert_eq!(&get(&t, path).await.1, before, "{path}");
    }
    assert_eq!(db.decoded_count(), decoded, "answered from the cache");

    // An order of mugs shows its stock at once wherever a mug is shown...
    let (status, body) = common::checkout(&t, &ann, json!({"shipping_address_id": home})).await;
    assert_eq!(status, Status::Created, "{body}");
    assert_eq!(get(&t, &mug_path).await.1["stock_quantity"], 7);
    let (_, list) = get(&t, "/api/products").await;
    let shown: Vec<(u64, i64)> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["id"].as_u64().unwrap(),
                p["stock_quantity"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(shown, vec![(mug, 7), (lamp, 5)]);
    assert_eq!(
        get(&t, "/api/products/search?q=mug").await.1["items"][0]["stock_quantity"],
        7
    );
    // ...while the lamp's page, which it cannot have changed, stays cached.
    let decoded = db.decoded_count();
    assert_eq!(get(&t, &lamp_path).await.1, first[2]);
    assert_eq!(db.decoded_count(), decoded);
}
