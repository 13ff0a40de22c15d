//! Request guards: `CurrentUser` (any live login) and `AdminUser`. Authorization is decided
//! here, never by an `if` in a handler.

use rocket::request::{FromRequest, Outcome, Request};
use rocket_okapi::gen::OpenApiGenerator;
use rocket_okapi::okapi::openapi3::{
    Responses, SecurityRequirement, SecurityScheme, SecuritySchemeData,
};
use rocket_okapi::request::{OpenApiFromRequest, RequestHeaderInput};

use crate::account::model::{Owned, User};
use crate::account::store;
use crate::core::error::StoreError;
use crate::core::tokens::TokenError;
use crate::http::error::{document_error, ApiError};
use crate::http::origin::cookie_write_allowed;
use crate::http::AppState;

pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";

/// The logged-in user of this request and the login session it came with.
#[derive(Clone)]
pub struct CurrentUser {
    pub user: User,
    pub session_id: u64,
}

/// A logged-in admin.
pub struct AdminUser(pub CurrentUser);

impl CurrentUser {
    /// The record if it is this user's; else (missing or another's) a 404.
    pub fn mine<T: Owned>(&self, found: Option<T>) -> Result<T, ApiError> {
        found
            .filter(|r| r.owner() == self.user.id)
            .ok_or_else(|| StoreError::NotFound(T::WHAT).into())
    }

    /// The record if it is this user's or the user is an admin (admins read every
    /// customer's); else a 404.
    pub fn mine_or_admin<T: Owned>(&self, found: Option<T>) -> Result<T, ApiError> {
        match found {
            Some(r) if self.user.is_admin => Ok(r),
            other => self.mine(other),
        }
    }
}

/// The access token of a request: `Authorization: Bearer` first, else the cookie.
fn access_token(req: &Request<'_>) -> Option<(String, bool)> {
    if let Some(value) = req.headers().get_one("Authorization") {
        let mut parts = value.splitn(2, ' ');
        if let (Some(scheme), Some(token)) = (parts.next(), parts.next()) {
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
                return Some((token.trim().to_string(), false));
            }
        }
    }
    req.cookies()
        .get(ACCESS_COOKIE)
        .map(|c| (c.value().to_string(), true))
}

/// Whether a cookie-carried credential may be used for this request (the CSRF rule).
pub fn cookie_use_allowed(req: &Request<'_>, state: &AppState) -> Result<(), ApiError> {
    if cookie_write_allowed(req, &state.config) {
        Ok(())
    } else {
        Err(ApiError::Forbidden(
            "Cross-site request refused (Origin not allowed)".into(),
        ))
    }
}

async fn authenticate(req: &Request<'_>) -> Result<CurrentUser, ApiError> {
    let state = req
        .rocket()
        .state::<AppState>()
        .ok_or_else(|| ApiError::Internal("no app state".into()))?;
    let (token, via_cookie) =
        access_token(req).ok_or_else(|| ApiError::Unauthorized("Not authenticated".into()))?;
    if via_cookie {
        cookie_use_allowed(req, state)?;
    }
    let now_secs = state.clock.now() / 1_000_000;
    let (user_id, session_id) = state.jwt.check(&token, now_secs).map_err(|e| match e {
        TokenError::Expired => ApiError::Unauthorized("Token expired".into()),
        TokenError::Invalid => ApiError::Unauthorized("Invalid token".into()),
    })?;
    store::live_session(&state.db, session_id, user_id)
        .await?
        .ok_or_else(|| ApiError::Unauthorized("Session ended; log in again".into()))?;
    let user = store::user(&state.db, user_id)
        .await?
        .filter(|u| u.is_active)
        .ok_or_else(|| ApiError::Unauthorized("Session ended; log in again".into()))?;
    crate::http::request_id::note_user(req, user.id);
    Ok(CurrentUser { user, session_id })
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for CurrentUser {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let cached = req
            .local_cache_async(async { authenticate(req).await })
            .await;
        match cached {
            Ok(user) => Outcome::Success(user.clone()),
            Err(e) => Outcome::Error((e.clone().stash(req), ())),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for AdminUser {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        match CurrentUser::from_request(req).await {
            Outcome::Success(u) if u.user.is_admin => Outcome::Success(AdminUser(u)),
            Outcome::Success(_) => Outcome::Error((
                ApiError::Forbidden("Admin privileges required".into()).stash(req),
                (),
            )),
            Outcome::Error(e) => Outcome::Error(e),
            Outcome::Forward(f) => Outcome::Forward(f),
        }
    }
}

/// The bearer scheme that the `user` and `admin` security requirements name.
pub fn security_scheme(text: &str) -> SecurityScheme {
    SecurityScheme {
        description: Some(text.to_string()),
        data: SecuritySchemeData::Http {
            scheme: "bearer".to_string(),
            bearer_format: Some("JWT".to_string()),
        },
        extensions: Default::default(),
    }
}

fn security(name: &str, text: &str) -> RequestHeaderInput {
    let scheme = security_scheme(text);
    let mut requirement = SecurityRequirement::new();
    requirement.insert(name.to_string(), Vec::new());
    RequestHeaderInput::Security(name.to_string(), scheme, requirement)
}

impl<'r> OpenApiFromRequest<'r> for CurrentUser {
    fn from_request_input(
        _gen: &mut OpenApiGenerator,
        _name: String,
        _required: bool,
    ) -> rocket_okapi::Result<RequestHeaderInput> {
        Ok(security(
            "user",
            "A logged-in user: the `access_token` cookie, or `Authorization: Bearer <access_token>`.",
        ))
    }

    fn get_responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = Responses::default();
        document_error(
            gen,
            &mut responses,
            401,
            "Not logged in, or the token expired or was revoked",
        );
        document_error(
            gen,
            &mut responses,
            403,
            "Cross-site cookie request refused",
        );
        Ok(responses)
    }
}

impl<'r> OpenApiFromRequest<'r> for AdminUser {
    fn from_request_input(
        _gen: &mut OpenApiGenerator,
        _name: String,
        _required: bool,
    ) -> rocket_okapi::Result<RequestHeaderInput> {
        Ok(security(
            "admin",
            "A logged-in admin: the `access_token` cookie, or `Authorization: Bearer <access_token>` of an admin.",
        ))
    }

    fn get_responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = Responses::default();
        document_error(
            gen,
            &mut responses,
            401,
            "Not logged in, or the token expired or was revoked",
        );
        document_error(
            gen,
            &mut responses,
            403,
            "Not an admin, or a cross-site cookie request",
        );
        Ok(responses)
    }
}

/// The refresh cookie, if sent, and whether the CSRF rule lets this request use it.
pub struct RefreshCookie {
    value: Option<String>,
    allowed: bool,
}

impl RefreshCookie {
    /// The cookie's token, or why it cannot be used.
    pub fn value(&self) -> Result<String, ApiError> {
        match (&self.value, self.allowed) {
            (None, _) => Err(ApiError::Unauthorized("No refresh token".into())),
            (Some(_), false) => Err(ApiError::Forbidden(
                "Cross-site request refused (Origin not allowed)".into(),
            )),
            (Some(v), true) => Ok(v.clone()),
        }
    }
}

#[rocket::async_trait]
impl<'r> FromRequest<'r> for RefreshCookie {
    type Error = ();

    async fn from_request(req: &'r Request<'_>) -> Outcome<Self, ()> {
        let allowed = match req.rocket().state::<AppState>() {
            Some(state) => cookie_use_allowed(req, state).is_ok(),
            None => false,
        };
        Outcome::Success(RefreshCookie {
            value: req
                .cookies()
                .get(REFRESH_COOKIE)
                .map(|c| c.value().to_string()),
            allowed,
        })
    }
}

impl<'r> OpenApiFromRequest<'r> for RefreshCookie {
    fn from_request_input(
        _gen: &mut OpenApiGenerator,
        _name: String,
        _required: bool,
    ) -> rocket_okapi::Result<RequestHeaderInput> {
        Ok(RequestHeaderInput::None)
    }

    fn get_responses(gen: &mut OpenApiGenerator) -> rocket_okapi::Result<Responses> {
        let mut responses = Responses::default();
        document_error(
            gen,
            &mut responses,
            401,
            "No refresh token, or an invalid, expired or reused one",
        );
        document_error(
            gen,
            &mut responses,
            403,
            "Cross-site cookie request refused",
        );
        Ok(responses)
    }
}
