//! Every `/api/account` route, success and failure, and SECURITY.md's account items.

use crate::common;

use common::*;
use rocket::http::{Cookie, Header, Method, Status};
use serde_json::{json, Value};
use std::net::SocketAddr;

#[rocket::async_test]
async fn register_creates_a_customer_and_ignores_fields_it_may_not_set() {
    let t = app().await;
    let (status, body) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "Ann@Example.com", "password": PASSWORD, "is_admin": true,
               "is_verified": true, "id": 99}),
    )
    .await;
    assert_eq!(status, Status::Created);
    assert_eq!(body["email"], "Ann@Example.com");
    assert_eq!(body["name"], "Ann");
    assert_eq!(body["is_admin"], false);
    assert_eq!(body["is_verified"], false);
    assert_eq!(body["is_active"], true);
    assert_ne!(body["id"], 99);
    assert!(body.get("hashed_password").is_none());
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    // Emails are unique ignoring case.
    let (status, body) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "ann@EXAMPLE.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::Conflict);
    assert!(body["detail"].is_string());

    let (_, named) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "bo@example.com", "name": "Bo B.", "password": PASSWORD}),
    )
    .await;
    assert_eq!(named["name"], "Bo B.");
}

#[rocket::async_test]
async fn register_rejects_bad_fields_by_name() {
    let t = app().await;
    for (body, field) in [
        (
            json!({"email": "not-an-email", "password": PASSWORD}),
            "email",
        ),
        (json!({"email": "a@b.co", "password": "short"}), "password"),
        (
            json!({"email": "a@b.co", "password": "x".repeat(129)}),
            "password",
        ),
        (
            json!({"email": "longpass@b.co", "password": "LONGPASS@b.co"}),
            "password",
        ),
        (
            json!({"email": "a@b.co", "name": "", "password": PASSWORD}),
            "name",
        ),
        (json!({"password": PASSWORD}), "email"),
    ] {
        let (status, reply) = post_json(&t, "/api/account/register", body.clone()).await;
        assert_eq!(status, Status::UnprocessableEntity, "{body}");
        let locs: Vec<&Value> = reply["detail"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| &e["loc"])
            .collect();
        assert!(locs.contains(&&json!(["body", field])), "{body} -> {reply}");
    }
}

#[rocket::async_test]
async fn stored_hash_is_an_owasp_argon2id_phc_string() {
    let t = app().await;
    register(&t, "hash@example.com").await;
    let user = shopbox::account::store::user_by_email(&state(&t).db, "hash@example.com")
        .await
        .unwrap()
        .unwrap();
    let parsed = argon2::PasswordHash::new(&user.hashed_password).unwrap();
    assert_eq!(parsed.algorithm.as_str(), "argon2id");
    assert_eq!(parsed.version, Some(19));
    assert_eq!(parsed.params.get_decimal("m"), Some(19456));
    assert_eq!(parsed.params.get_decimal("t"), Some(2));
    assert_eq!(parsed.params.get_decimal("p"), Some(1));

    // A current hash is kept at login; a legacy bcrypt one is replaced, once.
    login(&t, "hash@example.com", PASSWORD).await;
    let again = shopbox::account::store::user_by_email(&state(&t).db, "hash@example.com")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.hashed_password, user.hashed_password);
    shopbox::account::store::create_user(
        &state(&t).db,
        shopbox::account::store::NewUser {
            email: "legacy@example.com".into(),
            name: "Legacy".into(),
            hashed_password: bcrypt::hash(PASSWORD, 4).unwrap(),
            is_admin: false,
            is_verified: true,
        },
        shopbox::core::time::now_micros(),
    )
    .await
    .unwrap();
    let stored = |t: &TestApp| {
        let db = state(t).db.clone();
        async move {
            shopbox::account::store::user_by_email(&db, "legacy@example.com")
                .await
                .unwrap()
                .unwrap()
                .hashed_password
        }
    };
    assert!(stored(&t).await.starts_with("$2"));
    login(&t, "legacy@example.com", PASSWORD).await;
    let upgraded = stored(&t).await;
    assert!(
        upgraded.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
        "{upgraded}"
    );
    login(&t, "legacy@example.com", PASSWORD).await;
    assert_eq!(stored(&t).await, upgraded);
}

#[rocket::async_test]
async fn login_answers_tokens_and_sets_hardened_cookies() {
    let t = app().await;
    register(&t, "c@example.com").await;
    let res = t
        .client
        .post("/api/account/login")
        .body(json!({"email": "C@example.com", "password": PASSWORD}).to_string())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let cookies: Vec<Cookie<'static>> = res
        .headers()
        .get("Set-Cookie")
        .map(|c| Cookie::parse(c.to_string()).unwrap())
        .collect();
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(body["expires_in"], 900);
    assert_eq!(body["user"]["email"], "c@example.com");
    assert!(body["message"].is_string());
    assert!(body["refresh_token"].as_str().unwrap().len() >= 32);

    let access = cookies.iter().find(|c| c.name() == "access_token").unwrap();
    assert_eq!(access.value(), body["access_token"].as_str().unwrap());
    assert_eq!(access.http_only(), Some(true));
    assert_eq!(access.same_site(), Some(rocket::http::SameSite::Lax));
    assert_eq!(access.path(), Some("/"));
    assert_ne!(access.secure(), Some(true));
    let refresh = cookies
        .iter()
        .find(|c| c.name() == "refresh_token")
        .unwrap();
    assert_eq!(refresh.http_only(), Some(true));
    assert_eq!(refresh.same_site(), Some(rocket::http::SameSite::Lax));
    assert_eq!(refresh.path(), Some("/api/account"));

    // Over HTTPS the cookies are Secure.
    let t = app_with(
        |c| c.public_url = Some("https://shop.example.com".into()),
        |r| r,
    )
    .await;
    register(&t, "s@example.com").await;
    let res = t
        .client
        .post("/api/account/login")
        .body(json!({"email": "s@example.com", "password": PASSWORD}).to_string())
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let cookies: Vec<Cookie<'static>> = res
        .headers()
        .get("Set-Cookie")
        .map(|c| Cookie::parse(c.to_string()).unwrap())
        .collect();
    let mut names: Vec<&str> = cookies.iter().map(|c| c.name()).collect();
    names.sort_unstable();
    assert_eq!(names, ["access_token", "refresh_token"]);
    for c in &cookies {
        assert_eq!(c.secure(), Some(true), "{c}");
        assert_eq!(c.http_only(), Some(true), "{c}");
    }
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(
        cookies
            .iter()
            .find(|c| c.name() == "access_token")
            .unwrap()
            .value(),
        body["access_token"].as_str().unwrap()
    );
}

#[rocket::async_test]
async fn wrong_password_and_unknown_email_look_the_same_and_both_verify() {
    let t = app().await;
    register(&t, "d@example.com").await;
    let before = state(&t).passwords.verifications();
    let (s1, b1) = post_json(
        &t,
        "/api/account/login",
        json!({"email": "d@example.com", "password": "wrong password"}),
    )
    .await;
    let (s2, b2) = post_json(
        &t,
        "/api/account/login",
        json!({"email": "nobody@example.com", "password": "wrong password"}),
    )
    .await;
    assert_eq!(s1, Status::Unauthorized);
    assert_eq!(s2, Status::Unauthorized);
    assert_eq!(b1, b2);
    assert_eq!(b1["detail"], "Invalid email or password");
    // The unknown email ran a (dummy) verification too.
    assert_eq!(state(&t).passwords.verifications(), before + 2);
}

#[rocket::async_test]
async fn me_needs_a_valid_live_token() {
    let t = app().await;
    let token = customer(&t, "me@example.com").await;
    let (status, me) = send(&t, Method::Get, "/api/account/me", Some(&token), None).await;
    assert_eq!(status, Status::Ok);
    assert_eq!(me["email"], "me@example.com");

    let (status, body) = send(&t, Method::Get, "/api/account/me", None, None).await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["detail"], "Not authenticated");
    let (status, _) = send(&t, Method::Get, "/api/account/me", Some("garbage"), None).await;
    assert_eq!(status, Status::Unauthorized);

    // An expired token (beyond the 60 s leeway) is refused.
    let now = rocket::time::OffsetDateTime::now_utc().unix_timestamp();
    let expired = state(&t)
        .jwt
        .issue(me["id"].as_u64().unwrap(), 1, now - 2000, 900);
    let (status, body) = send(&t, Method::Get, "/api/account/me", Some(&expired), None).await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(body["detail"], "Token expired");

    // A token signed with another secret is refused.
    let other = shopbox::core::tokens::Jwt::new("another secret that is long enough!!");
    let forged = other.issue(me["id"].as_u64().unwrap(), 1, now, 900);
    let (status, _) = send(&t, Method::Get, "/api/account/me", Some(&forged), None).await;
    assert_eq!(status, Status::Unauthorized);

    // The cookie works as well as the header.
    let res = t
        .client
        .get("/api/account/me")
        .cookie(Cookie::new("access_token", token.clone()))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
}

#[rocket::async_test]
async fn patch_me_changes_only_the_name() {
    let t = app().await;
    let token = customer(&t, "pm@example.com").await;
    let (status, body) = send(
        &t,
        Method::Patch,
        "/api/account/me",
        Some(&token),
        Some(json!({"name": "Pat", "is_admin": true, "email": "x@y.z"})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(body["name"], "Pat");
    assert_eq!(body["is_admin"], false);
    assert_eq!(body["email"], "pm@example.com");
    let (status, body) = send(
        &t,
        Method::Patch,
        "/api/account/me",
        Some(&token),
        Some(json!({"name": "  "})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    assert_eq!(body["detail"][0]["loc"], json!(["body", "name"]));
    let (status, _) = send(
        &t,
        Method::Patch,
        "/api/account/me",
        None,
        Some(json!({"name": "X"})),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
}

fn sid_of(token: &str) -> u64 {
    use base64ct::{Base64UrlUnpadded, Encoding};
    let payload = token.split('.').nth(1).unwrap();
    let bytes = Base64UrlUnpadded::decode_vec(payload).unwrap();
    serde_json::from_slice::<Value>(&bytes).unwrap()["sid"]
        .as_u64()
        .unwrap()
}

#[rocket::async_test]
async fn refresh_rotates_and_reuse_ends_the_session() {
    let t = app().await;
    register(&t, "r@example.com").await;
    let (access0, refresh0, _) = login(&t, "r@example.com", PASSWORD).await;
    let (status, body) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh0}),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    let access1 = body["access_token"].as_str().unwrap().to_string();
    let refresh1 = body["refresh_token"].as_str().unwrap().to_string();
    assert_ne!(refresh1, refresh0);
    assert_eq!(body["token_type"], "bearer");
    assert_eq!(
        sid_of(&access1),
        sid_of(&access0),
        "a session keeps its sid"
    );
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access1), None)
            .await
            .0,
        Status::Ok
    );

    // The rotated token comes back: 401, and the whole session ends.
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh0}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh1}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access1), None)
            .await
            .0,
        Status::Unauthorized
    );
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access0), None)
            .await
            .0,
        Status::Unauthorized
    );

    // Unknown and missing tokens.
    let (status, _) = post_json(&t, "/api/account/refresh", json!({"refresh_token": "nope"})).await;
    assert_eq!(status, Status::Unauthorized);
    let (status, _) = post_json(&t, "/api/account/refresh", json!({})).await;
    assert_eq!(status, Status::Unauthorized);
    let res = t.client.post("/api/account/refresh").dispatch().await;
    assert_eq!(res.status(), Status::Unauthorized);
}

#[rocket::async_test]
async fn refresh_by_cookie_and_logout_ends_the_session() {
    let t = app().await;
    register(&t, "l@example.com").await;
    let (access, refresh, _) = login(&t, "l@example.com", PASSWORD).await;
    let res = t
        .client
        .post("/api/account/refresh")
        .cookie(Cookie::new("refresh_token", refresh.clone()))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.unwrap();
    let access2 = body["access_token"].as_str().unwrap().to_string();
    let refresh2 = body["refresh_token"].as_str().unwrap().to_string();

    let res = t
        .client
        .post("/api/account/logout")
        .header(bearer(&access2))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let cleared: Vec<String> = res
        .headers()
        .get("Set-Cookie")
        .map(str::to_string)
        .collect();
    let expired = |name: &str, path: &str| {
        cleared.iter().any(|c| {
            let c = Cookie::parse(c.clone()).unwrap();
            c.name() == name
                && c.value().is_empty()
                && c.path() == Some(path)
                && c.max_age() == Some(rocket::time::Duration::ZERO)
        })
    };
    assert!(expired("access_token", "/"), "{cleared:?}");
    assert!(expired("refresh_token", "/api/account"), "{cleared:?}");
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access2), None)
            .await
            .0,
        Status::Unauthorized
    );
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access), None)
            .await
            .0,
        Status::Unauthorized
    );
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh2}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    let (status, _) = send(&t, Method::Post, "/api/account/logout", None, None).await;
    assert_eq!(status, Status::Unauthorized);
}

#[rocket::async_test]
async fn change_password_ends_other_sessions_and_voids_mail_tokens() {
    let t = app().await;
    register(&t, "cp@example.com").await;
    let (mine, _, _) = login(&t, "cp@example.com", PASSWORD).await;
    let (other, other_refresh, _) = login(&t, "cp@example.com", PASSWORD).await;
    post_json(
        &t,
        "/api/account/forgot-password",
        json!({"email": "cp@example.com"}),
    )
    .await;
    let reset_token = last_link_token(&t, "cp@example.com").await;

    let (status, body) = send(
        &t,
        Method::Post,
        "/api/account/change-password",
        Some(&mine),
        Some(json!({"current_password": "not it at all", "new_password": "a brand new one"})),
    )
    .await;
    assert_eq!(status, Status::BadRequest, "{body}");
    let (status, _) = send(
        &t,
        Method::Post,
        "/api/account/change-password",
        Some(&mine),
        Some(json!({"current_password": PASSWORD, "new_password": "short"})),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);

    let (status, body) = send(
        &t,
        Method::Post,
        "/api/account/change-password",
        Some(&mine),
        Some(json!({"old_password": PASSWORD, "new_password": "a brand new one"})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&mine), None)
            .await
            .0,
        Status::Ok
    );
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&other), None)
            .await
            .0,
        Status::Unauthorized
    );
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": other_refresh}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    // The reset link sent before the change no longer works.
    let (status, _) = post_json(
        &t,
        "/api/account/reset-password",
        json!({"token": reset_token, "new_password": "yet another one"}),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    login(&t, "cp@example.com", "a brand new one").await;
    let (status, _) = post_json(
        &t,
        "/api/account/login",
        json!({"email": "cp@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
}

#[rocket::async_test]
async fn forgot_password_never_tells_whether_the_email_exists() {
    let t = app().await;
    register(&t, "fp@example.com").await;
    let known = post_json(
        &t,
        "/api/account/forgot-password",
        json!({"email": "fp@example.com"}),
    )
    .await;
    let unknown = post_json(
        &t,
        "/api/account/forgot-password",
        json!({"email": "ghost@example.com"}),
    )
    .await;
    assert_eq!(known.0, Status::Accepted);
    assert_eq!(known, unknown);
    let alias = post_json(
        &t,
        "/api/account/send-password-reset-email",
        json!({"email": "ghost@example.com"}),
    )
    .await;
    assert_eq!(alias, unknown);
    let mails = shopbox::mail::store::latest(&state(&t).db, Some("ghost@example.com"), 5)
        .await
        .unwrap();
    assert!(mails.is_empty());
}

#[rocket::async_test]
async fn reset_password_is_single_use_and_ends_every_session() {
    let t = app().await;
    register(&t, "rp@example.com").await;
    let (access, refresh, _) = login(&t, "rp@example.com", PASSWORD).await;
    post_json(
        &t,
        "/api/account/forgot-password",
        json!({"email": "rp@example.com"}),
    )
    .await;
    let mails = shopbox::mail::store::latest(&state(&t).db, Some("rp@example.com"), 1)
        .await
        .unwrap();
    let link = mails[0].link.clone().unwrap();
    assert!(
        link.starts_with("http://127.0.0.1:8000/reset-password?token="),
        "{link}"
    );
    let token = last_link_token(&t, "rp@example.com").await;
    assert!(token.len() >= 32);

    let (status, _) = post_json(
        &t,
        "/api/account/reset-password",
        json!({"token": token, "new_password": "rp@example.com"}),
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    let (status, body) = post_json(
        &t,
        "/api/account/reset-password",
        json!({"token": token, "new_password": "fresh password 1"}),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&access), None)
            .await
            .0,
        Status::Unauthorized
    );
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    let (status, _) = post_json(
        &t,
        "/api/account/verify-password-reset-token",
        json!({"token": token, "new_password": "fresh password 2"}),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    let (status, _) = post_json(
        &t,
        "/api/account/reset-password",
        json!({"token": "bad", "new_password": "fresh password 2"}),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
    login(&t, "rp@example.com", "fresh password 1").await;
}

const MINUTE_MICROS: i64 = 60 * 1_000_000;

async fn forgot(t: &TestApp, email: &str) -> String {
    let (status, _) = post_json(t, "/api/account/forgot-password", json!({"email": email})).await;
    assert_eq!(status, Status::Accepted);
    last_link_token(t, email).await
}

async fn reset(t: &TestApp, token: &str, password: &str) -> (Status, Value) {
    post_json(
        t,
        "/api/account/reset-password",
        json!({"token": token, "new_password": password}),
    )
    .await
}

#[rocket::async_test]
async fn reset_links_last_exactly_thirty_minutes() {
    let t = app().await;
    register(&t, "thirty@example.com").await;
    let clock = &state(&t).clock;

    // The clock stands still from the link's issue to its use: how long the requests
    // take does not count.
    let token = forgot(&t, "thirty@example.com").await;
    clock.freeze();
    clock.advance(30 * MINUTE_MICROS - 1_000_000);
    let (status, body) = reset(&t, &token, "fresh password 1").await;
    assert_eq!(status, Status::Ok, "at 29:59: {body}");
    clock.thaw();
    login(&t, "thirty@example.com", "fresh password 1").await;

    let token = forgot(&t, "thirty@example.com").await;
    clock.freeze();
    clock.advance(30 * MINUTE_MICROS + 1_000_000);
    let (status, body) = reset(&t, &token, "fresh password 2").await;
    assert_eq!(status, Status::BadRequest, "at 30:01: {body}");
    clock.thaw();
    assert!(body["detail"].is_string(), "{body}");
    login(&t, "thirty@example.com", "fresh password 1").await;
}

#[rocket::async_test]
async fn a_reset_voids_every_older_mail_token() {
    let t = app().await;
    register(&t, "void@example.com").await;
    let verify = last_link_token(&t, "void@example.com").await;
    let older = forgot(&t, "void@example.com").await;
    let newer = forgot(&t, "void@example.com").await;
    assert_ne!(older, newer);

    let (status, body) = reset(&t, &newer, "fresh password 1").await;
    assert_eq!(status, Status::Ok, "{body}");
    let (status, body) = reset(&t, &older, "fresh password 2").await;
    assert_eq!(status, Status::BadRequest, "an older reset link: {body}");
    let res = t
        .client
        .get(format!("/api/account/verify?token={verify}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::BadRequest, "an older verify link");
    let (_, _, me) = login(&t, "void@example.com", "fresh password 1").await;
    assert_eq!(me["user"]["is_verified"], false);

    // Links sent after the reset work.
    let later = forgot(&t, "void@example.com").await;
    let (status, body) = reset(&t, &later, "fresh password 3").await;
    assert_eq!(status, Status::Ok, "{body}");
    login(&t, "void@example.com", "fresh password 3").await;
}

#[rocket::async_test]
async fn expired_reset_tokens_are_refused() {
    use shopbox::account::model::{MailToken, MailTokenKind};
    let t = app().await;
    let user = register(&t, "ex@example.com").await;
    let now = shopbox::core::time::now_micros();
    let token = shopbox::core::tokens::random_token();
    shopbox::account::store::issue_mail_token(
        &state(&t).db,
        shopbox::core::tokens::token_hash(&token),
        MailToken {
            kind: MailTokenKind::Reset,
            user_id: user["id"].as_u64().unwrap(),
            created_at: now - 31 * 60 * 1_000_000,
            expires_at: now - 60 * 1_000_000,
            used: false,
        },
    )
    .await
    .unwrap();
    let (status, _) = post_json(
        &t,
        "/api/account/reset-password",
        json!({"token": token, "new_password": "fresh password 1"}),
    )
    .await;
    assert_eq!(status, Status::BadRequest);
}

/// Whether `needle` occurs in `hay`.
fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

#[rocket::async_test]
async fn plain_tokens_are_nowhere_in_storage_only_their_hashes() {
    if common::sled_only("plain_tokens_are_nowhere_in_storage_only_their_hashes") {
        return;
    }
    let t = app().await;
    register(&t, "plain@example.com").await;
    let verify = last_link_token(&t, "plain@example.com").await;
    let (access, refresh, _) = login(&t, "plain@example.com", PASSWORD).await;
    let (status, _) = post_json(
        &t,
        "/api/account/forgot-password",
        json!({"email": "plain@example.com"}),
    )
    .await;
    assert_eq!(status, Status::Accepted);
    let reset = last_link_token(&t, "plain@example.com").await;
    assert_ne!(reset, verify);

    let db = common::sled(&t);
    // The outbox keeps each mail with its link: SPEC.md makes it the delivery channel
    // when no SMTP server is configured.
    let outbox = shopbox::mail::model::OUTBOX;
    let schema = shopbox::schema();
    let mut hashes_found = 0;
    for tree in schema.tree_names().iter().filter(|t| **t != outbox) {
        for (key, value) in db.tree_entries(tree).unwrap() {
            // Any 16 bytes of a token (or of its decoded form) count as storing it.
            for token in [&verify, &reset, &refresh, &access] {
                let raw = hex::decode(token).unwrap_or_default();
                for piece in token.as_bytes().chunks(16).chain(raw.chunks(16)) {
                    for part in [&key, &value] {
                        assert!(
                            piece.len() < 16 || !contains(part, piece),
                            "part of a plain token is stored in {tree}"
                        );
                    }
                }
            }
            for token in [&verify, &reset, &refresh] {
                if key == shopbox::core::tokens::token_hash(token) {
                    hashes_found += 1;
                }
            }
        }
    }
    assert_eq!(hashes_found, 3, "each token is stored as its hash");
}

#[rocket::async_test]
async fn email_verification_link_verifies_once() {
    let t = app().await;
    register(&t, "v@example.com").await;
    let token = last_link_token(&t, "v@example.com").await;
    let res = t
        .client
        .get(format!("/api/account/verify?token={token}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let body: Value = res.into_json().await.unwrap();
    assert_eq!(body["user"]["is_verified"], true);
    assert!(body["message"].is_string());
    let again = t
        .client
        .get(format!("/api/account/verify-email?token={token}"))
        .dispatch()
        .await;
    assert_eq!(again.status(), Status::BadRequest);
    let bad = t
        .client
        .get("/api/account/verify?token=nope")
        .dispatch()
        .await;
    assert_eq!(bad.status(), Status::BadRequest);
    let missing = t.client.get("/api/account/verify").dispatch().await;
    assert_eq!(missing.status(), Status::UnprocessableEntity);
}

#[rocket::async_test]
async fn verify_request_sends_a_new_link() {
    let t = app().await;
    let token = customer(&t, "vr@example.com").await;
    let first = last_link_token(&t, "vr@example.com").await;
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/account/verify-request",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, Status::Accepted, "{body}");
    let second = last_link_token(&t, "vr@example.com").await;
    assert_ne!(first, second);
    let res = t
        .client
        .get(format!("/api/account/verify?token={second}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let (status, body) = send(
        &t,
        Method::Post,
        "/api/account/send-verification-email",
        Some(&token),
        None,
    )
    .await;
    assert_eq!(status, Status::Accepted);
    assert_eq!(body["message"], "Email already verified");
    let (status, _) = send(&t, Method::Post, "/api/account/verify-request", None, None).await;
    assert_eq!(status, Status::Unauthorized);
}

#[rocket::async_test]
async fn admin_lists_and_updates_users_and_customers_cannot() {
    let t = app().await;
    let admin_token = admin(&t, "boss@example.com").await;
    let cust = customer(&t, "cust@example.com").await;
    for i in 0..3 {
        register(&t, &format!("other{i}@example.com")).await;
    }
    let (status, page) = send(
        &t,
        Method::Get,
        "/api/account/users?limit=2&page=2",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(page["total"], 5);
    assert_eq!(page["pages"], 3);
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let (_, found) = send(
        &t,
        Method::Get,
        "/api/account/users?q=CUST",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(found["total"], 1);
    assert_eq!(found["items"][0]["email"], "cust@example.com");
    // The search matches the name alone, or the email alone.
    let (status, body) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "zq@example.com", "password": PASSWORD, "name": "Zelda Quux"}),
    )
    .await;
    assert_eq!(status, Status::Created, "{body}");
    for (q, why) in [("quux", "the name alone"), ("ZQ@", "the email alone")] {
        let (status, found) = send(
            &t,
            Method::Get,
            &format!("/api/account/users?q={q}"),
            Some(&admin_token),
            None,
        )
        .await;
        assert_eq!(status, Status::Ok);
        assert_eq!(found["total"], 1, "q={q} matches {why}: {found}");
        assert_eq!(found["items"][0]["email"], "zq@example.com", "{found}");
    }
    let (status, _) = send(
        &t,
        Method::Get,
        "/api/account/users?size=0",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(status, Status::UnprocessableEntity);
    let (_, past) = send(
        &t,
        Method::Get,
        "/api/account/users?page=9",
        Some(&admin_token),
        None,
    )
    .await;
    assert_eq!(past["items"], json!([]));

    assert_eq!(
        send(&t, Method::Get, "/api/account/users", Some(&cust), None)
            .await
            .0,
        Status::Forbidden
    );
    assert_eq!(
        send(&t, Method::Get, "/api/account/users", None, None)
            .await
            .0,
        Status::Unauthorized
    );

    let cust_id = found["items"][0]["id"].as_u64().unwrap();
    let path = format!("/api/account/users/{cust_id}");
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &path,
            Some(&cust),
            Some(json!({"is_admin": true}))
        )
        .await
        .0,
        Status::Forbidden
    );
    let (status, body) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"is_active": false})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(body["is_active"], false);
    // Deactivation ends their sessions, and login is refused with 403.
    assert_eq!(
        send(&t, Method::Get, "/api/account/me", Some(&cust), None)
            .await
            .0,
        Status::Unauthorized
    );
    let (status, _) = post_json(
        &t,
        "/api/account/login",
        json!({"email": "cust@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::Forbidden);
    let (status, body) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"is_active": true, "is_admin": true})),
    )
    .await;
    assert_eq!(status, Status::Ok);
    assert_eq!(body["is_admin"], true);

    let (_, me) = send(&t, Method::Get, "/api/account/me", Some(&admin_token), None).await;
    let own = format!("/api/account/users/{}", me["id"]);
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &own,
            Some(&admin_token),
            Some(json!({"is_admin": false}))
        )
        .await
        .0,
        Status::Conflict
    );
    assert_eq!(
        send(
            &t,
            Method::Patch,
            &own,
            Some(&admin_token),
            Some(json!({"is_active": false}))
        )
        .await
        .0,
        Status::Conflict
    );
    assert_eq!(
        send(
            &t,
            Method::Patch,
            "/api/account/users/999",
            Some(&admin_token),
            Some(json!({"is_admin": true}))
        )
        .await
        .0,
        Status::NotFound
    );
}

/// SPEC.md's admin operations: users list and update; product create, update, delete and
/// image; category create, update and delete; all orders; shipping status PUT and PATCH.
const SPEC_ADMIN_OPERATIONS: usize = 12;

#[rocket::async_test]
async fn every_admin_operation_refuses_customers_and_anonymous_callers() {
    let t = app().await;
    let cust = customer(&t, "walker@example.com").await;
    let spec = openapi(&t).await;
    let mut walked = Vec::new();
    for (path, method, op) in operations(&spec) {
        let schemes = security_schemes(op);
        let admin_path =
            path.split('/').any(|seg| seg == "admin") || path.starts_with("/api/account/users");
        if admin_path || schemes.iter().any(|s| s == "admin") {
            assert_eq!(
                op["security"],
                json!([{"admin": []}]),
                "{method} {path} must need exactly the admin scheme"
            );
        } else {
            continue;
        }
        let concrete = concrete_path(path);
        let method: Method = method.to_uppercase().parse().unwrap();
        let body = Some(json!({}));
        let (status, detail) = send(&t, method, &concrete, Some(&cust), body.clone()).await;
        assert_eq!(status, Status::Forbidden, "{method} {path}: {detail}");
        assert!(detail["detail"].is_string(), "{method} {path}: {detail}");
        let (status, detail) = send(&t, method, &concrete, None, body).await;
        assert_eq!(status, Status::Unauthorized, "{method} {path}: {detail}");
        assert!(detail["detail"].is_string(), "{method} {path}: {detail}");
        walked.push(format!("{method} {path}"));
    }
    let documented_admin = operations(&spec)
        .into_iter()
        .filter(|(_, _, op)| op["security"].to_string().contains("\"admin\""))
        .count();
    assert_eq!(walked.len(), documented_admin, "{walked:?}");
    assert!(
        walked.len() >= SPEC_ADMIN_OPERATIONS,
        "only {} admin operations documented: {walked:?}",
        walked.len()
    );
}

#[rocket::async_test]
async fn openapi_names_user_and_admin_security() {
    let t = app().await;
    let spec: Value = t
        .client
        .get("/openapi.json")
        .dispatch()
        .await
        .into_json()
        .await
        .unwrap();
    let paths = &spec["paths"];
    assert_eq!(
        paths["/api/account/me"]["get"]["security"],
        json!([{"user": []}])
    );
    assert_eq!(
        paths["/api/account/users"]["get"]["security"],
        json!([{"admin": []}])
    );
    assert!(paths["/api/account/refresh"]["post"]
        .get("security")
        .is_none());
    assert!(paths["/api/account/login"]["post"]
        .get("security")
        .is_none());
}

fn from(ip: &str) -> SocketAddr {
    format!("{ip}:40000").parse().unwrap()
}

#[rocket::async_test]
async fn login_is_rate_limited_per_client_ip() {
    let t = app_with(
        |c| {
            c.rate_limit.login_per_minute = 2;
            c.trusted_proxies = vec!["10.0.0.1".into()];
        },
        |r| r,
    )
    .await;
    let body = json!({"email": "x@example.com", "password": "whatever it is"}).to_string();
    let attempt = |ip: &'static str, forwarded: Option<&'static str>| {
        let mut req = t
            .client
            .post("/api/account/login")
            .remote(from(ip))
            .body(body.clone());
        if let Some(f) = forwarded {
            req = req.header(Header::new("X-Forwarded-For", f));
        }
        req.dispatch()
    };
    assert_eq!(
        attempt("192.0.2.1", None).await.status(),
        Status::Unauthorized
    );
    assert_eq!(
        attempt("192.0.2.1", None).await.status(),
        Status::Unauthorized
    );
    let limited = attempt("192.0.2.1", None).await;
    assert_eq!(limited.status(), Status::TooManyRequests);
    let retry: u64 = limited
        .headers()
        .get_one("Retry-After")
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry));
    assert!(limited.into_json::<Value>().await.unwrap()["detail"].is_string());
    // A forged forwarding header from an untrusted peer changes nothing.
    assert_eq!(
        attempt("192.0.2.1", Some("203.0.113.9")).await.status(),
        Status::TooManyRequests
    );
    // Another client is not limited.
    assert_eq!(
        attempt("192.0.2.2", None).await.status(),
        Status::Unauthorized
    );
    // Behind a trusted proxy, each forwarded client has its own budget.
    assert_eq!(
        attempt("10.0.0.1", Some("198.51.100.1")).await.status(),
        Status::Unauthorized
    );
    assert_eq!(
        attempt("10.0.0.1", Some("198.51.100.1")).await.status(),
        Status::Unauthorized
    );
    assert_eq!(
        attempt("10.0.0.1", Some("198.51.100.1")).await.status(),
        Status::TooManyRequests
    );
    assert_eq!(
        attempt("10.0.0.1", Some("198.51.100.2")).await.status(),
        Status::Unauthorized
    );
}

#[rocket::async_test]
async fn register_forgot_and_verify_request_are_rate_limited() {
    let t = app_with(
        |c| {
            c.rate_limit.register_per_hour = 1;
            c.rate_limit.forgot_password_per_hour = 1;
            c.rate_limit.verify_request_per_hour = 1;
        },
        |r| r,
    )
    .await;
    let token = customer(&t, "rl@example.com").await;
    let (status, _) = post_json(
        &t,
        "/api/account/register",
        json!({"email": "rl2@example.com", "password": PASSWORD}),
    )
    .await;
    assert_eq!(status, Status::TooManyRequests);
    assert_eq!(
        post_json(
            &t,
            "/api/account/forgot-password",
            json!({"email": "a@b.co"})
        )
        .await
        .0,
        Status::Accepted
    );
    assert_eq!(
        post_json(
            &t,
            "/api/account/forgot-password",
            json!({"email": "a@b.co"})
        )
        .await
        .0,
        Status::TooManyRequests
    );
    assert_eq!(
        send(
            &t,
            Method::Post,
            "/api/account/verify-request",
            Some(&token),
            None
        )
        .await
        .0,
        Status::Accepted
    );
    assert_eq!(
        send(
            &t,
            Method::Post,
            "/api/account/verify-request",
            Some(&token),
            None
        )
        .await
        .0,
        Status::TooManyRequests
    );

    let t = app_with(|c| c.rate_limit.enabled = false, |r| r).await;
    for _ in 0..40 {
        let (status, _) = post_json(
            &t,
            "/api/account/login",
            json!({"email": "n@example.com", "password": "whatever it is"}),
        )
        .await;
        assert_eq!(status, Status::Unauthorized);
    }
}

#[rocket::async_test]
async fn cookie_writes_from_foreign_origins_are_refused() {
    let t = app_with(
        |c| c.cors.allowed_origins = vec!["https://front.example.com".into()],
        |r| r,
    )
    .await;
    let token = customer(&t, "csrf@example.com").await;
    let patch = |origin: Option<&'static str>, site: Option<&'static str>, cookie: bool| {
        let mut req = t
            .client
            .patch("/api/account/me")
            .body(json!({"name": "N"}).to_string());
        if cookie {
            req = req.cookie(Cookie::new("access_token", token.clone()));
        } else {
            req = req.header(bearer(&token));
        }
        if let Some(o) = origin {
            req = req.header(Header::new("Origin", o));
        }
        if let Some(s) = site {
            req = req.header(Header::new("Sec-Fetch-Site", s));
        }
        req.dispatch()
    };
    let res = patch(Some("https://evil.example"), None, true).await;
    assert_eq!(res.status(), Status::Forbidden);
    assert!(res.into_json::<Value>().await.unwrap()["detail"].is_string());
    assert_eq!(
        patch(None, Some("cross-site"), true).await.status(),
        Status::Forbidden
    );
    assert_eq!(
        patch(Some("null"), None, true).await.status(),
        Status::Forbidden
    );
    assert_eq!(
        patch(Some("https://evil.example"), None, false)
            .await
            .status(),
        Status::Ok
    );
    assert_eq!(
        patch(Some("http://127.0.0.1:8000"), None, true)
            .await
            .status(),
        Status::Ok
    );
    assert_eq!(
        patch(Some("https://front.example.com"), None, true)
            .await
            .status(),
        Status::Ok
    );
    assert_eq!(
        patch(None, Some("same-origin"), true).await.status(),
        Status::Ok
    );
    assert_eq!(patch(None, None, true).await.status(), Status::Ok);

    // A cookie refresh from a foreign origin is refused too.
    let (_, refresh, _) = login(&t, "csrf@example.com", PASSWORD).await;
    let res = t
        .client
        .post("/api/account/refresh")
        .cookie(Cookie::new("refresh_token", refresh))
        .header(Header::new("Origin", "https://evil.example"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Forbidden);
}

#[rocket::async_test]
async fn cors_allows_credentials_only_to_trusted_origins() {
    let t = app_with(
        |c| c.cors.allowed_origins = vec!["https://front.example.com".into()],
        |r| r,
    )
    .await;
    let res = t
        .client
        .get("/api/shop")
        .header(Header::new("Origin", "https://front.example.com"))
        .dispatch()
        .await;
    assert_eq!(
        res.headers().get_one("Access-Control-Allow-Origin"),
        Some("https://front.example.com")
    );
    assert_eq!(
        res.headers().get_one("Access-Control-Allow-Credentials"),
        Some("true")
    );
    let res = t
        .client
        .get("/api/shop")
        .header(Header::new("Origin", "https://evil.example"))
        .dispatch()
        .await;
    assert!(res
        .headers()
        .get_one("Access-Control-Allow-Origin")
        .is_none());
    assert!(res
        .headers()
        .get_one("Access-Control-Allow-Credentials")
        .is_none());
    let pre = t
        .client
        .options("/api/account/me")
        .header(Header::new("Origin", "https://front.example.com"))
        .header(Header::new("Access-Control-Request-Method", "PATCH"))
        .dispatch()
        .await;
    assert_eq!(pre.status(), Status::NoContent);
    assert!(pre
        .headers()
        .get_one("Access-Control-Allow-Methods")
        .unwrap()
        .contains("PATCH"));
}

#[rocket::async_test]
async fn refresh_tokens_last_the_configured_days() {
    let t = app_with(|c| c.refresh_token_days = 2, |r| r).await;
    register(&t, "days@example.com").await;
    let clock = &state(&t).clock;
    let day = 24 * 60 * MINUTE_MICROS;

    let (_, refresh, _) = login(&t, "days@example.com", PASSWORD).await;
    // Standing still from each token's issue to its use (request times do not count).
    clock.freeze();
    clock.advance(2 * day - 1_000_000);
    let (status, body) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, Status::Ok, "a second before two days: {body}");

    // The rotated token lasts two days from its own issue.
    let rotated = body["refresh_token"].as_str().unwrap().to_string();
    clock.advance(2 * day + 1_000_000);
    let (status, body) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": rotated}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized, "a second after: {body}");
}

#[rocket::async_test]
async fn mail_tokens_work_only_for_their_own_purpose() {
    let t = app().await;
    register(&t, "kind@example.com").await;
    let verify = last_link_token(&t, "kind@example.com").await;
    let reset_token = forgot(&t, "kind@example.com").await;

    let (status, body) = reset(&t, &verify, "fresh password 1").await;
    assert_eq!(
        status,
        Status::BadRequest,
        "a verify link resets nothing: {body}"
    );
    let res = t
        .client
        .get(format!("/api/account/verify?token={reset_token}"))
        .dispatch()
        .await;
    assert_eq!(
        res.status(),
        Status::BadRequest,
        "a reset link verifies nothing"
    );
    let (_, _, me) = login(&t, "kind@example.com", PASSWORD).await;
    assert_eq!(me["user"]["is_verified"], false);

    // Each still works for its own purpose.
    let res = t
        .client
        .get(format!("/api/account/verify?token={verify}"))
        .dispatch()
        .await;
    assert_eq!(res.status(), Status::Ok);
    let (status, body) = reset(&t, &reset_token, "fresh password 1").await;
    assert_eq!(status, Status::Ok, "{body}");
}

/// Deactivation ends every session of the user for good: reactivating them does not bring
/// the old access and refresh tokens back. Any other admin change (a promotion) leaves
/// the user's sessions alone.
#[rocket::async_test]
async fn deactivation_ends_sessions_for_good_and_other_admin_changes_leave_them() {
    let t = app().await;
    let admin_token = admin(&t, "boss@example.com").await;
    register(&t, "kept@example.com").await;
    let (access, refresh, body) = login(&t, "kept@example.com", PASSWORD).await;
    let path = format!("/api/account/users/{}", body["user"]["id"]);

    let (status, body) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"is_admin": true})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    let (status, _) = send(&t, Method::Get, "/api/account/me", Some(&access), None).await;
    assert_eq!(status, Status::Ok, "a promotion ended the session");

    let (status, body) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"is_active": false, "is_admin": false})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    let (status, body) = send(
        &t,
        Method::Patch,
        &path,
        Some(&admin_token),
        Some(json!({"is_active": true})),
    )
    .await;
    assert_eq!(status, Status::Ok, "{body}");
    assert_eq!(body["is_active"], true);
    let (status, _) = send(&t, Method::Get, "/api/account/me", Some(&access), None).await;
    assert_eq!(
        status,
        Status::Unauthorized,
        "reactivation revived a session that deactivation ended"
    );
    let (status, _) = post_json(
        &t,
        "/api/account/refresh",
        json!({"refresh_token": refresh}),
    )
    .await;
    assert_eq!(status, Status::Unauthorized);
    login(&t, "kept@example.com", PASSWORD).await;
}
