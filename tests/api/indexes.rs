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
    let TestApp { client, dir } = t;
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
