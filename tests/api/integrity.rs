//! `shopbox seed` and `shopbox check [--repair]`: indexes verified against records and
//! rebuilt when they drift.

use crate::common;

use std::process::Command;

#[rocket::async_test]
async fn check_finds_a_broken_index_and_repair_rebuilds_it() {
    use shopbox::product::model::{PRODUCTS_BY_PRICE, SEARCH_POSTINGS};
    use shopbox::product::store;
    let dir = tempfile::tempdir().unwrap();
    let db = shopbox::open_data(&common::test_config(dir.path())).unwrap();
    let shoes = store::sled::create_category(&db, "Shoes").await.unwrap();
    let now = shopbox::core::time::now_micros();
    for (title, price) in [("Red Shoes", 1999), ("Blue Shoes", 2999)] {
        let changes = store::ProductChanges {
            title: Some(title.into()),
            price: Some(price),
            category_ids: Some(vec![shoes.id]),
            ..Default::default()
        };
        store::sled::create_product(&db, changes, now)
            .await
            .unwrap();
    }
    assert!(store::check_indexes(&db).unwrap().is_empty());

    // Drift: one price entry lost, one stray search entry added.
    let mut price_key = ((1999i64 as u64) ^ (1 << 63)).to_be_bytes().to_vec();
    price_key.extend_from_slice(&1u64.to_be_bytes());
    db.write(|tx| {
        tx.raw_remove(PRODUCTS_BY_PRICE, &price_key)?;
        tx.raw_insert(SEARCH_POSTINGS, b"ghost\x00\x00\x00\x00\x00", &[0; 13])
    })
    .await
    .unwrap();
    let problems = store::check_indexes(&db).unwrap();
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems
        .iter()
        .any(|p| p.starts_with(PRODUCTS_BY_PRICE) && p.contains("1 missing")));
    assert!(problems
        .iter()
        .any(|p| p.starts_with(SEARCH_POSTINGS) && p.contains("1 stale")));

    store::repair_indexes(&db).unwrap();
    assert!(store::check_indexes(&db).unwrap().is_empty());
    let hits = shopbox::product::search::search(&db, "red").unwrap();
    assert_eq!(hits.len(), 1);
}

#[test]
fn seed_then_check_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        let out = Command::new(common::binary())
            .args(args)
            .arg("--data")
            .arg(dir.path())
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let (ok, _, err) = run(&["seed", "--products", "5"]);
    assert!(!ok);
    assert!(err.contains("--demo"), "{err}");
    let (ok, out, err) = run(&["seed", "--demo", "--products", "120"]);
    assert!(ok, "{err}");
    assert!(
        out.contains("seeded 120 products") && out.contains("customer@example.com"),
        "{out}"
    );
    let media = std::fs::read_dir(dir.path().join("media")).unwrap().count();
    assert_eq!(media, 120, "one generated image a product");
    let (ok, out, err) = run(&["check"]);
    assert!(ok, "{err}");
    assert!(out.contains("every index matches"), "{out}");
    let (ok, out, _) = run(&["check", "--repair"]);
    assert!(ok);
    assert!(out.contains("every index matches"), "{out}");
}

/// A data folder of schema 1 (facets in a tree of their own, `products_live` values
/// empty) opens as schema 2 with every facet moved, and filters still answer from them.
#[rocket::async_test]
async fn schema_1_facets_move_into_the_live_index_at_open() {
    use shopbox::core::page::Pagination;
    use shopbox::product::listing::{list, Filters, Sort};
    use shopbox::product::model::PRODUCTS_LIVE;
    use shopbox::product::store;
    let dir = tempfile::tempdir().unwrap();
    let config = common::test_config(dir.path());
    let db = shopbox::open_data(&config).unwrap();
    let now = shopbox::core::time::now_micros();
    for (title, price) in [("Cheap Mug", 500), ("Dear Mug", 5000), ("Gone Mug", 700)] {
        let changes = store::ProductChanges {
            title: Some(title.into()),
            price: Some(price),
            stock_quantity: Some(3),
            ..Default::default()
        };
        store::sled::create_product(&db, changes, now)
            .await
            .unwrap();
    }
    store::sled::delete_product(&db, 3, now).await.unwrap();
    drop(db);

    // Rewrite the folder as schema 1 wrote it.
    {
        let sled = common::reopen_sled(dir.path());
        let live = sled.open_tree(PRODUCTS_LIVE).unwrap();
        let facets = sled.open_tree("products_facets").unwrap();
        for entry in live.iter() {
            let (key, facet) = entry.unwrap();
            let id = u64::MAX - u64::from_be_bytes(key.as_ref().try_into().unwrap());
            facets.insert(id.to_be_bytes(), facet).unwrap();
            live.insert(key, &[]).unwrap();
        }
        assert_eq!(facets.len(), 2);
        let meta = sled.open_tree("meta").unwrap();
        meta.insert("schema_version", &1u32.to_be_bytes()).unwrap();
        sled.flush().unwrap();
    }

    let db = shopbox::open_data(&config).unwrap();
    assert_eq!(
        shopbox::db::migrate::schema_version(&db).unwrap(),
        Some(shopbox::schema().version())
    );
    assert!(store::check_indexes(&db).unwrap().is_empty());
    let filters = Filters {
        max_price: Some(1000),
        ..Default::default()
    };
    let hits = shopbox::product::search::search(&db, "mug").unwrap();
    let page = list(
        &db,
        &filters,
        Sort::PriceAsc,
        Pagination::default(),
        Some(hits),
    )
    .unwrap();
    let titles: Vec<&str> = page.items.iter().map(|p| p.title.as_str()).collect();
    assert_eq!(titles, ["Cheap Mug"]);
    drop(db);
    let sled = common::reopen_sled(dir.path());
    assert!(!sled
        .tree_names()
        .iter()
        .any(|name| name.as_ref() == b"products_facets"));
}
