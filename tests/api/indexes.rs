//! Each record type describes its index entries once (`Indexed`): the writes keep them,
//! and `shopbox check [--repair]` verifies and rebuilds every index of the shop from the
//! same description, not only the catalog's.

use crate::common;

use common::*;
use rocket::http::Method;
use serde_json::json;
use std::process::Command;

fn check(dir: &std::path::Path, repair: bool) -> (bool, String) {
    let mut cmd = Command::new(common::binary());
    cmd.arg("check").arg("--data").arg(dir);
    if repair {
        cmd.arg("--repair");
    }
    let out = cmd.output().unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), text)
}

#[rocket::async_test]
async fn check_finds_drift_in_any_index_and_repair_rebuilds_it() {
    if common::sled_only("check_finds_drift_in_any_index_and_repair_rebuilds_it") {
        return;
    }
    let t = app().await;
    let ann = customer(&t, "ann@example.com").await;
    let address = json!({"address_line1": "1 Main St", "city": "Town", "state": "ST",
        "postal_code": "12345", "country": "US"});
    let (_, home) = send(
        &t,
        Method::Post,
        "/api/shippings/addresses",
        Some(&ann),
        Some(address),
    )
    .await;
    let (_, me) = send(&t, Method::Get, "/api/account/me", Some(&ann), None).await;
    let (user, home) = (me["id"].as_u64().unwrap(), home["id"].as_u64().unwrap());
    let db = common::sled(&t);
    // Drift a write would never leave: an address lost from its owner's list, a stray
    // session link, and an email pointing at nobody.
    db.write(|tx| {
        tx.unlink("addresses_by_user", user, home)?;
        tx.link("sessions_by_user", user, 9_999)?;
        tx.raw_insert("users_by_email", b"ghost@example.com", &77u64.to_be_bytes())
    })
    .await
    .unwrap();
    let TestApp { client, dir, .. } = t;
    drop(client);

    let (ok, report) = check(dir.path(), false);
    assert!(!ok, "{report}");
    for line in [
        "addresses_by_user: 1 missing, 0 stale",
        "sessions_by_user: 0 missing, 1 stale",
        "users_by_email: 0 missing, 1 stale",
    ] {
        assert!(report.contains(line), "{line} in {report}");
    }
    let (ok, report) = check(dir.path(), true);
    assert!(ok, "{report}");
    let (ok, report) = check(dir.path(), false);
    assert!(ok && report.contains("every index matches"), "{report}");
}

/// Every sort, a spread of filters and searches, and a few pages of each: the catalog in
/// memory (`store::list`) against the stored indexes (`listing::list` over the trees),
/// ids and totals exactly.
async fn assert_catalog_matches_trees(db: &shopbox::db::Db, categories: &[u64], context: &str) {
    use shopbox::core::page::Pagination;
    use shopbox::product::listing::{list, Filters, Sort};
    use shopbox::product::search::search;
    use shopbox::product::store;
    let backend = shopbox::db::Backend::from(db.clone());
    // Else store::list falls back to the trees and this compares them with themselves.
    assert!(
        store::catalog::Catalog::of(db).is_some(),
        "{context}: the in-memory catalog is not in use"
    );
    let mut filter_sets = vec![
        Filters::default(),
        Filters {
            min_price: Some(300),
            max_price: Some(1200),
            ..Default::default()
        },
        Filters {
            in_stock: Some(true),
            ..Default::default()
        },
        Filters {
            in_stock: Some(false),
            ..Default::default()
        },
        Filters {
            title: vec!["oak".into()],
            ..Default::default()
        },
        Filters {
            description: vec!["blue".into(), "zz".into()],
            ..Default::default()
        },
    ];
    for c in categories {
        filter_sets.push(Filters {
            category_any: Some(vec![*c]),
            ..Default::default()
        });
        filter_sets.push(Filters {
            category_any: Some(vec![*c, categories[0]]),
            min_price: Some(500),
            in_stock: Some(true),
            ..Default::default()
        });
    }
    let sorts = [
        Sort::Newest,
        Sort::PriceAsc,
        Sort::PriceDesc,
        Sort::Title,
        Sort::Rating,
        Sort::Relevance,
    ];
    for q in [
        None,
        Some("oak"),
        Some("blue l"),
        Some("lamp oak"),
        Some("m"),
    ] {
        for filters in &filter_sets {
            for sort in sorts {
                if q.is_none() && sort == Sort::Relevance {
                    // The routes list by `newest` then (the stored path ranks all at 0).
                    continue;
                }
                for page in [1u32, 2, 7] {
                    let p = Pagination { page, limit: 3 };
                    let hits = q.map(|q| search(db, q).unwrap());
                    let want = list(db, filters, sort, p, hits).unwrap();
                    let got = store::list(&backend, filters, sort, p, None, q)
                        .await
                        .unwrap();
                    let ids =
                        |page: &shopbox::core::page::Page<shopbox::product::model::Product>| {
                            page.items.iter().map(|p| p.id).collect::<Vec<_>>()
                        };
                    assert_eq!(
                        (ids(&got), got.total, got.pages),
                        (ids(&want), want.total, want.pages),
                        "{context}: q {q:?} {filters:?} {sort:?} page {page}"
                    );
                }
            }
        }
    }
}

#[rocket::async_test]
async fn the_catalog_in_memory_stays_exact_through_every_kind_of_write() {
    if common::sled_only("the_catalog_in_memory_stays_exact_through_every_kind_of_write") {
        return;
    }
    use rand::Rng;
    use shopbox::product::store::{self, ProductChanges};
    let (_, mut rng) = common::seeded_rng("the_catalog_in_memory_stays_exact");
    let t = app().await;
    let backend = state(&t).db.clone();
    let db = common::sled(&t).clone();
    let mut categories = Vec::new();
    for name in ["Lamps", "Blue Things", "Oak"] {
        categories.push(store::create_category(&backend, name).await.unwrap().id);
    }
    let words = ["oak", "lamp", "blue", "linen", "mug", "lantern", "red"];
    let phrase = |rng: &mut rand::rngs::StdRng, n: usize| {
        (0..n)
            .map(|_| words[rng.gen_range(0..words.len())])
            .collect::<Vec<_>>()
            .join(" ")
    };
    let mut ids = Vec::new();
    for round in 0..4 {
        for _ in 0..25 {
            let cats: Vec<u64> = categories
                .iter()
                .copied()
                .filter(|_| rng.gen_bool(0.4))
                .collect();
            let p = store::create_product(
                &backend,
                ProductChanges {
                    title: Some(phrase(&mut rng, 2)),
                    description: Some(phrase(&mut rng, 4)),
                    price: Some(rng.gen_range(1..20) * 100),
                    stock_quantity: Some(rng.gen_range(0..3)),
                    category_ids: Some(cats),
                    ..Default::default()
                },
                round,
            )
            .await
            .unwrap();
            ids.push(p.id);
        }
        for _ in 0..15 {
            let id = ids[rng.gen_range(0..ids.len())];
            let changes = match rng.gen_range(0..4) {
                0 => ProductChanges {
                    price: Some(rng.gen_range(1..20) * 100),
                    ..Default::default()
                },
                1 => ProductChanges {
                    title: Some(phrase(&mut rng, 3)),
                    ..Default::default()
                },
                2 => ProductChanges {
                    category_ids: Some(vec![categories[rng.gen_range(0..3)]]),
                    ..Default::default()
                },
                _ => ProductChanges {
                    stock_quantity: Some(rng.gen_range(0..2)),
                    ..Default::default()
                },
            };
            let _ = store::update_product(&backend, id, changes, round).await;
        }
        // Stock taken and given back as checkout and cancel do, and ratings as reviews do.
        for _ in 0..10 {
            let id = ids[rng.gen_range(0..ids.len())];
            let delta = if rng.gen_bool(0.5) { -1 } else { 1 };
            let rating = rng.gen_range(1..=5);
            let _ = db
                .write(|tx| {
                    store::sled::change_rating(tx, id, rating, 1)?;
                    store::sled::change_stock(tx, id, delta).map(|_| ())
                })
                .await;
        }
        for _ in 0..4 {
            let id = ids.remove(rng.gen_range(0..ids.len()));
            store::delete_product(&backend, id, round).await.unwrap();
        }
        assert_catalog_matches_trees(&db, &categories, &format!("round {round}")).await;
    }
    store::rename_category(&backend, categories[0], "Oak Lanterns")
        .await
        .unwrap();
    store::delete_category(&backend, categories[1], 9)
        .await
        .unwrap();
    assert_catalog_matches_trees(&db, &categories[..1], "after category changes").await;

    // Built afresh at open, it answers the same.
    let TestApp { client, dir, .. } = t;
    drop(client);
    drop(db);
    drop(backend);
    let config = common::test_config(dir.path());
    let db = shopbox::open_data(&config).unwrap();
    assert_catalog_matches_trees(&db, &categories[..1], "after reopening").await;
}

#[rocket::async_test]
async fn cursor_pages_walk_every_product_once_in_every_sort() {
    let t = app().await;
    let admin = admin(&t, "a@example.com").await;
    for i in 0..23 {
        let (status, _) = send(
            &t,
            Method::Post,
            "/api/products",
            Some(&admin),
            Some(
                json!({"title": format!("Lamp {}", i % 7), "price": (i % 5) + 1,
                "stock_quantity": 1}),
            ),
        )
        .await;
        assert_eq!(status, rocket::http::Status::Created);
    }
    for base in [
        "/api/products?limit=5",
        "/api/products?limit=5&sort=price_asc",
        "/api/products?limit=5&sort=price_desc",
        "/api/products?limit=5&sort=title",
        "/api/products?limit=5&sort=rating",
        "/api/products/search?q=lamp&limit=5",
        "/api/products/search?q=lamp&limit=5&sort=price_desc",
    ] {
        let mut seen = Vec::new();
        let (_, first) = send(&t, Method::Get, base, None, None).await;
        let mut paged = Vec::new();
        for page in 1..=5 {
            let (_, p) = send(&t, Method::Get, &format!("{base}&page={page}"), None, None).await;
            paged.extend(
                p["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].clone()),
            );
        }
        let mut page = first;
        loop {
            assert_eq!(page["total"], 23, "{base}");
            seen.extend(
                page["items"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|i| i["id"].clone()),
            );
            let Some(next) = page["next"].as_str().map(str::to_string) else {
                break;
            };
            let (status, p) =
                send(&t, Method::Get, &format!("{base}&after={next}"), None, None).await;
            assert_eq!(status, rocket::http::Status::Ok, "{base}: {p}");
            page = p;
        }
        assert_eq!(seen, paged, "{base}: the cursor walks the pages' order");
    }
    // A cursor of another sort, or not a cursor at all, is a 422 naming `after`.
    let (_, p) = send(&t, Method::Get, "/api/products?limit=5", None, None).await;
    let next = p["next"].as_str().unwrap().to_string();
    for bad in [format!("sort=title&after={next}"), "after=zz".to_string()] {
        let (status, body) =
            send(&t, Method::Get, &format!("/api/products?{bad}"), None, None).await;
        assert_eq!(status, rocket::http::Status::UnprocessableEntity, "{bad}");
        assert_eq!(body["detail"][0]["loc"], json!(["query", "after"]));
    }
    // A product created meanwhile is neither repeated nor does it shift what follows.
    let (_, p1) = send(&t, Method::Get, "/api/products?limit=5", None, None).await;
    let next = p1["next"].as_str().unwrap().to_string();
    send(
        &t,
        Method::Post,
        "/api/products",
        Some(&admin),
        Some(json!({"title": "Newcomer", "price": 1})),
    )
    .await;
    let (_, p2) = send(
        &t,
        Method::Get,
        &format!("/api/products?limit=5&after={next}"),
        None,
        None,
    )
    .await;
    let last_of_first = p1["items"][4]["id"].as_u64().unwrap();
    assert_eq!(p2["items"][0]["id"].as_u64().unwrap(), last_of_first - 1);
    assert_eq!(p2["total"], 24);
}
