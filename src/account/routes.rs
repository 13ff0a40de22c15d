//! `/api/account`: registration, login sessions, email verification, passwords, admin users.

use rocket::http::{Cookie, CookieJar, SameSite};
use rocket::response::status::{Accepted, Created};
use rocket::serde::json::Json;
use rocket::{get, patch, post, State};
use rocket_okapi::okapi::openapi3::OpenApi;
use rocket_okapi::settings::OpenApiSettings;
use rocket_okapi::{openapi, openapi_get_routes_spec};

use crate::account::guard::{AdminUser, CurrentUser, RefreshCookie, ACCESS_COOKIE, REFRESH_COOKIE};
use crate::account::model::*;
use crate::account::store::{self, NewUser, Rotation};
use crate::core::error::{StoreError, Unique};
use crate::core::tokens::{random_token, token_hash};
use crate::http::openapi;
use crate::http::ratelimit::{self, Limited};
use crate::http::{ApiError, ApiJson, ApiResult, AppState, FieldError, Message, Page, PageQuery};
use crate::mail::{self, model::Letter};

const VERIFY_TOKEN_MICROS: i64 = 24 * 3600 * 1_000_000;
const RESET_TOKEN_MICROS: i64 = 30 * 60 * 1_000_000;

fn access_ttl_secs(state: &AppState) -> i64 {
    i64::from(state.config.access_token_minutes) * 60
}

fn refresh_ttl_micros(state: &AppState) -> i64 {
    i64::from(state.config.refresh_token_days) * 24 * 3600 * 1_000_000
}

fn set_auth_cookies(jar: &CookieJar<'_>, state: &AppState, access: &str, refresh: &str) {
    let secure = state.config.cookie_secure();
    jar.add(
        Cookie::build((ACCESS_COOKIE, access.to_string()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/")
            .max_age(rocket::time::Duration::seconds(access_ttl_secs(state))),
    );
    jar.add(
        Cookie::build((REFRESH_COOKIE, refresh.to_string()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .secure(secure)
            .path("/api/account")
            .max_age(rocket::time::Duration::days(i64::from(
                state.config.refresh_token_days,
            ))),
    );
}

/// Expires both cookies, whether or not this request carried them.
fn clear_auth_cookies(jar: &CookieJar<'_>) {
    for (name, path) in [(ACCESS_COOKIE, "/"), (REFRESH_COOKIE, "/api/account")] {
        jar.add(
            Cookie::build((name, ""))
                .http_only(true)
                .same_site(SameSite::Lax)
                .path(path)
                .max_age(rocket::time::Duration::ZERO)
                .expires(rocket::time::OffsetDateTime::UNIX_EPOCH),
        );
    }
}

fn new_access_token(state: &AppState, user_id: u64, session_id: u64) -> String {
    let now = state.clock.now() / 1_000_000;
    state
        .jwt
        .issue(user_id, session_id, now, access_ttl_secs(state))
}

/// Issues a single-use token of `kind`, valid `ttl_micros`, and mails its link.
async fn send_token_mail(
    state: &AppState,
    user: &User,
    kind: MailTokenKind,
    ttl_micros: i64,
    letter: impl FnOnce(&str) -> Letter,
) -> ApiResult<()> {
    let token = random_token();
    let now = state.clock.now();
    store::issue_mail_token(
        &state.db,
        token_hash(&token),
        MailToken {
            kind,
            user_id: user.id,
            created_at: now,
            expires_at: now + ttl_micros,
            used: false,
        },
    )
    .await?;
    let target = match kind {
        MailTokenKind::Verify => &state.config.links.verify,
        MailTokenKind::Reset => &state.config.links.reset,
    };
    let link = mail::link(&state.config, target, &token);
    let letter = letter(&link);
    mail::send(state, &user.email, letter, Some(link), now).await?;
    Ok(())
}

async fn send_verification(state: &AppState, user: &User) -> ApiResult<()> {
    let shop = &state.config.shop_name;
    send_token_mail(
        state,
        user,
        MailTokenKind::Verify,
        VERIFY_TOKEN_MICROS,
        |link| mail::verification(shop, &user.name, link),
    )
    .await
}

/// Creates an account (never an admin) and sends a verification email. The name
/// defaults to the part of the email before `@`. A taken email, ignoring case, is a 409.
#[openapi(tag = "Account")]
#[post("/register", data = "<body>")]
async fn register(
    state: &State<AppState>,
    _limit: Limited<ratelimit::Register>,
    body: ApiJson<RegisterIn>,
) -> ApiResult<Created<Json<UserOut>>> {
    let email = body.email.trim().to_string();
    // Refused before hashing, which is slow; the write checks again.
    if store::user_by_email(&state.db, &email).await?.is_some() {
        return Err(StoreError::Duplicate(Unique::Email).into());
    }
    let name = match &body.name {
        Some(n) => n.trim().to_string(),
        None => email.split('@').next().unwrap_or_default().to_string(),
    };
    let hashed_password = state.passwords.hash(&body.password).await?;
    let user = store::create_user(
        &state.db,
        NewUser {
            email,
            name,
            hashed_password,
            is_admin: false,
            is_verified: false,
        },
        state.clock.now(),
    )
    .await?;
    send_verification(state, &user).await?;
    Ok(Created::new("/api/account/me").body(Json(UserOut::from(&user))))
}

/// Logs in: answers both tokens in the body (for API clients) and sets them as HttpOnly
/// cookies (for browsers). A wrong email or password is the same 401; a deactivated
/// account is a 403.
#[openapi(tag = "Account")]
#[post("/login", data = "<body>")]
async fn login(
    state: &State<AppState>,
    _limit: Limited<ratelimit::Login>,
    jar: &CookieJar<'_>,
    body: ApiJson<LoginIn>,
) -> ApiResult<Json<LoginOut>> {
    let found = store::user_by_email(&state.db, &body.email).await?;
    let ok = state
        .passwords
        .verify(
            &body.password,
            found.as_ref().map(|u| u.hashed_password.as_str()),
        )
        .await?;
    let user = match (ok, found) {
        (true, Some(user)) => user,
        _ => return Err(ApiError::Unauthorized("Invalid email or password".into())),
    };
    if !user.is_active {
        return Err(ApiError::Forbidden("This account is deactivated".into()));
    }
    if crate::core::password::needs_rehash(&user.hashed_password) {
        let fresh = state.passwords.hash(&body.password).await?;
        store::rehash_password(&state.db, user.id, &fresh).await?;
    }
    let refresh = random_token();
    let now = state.clock.now();
    let session = store::start_session(
        &state.db,
        user.id,
        token_hash(&refresh),
        now + refresh_ttl_micros(state),
        now,
    )
    .await?;
    let access = new_access_token(state, user.id, session.id);
    set_auth_cookies(jar, state, &access, &refresh);
    Ok(Json(LoginOut {
        message: "Logged in".into(),
        user: UserOut::from(&user),
        access_token: access,
        refresh_token: refresh,
        token_type: "bearer".into(),
        expires_in: access_ttl_secs(state),
    }))
}

/// Swaps a refresh token (the cookie, or `refresh_token` in the body) for new tokens in
/// the same session. Presenting a token that was already swapped ends that session.
#[openapi(tag = "Account")]
#[post("/refresh", data = "<body>")]
async fn refresh(
    state: &State<AppState>,
    jar: &CookieJar<'_>,
    cookie: RefreshCookie,
    body: ApiJson<RefreshIn>,
) -> ApiResult<Json<RefreshOut>> {
    let presented = match &body.refresh_token {
        Some(t) => t.clone(),
        None => cookie.value()?,
    };
    let fresh = random_token();
    let now = state.clock.now();
    let rotation = store::rotate_refresh(
        &state.db,
        token_hash(&presented),
        token_hash(&fresh),
        now + refresh_ttl_micros(state),
        now,
    )
    .await?;
    match rotation {
        Rotation::Rotated { session, user } => {
            let access = new_access_token(state, user.id, session.id);
            set_auth_cookies(jar, state, &access, &fresh);
            Ok(Json(RefreshOut {
                message: "Tokens refreshed".into(),
                access_token: access,
                refresh_token: fresh,
                token_type: "bearer".into(),
                expires_in: access_ttl_secs(state),
            }))
        }
        Rotation::Reused => {
            clear_auth_cookies(jar);
            Err(ApiError::Unauthorized(
                "Refresh token already used; the session has been ended".into(),
            ))
        }
        Rotation::Invalid => Err(ApiError::Unauthorized(
            "Invalid or expired refresh token".into(),
        )),
    }
}

/// The logged-in user.
#[openapi(tag = "Account")]
#[get("/me")]
fn me(current: CurrentUser) -> Json<UserOut> {
    Json(UserOut::from(&current.user))
}

/// Changes the logged-in user's name.
#[openapi(tag = "Account")]
#[patch("/me", data = "<body>")]
async fn update_me(
    state: &State<AppState>,
    current: CurrentUser,
    body: ApiJson<UpdateMeIn>,
) -> ApiResult<Json<UserOut>> {
    let name = body.name.trim().to_string();
    let user = store::update_user(&state.db, current.user.id, state.clock.now(), |u| {
        u.name = name.clone();
        Ok(())
    })
    .await?;
    Ok(Json(UserOut::from(&user)))
}

async fn verify_request_inner(
    state: &AppState,
    current: CurrentUser,
) -> ApiResult<Accepted<Json<Message>>> {
    if current.user.is_verified {
        return Ok(Accepted(Json(Message::new("Email already verified"))));
    }
    send_verification(state, &current.user).await?;
    Ok(Accepted(Json(Message::new("Verification email sent"))))
}

/// Sends a new verification link to the logged-in user (202). Rate-limited per IP.
#[openapi(tag = "Account")]
#[post("/verify-request")]
async fn verify_request(
    state: &State<AppState>,
    _limit: Limited<ratelimit::VerifyRequest>,
    current: CurrentUser,
) -> ApiResult<Accepted<Json<Message>>> {
    verify_request_inner(state, current).await
}

/// Alias of `POST /verify-request`.
#[openapi(tag = "Account")]
#[post("/send-verification-email")]
async fn send_verification_email(
    state: &State<AppState>,
    _limit: Limited<ratelimit::VerifyRequest>,
    current: CurrentUser,
) -> ApiResult<Accepted<Json<Message>>> {
    verify_request_inner(state, current).await
}

async fn verify_inner(state: &AppState, token: Option<String>) -> ApiResult<Json<VerifiedOut>> {
    let token = token.ok_or_else(|| {
        ApiError::validation(FieldError::new(
            "query",
            "token",
            "Field required",
            "missing",
        ))
    })?;
    let user = store::redeem_mail_token(
        &state.db,
        token_hash(&token),
        MailTokenKind::Verify,
        state.clock.now(),
        |u| u.is_verified = true,
    )
    .await?
    .ok_or_else(|| ApiError::BadRequest("Invalid, expired or already used token".into()))?;
    Ok(Json(VerifiedOut {
        message: "Email verified".into(),
        user: UserOut::from(&user),
    }))
}

/// Verifies an email with the token from the link (single use, 24 hours). A bad,
/// expired or used token is a 400.
#[openapi(tag = "Account")]
#[get("/verify?<token>")]
async fn verify(state: &State<AppState>, token: Option<String>) -> ApiResult<Json<VerifiedOut>> {
    verify_inner(state, token).await
}

/// Alias of `GET /verify`.
#[openapi(tag = "Account")]
#[get("/verify-email?<token>")]
async fn verify_email(
    state: &State<AppState>,
    token: Option<String>,
) -> ApiResult<Json<VerifiedOut>> {
    verify_inner(state, token).await
}

/// Changes the password (`old_password` is accepted for `current_password`). Every other
/// session of the user ends; this one stays. A wrong current password is a 400.
#[openapi(tag = "Account")]
#[post("/change-password", data = "<body>")]
async fn change_password(
    state: &State<AppState>,
    current: CurrentUser,
    body: ApiJson<ChangePasswordIn>,
) -> ApiResult<Json<Message>> {
    let mut errors = Vec::new();
    check_password(
        "new_password",
        &body.new_password,
        Some(&current.user.email),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let ok = state
        .passwords
        .verify(&body.current_password, Some(&current.user.hashed_password))
        .await?;
    if !ok {
        return Err(ApiError::BadRequest("Current password is incorrect".into()));
    }
    let hashed = state.passwords.hash(&body.new_password).await?;
    store::set_password(
        &state.db,
        current.user.id,
        &hashed,
        Some(current.session_id),
        state.clock.now(),
    )
    .await?;
    Ok(Json(Message::new(
        "Password changed; other sessions have been logged out",
    )))
}

const FORGOT_REPLY: &str = "If an account exists for that email, a reset link has been sent";

async fn forgot_inner(state: &AppState, email: &str) -> ApiResult<Accepted<Json<Message>>> {
    match store::user_by_email(&state.db, email)
        .await?
        .filter(|u| u.is_active)
    {
        Some(user) => {
            let shop = &state.config.shop_name;
            send_token_mail(
                state,
                &user,
                MailTokenKind::Reset,
                RESET_TOKEN_MICROS,
                |link| mail::password_reset(shop, &user.name, link),
            )
            .await?;
        }
        // Cost about the same as the path that writes, so timing tells nothing.
        None => state.db.durable().await?,
    }
    Ok(Accepted(Json(Message::new(FORGOT_REPLY))))
}

/// Sends a password reset link if the email belongs to an account. Always 202 with the
/// same body. Rate-limited per IP.
#[openapi(tag = "Account")]
#[post("/forgot-password", data = "<body>")]
async fn forgot_password(
    state: &State<AppState>,
    _limit: Limited<ratelimit::ForgotPassword>,
    body: ApiJson<ForgotPasswordIn>,
) -> ApiResult<Accepted<Json<Message>>> {
    forgot_inner(state, &body.email).await
}

/// Alias of `POST /forgot-password`.
#[openapi(tag = "Account")]
#[post("/send-password-reset-email", data = "<body>")]
async fn send_password_reset_email(
    state: &State<AppState>,
    _limit: Limited<ratelimit::ForgotPassword>,
    body: ApiJson<ForgotPasswordIn>,
) -> ApiResult<Accepted<Json<Message>>> {
    forgot_inner(state, &body.email).await
}

async fn reset_inner(state: &AppState, body: &ResetPasswordIn) -> ApiResult<Json<Message>> {
    let hash = token_hash(&body.token);
    let invalid = || ApiError::BadRequest("Invalid, expired or already used token".into());
    let user = store::peek_mail_token(&state.db, hash, MailTokenKind::Reset, state.clock.now())
        .await?
        .ok_or_else(invalid)?;
    let mut errors = Vec::new();
    check_password(
        "new_password",
        &body.new_password,
        Some(&user.email),
        &mut errors,
    );
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let hashed = state.passwords.hash(&body.new_password).await?;
    let now = state.clock.now();
    store::redeem_mail_token(&state.db, hash, MailTokenKind::Reset, now, |u| {
        u.hashed_password = hashed.clone();
        u.tokens_valid_after = now;
    })
    .await?
    .ok_or_else(invalid)?;
    Ok(Json(Message::new(
        "Password reset; log in with the new password",
    )))
}

/// Sets a new password with the token from a reset link (single use, 30 minutes). Every
/// session of the user ends. A bad, expired or used token is a 400.
#[openapi(tag = "Account")]
#[post("/reset-password", data = "<body>")]
async fn reset_password(
    state: &State<AppState>,
    body: ApiJson<ResetPasswordIn>,
) -> ApiResult<Json<Message>> {
    reset_inner(state, &body).await
}

/// Alias of `POST /reset-password`.
#[openapi(tag = "Account")]
#[post("/verify-password-reset-token", data = "<body>")]
async fn verify_password_reset_token(
    state: &State<AppState>,
    body: ApiJson<ResetPasswordIn>,
) -> ApiResult<Json<Message>> {
    reset_inner(state, &body).await
}

/// Ends this login session: its refresh token stops working, its access tokens too, and
/// both cookies are cleared.
#[openapi(tag = "Account")]
#[post("/logout")]
async fn logout(
    state: &State<AppState>,
    current: CurrentUser,
    jar: &CookieJar<'_>,
) -> ApiResult<Json<Message>> {
    store::end_session(&state.db, current.session_id).await?;
    clear_auth_cookies(jar);
    Ok(Json(Message::new("Logged out")))
}

/// Admin: users, paginated, optionally filtered by `q` (in email or name, ignoring case).
#[openapi(tag = "Account admin")]
#[get("/users?<q>&<page..>")]
async fn list_users(
    state: &State<AppState>,
    _admin: AdminUser,
    q: Option<String>,
    page: PageQuery,
) -> ApiResult<Json<Page<UserOut>>> {
    let mut errors = Vec::new();
    let pagination = page.parse(&mut errors);
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    let users = store::list_users(&state.db, q.as_deref()).await?;
    let out: Vec<UserOut> = users.iter().map(UserOut::from).collect();
    Ok(Json(pagination.slice(out)))
}

/// Admin: makes a user admin or not, active or not. Deactivating ends all their sessions.
/// An admin demoting or deactivating themself is a 409.
#[openapi(tag = "Account admin")]
#[patch("/users/<user_id>", data = "<body>")]
async fn update_user(
    state: &State<AppState>,
    admin: AdminUser,
    user_id: u64,
    body: ApiJson<AdminUserPatch>,
) -> ApiResult<Json<UserOut>> {
    if user_id == admin.0.user.id && (body.is_admin == Some(false) || body.is_active == Some(false))
    {
        return Err(ApiError::Conflict(
            "Admins cannot demote or deactivate themselves".into(),
        ));
    }
    let user = store::admin_update(
        &state.db,
        user_id,
        body.is_admin,
        body.is_active,
        state.clock.now(),
    )
    .await?;
    Ok(Json(UserOut::from(&user)))
}

pub fn routes(settings: &OpenApiSettings) -> (Vec<rocket::Route>, OpenApi) {
    let (routes, mut spec) = openapi_get_routes_spec![settings:
        register, login, refresh, me, update_me, verify_request, send_verification_email,
        verify, verify_email, change_password, forgot_password, send_password_reset_email,
        reset_password, verify_password_reset_token, logout, list_users, update_user
    ];
    // What the handlers answer beyond their types.
    openapi::answers(
        &mut spec,
        &[
            ("post", "/register", 409, "Email already registered"),
            ("post", "/login", 401, "Invalid email or password"),
            ("post", "/login", 403, "This account is deactivated"),
            (
                "patch",
                "/users/{user_id}",
                409,
                "An admin demoting or deactivating themself",
            ),
        ],
    );
    for path in ["/verify", "/verify-email"] {
        openapi::require_query(&mut spec, "get", path, "token");
    }
    (routes, spec)
}
