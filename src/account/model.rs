//! Accounts: stored records and API shapes.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::core::time::rfc3339;
use crate::db::{IndexEntry, Indexed, Record, Unique};
use crate::http::{FieldError, Validate};

pub const USERS: &str = "users";
pub const USERS_BY_EMAIL: &str = "users_by_email";
pub const SESSIONS: &str = "sessions";
pub const SESSIONS_BY_USER: &str = "sessions_by_user";
pub const REFRESH_TOKENS: &str = "refresh_tokens";
pub const MAIL_TOKENS: &str = "mail_tokens";

pub const TREES: &[&str] = &[
    USERS,
    USERS_BY_EMAIL,
    SESSIONS,
    SESSIONS_BY_USER,
    REFRESH_TOKENS,
    MAIL_TOKENS,
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct User {
    pub id: u64,
    pub email: String,
    pub hashed_password: String,
    pub name: String,
    pub is_active: bool,
    pub is_admin: bool,
    pub is_verified: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Verification and reset tokens issued at or before this time are void.
    pub tokens_valid_after: i64,
}

impl Record for User {
    const TREE: &'static str = USERS;
}

impl Indexed for User {
    const INDEXES: &'static [&'static str] = &[USERS_BY_EMAIL];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        let email = email_key(&self.email);
        vec![IndexEntry::unique(
            USERS_BY_EMAIL,
            email,
            self.id,
            Unique::Email,
        )]
    }
}

/// A record that belongs to one customer. Another customer asking for it gets the same
/// 404 as for a missing one (see `CurrentUser::mine`).
pub trait Owned {
    /// What a 404 calls it: "Order" makes "Order not found".
    const WHAT: &'static str;
    fn owner(&self) -> u64;
}

/// One login: its access tokens carry its id (`sid`), its refresh tokens rotate within it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    pub user_id: u64,
    pub created_at: i64,
    /// When the current refresh token expires.
    pub expires_at: i64,
    pub revoked: bool,
}

impl Record for Session {
    const TREE: &'static str = SESSIONS;
}

impl Indexed for Session {
    const INDEXES: &'static [&'static str] = &[SESSIONS_BY_USER];
    fn id(&self) -> u64 {
        self.id
    }
    fn index_entries(&self) -> Vec<IndexEntry> {
        vec![IndexEntry::link(SESSIONS_BY_USER, self.user_id, self.id)]
    }
}

/// A refresh token, keyed by its hash. Once rotated, presenting it again ends the session.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RefreshToken {
    pub session_id: u64,
    pub user_id: u64,
    pub expires_at: i64,
    pub rotated: bool,
}

impl Record for RefreshToken {
    const TREE: &'static str = REFRESH_TOKENS;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MailTokenKind {
    Verify,
    Reset,
}

/// A verification or reset token, keyed by its hash; single-use.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MailToken {
    pub kind: MailTokenKind,
    pub user_id: u64,
    pub created_at: i64,
    pub expires_at: i64,
    pub used: bool,
}

impl Record for MailToken {
    const TREE: &'static str = MAIL_TOKENS;
}

/// A user as the API shows it; never the hash.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
pub struct UserOut {
    pub id: u64,
    pub email: String,
    pub name: String,
    pub is_active: bool,
    pub is_admin: bool,
    pub is_verified: bool,
    pub created_at: String,
    pub updated_at: String,
}

impl From<&User> for UserOut {
    fn from(u: &User) -> Self {
        UserOut {
            id: u.id,
            email: u.email.clone(),
            name: u.name.clone(),
            is_active: u.is_active,
            is_admin: u.is_admin,
            is_verified: u.is_verified,
            created_at: rfc3339(u.created_at),
            updated_at: rfc3339(u.updated_at),
        }
    }
}

pub fn email_key(email: &str) -> Vec<u8> {
    email.trim().to_lowercase().into_bytes()
}

/// A plausible address: one `@`, something before it, a dotted domain after, no spaces.
pub fn check_email(field: &str, email: &str, errors: &mut Vec<FieldError>) {
    let email = email.trim();
    let ok = email.chars().count() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && match email.split_once('@') {
            Some((local, domain)) => {
                !local.is_empty()
                    && local.len() <= 64
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
                    && !domain.contains("..")
            }
            None => false,
        };
    if !ok {
        errors.push(FieldError::new(
            "body",
            field,
            "value is not a valid email address",
            "value_error",
        ));
    }
}

pub const PASSWORD_MIN: usize = 8;
pub const PASSWORD_MAX: usize = 128;

pub fn check_password(
    field: &str,
    password: &str,
    email: Option<&str>,
    errors: &mut Vec<FieldError>,
) {
    let len = password.chars().count();
    if !(PASSWORD_MIN..=PASSWORD_MAX).contains(&len) {
        errors.push(FieldError::new(
            "body",
            field,
            format!("Password must be {PASSWORD_MIN} to {PASSWORD_MAX} characters"),
            "value_error",
        ));
    } else if email.is_some_and(|e| e.trim().eq_ignore_ascii_case(password.trim())) {
        errors.push(FieldError::new(
            "body",
            field,
            "Password must not be the email address",
            "value_error",
        ));
    }
}

/// 1 to 100 characters (counted as sent), not blank, no control characters: what the
/// schema `http::schema::name` says.
pub fn check_name(field: &str, name: &str, errors: &mut Vec<FieldError>) {
    let len = name.chars().count();
    if name.trim().is_empty() || len > 100 || name.chars().any(char::is_control) {
        errors.push(FieldError::body(field, "Name must be 1 to 100 characters"));
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct RegisterIn {
    #[schemars(schema_with = "crate::http::schema::email")]
    pub email: String,
    /// Defaults to the part of the email before `@`.
    #[serde(default)]
    #[schemars(schema_with = "crate::http::schema::name_or_null")]
    pub name: Option<String>,
    /// 8 to 128 characters, not the email.
    #[schemars(schema_with = "crate::http::schema::password")]
    pub password: String,
}

impl Validate for RegisterIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_email("email", &self.email, errors);
        if let Some(name) = &self.name {
            check_name("name", name, errors);
        }
        check_password("password", &self.password, Some(&self.email), errors);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct LoginIn {
    #[schemars(schema_with = "crate::http::schema::login_email")]
    pub email: String,
    #[schemars(schema_with = "crate::http::schema::any_password")]
    pub password: String,
}

impl Validate for LoginIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        if self.email.chars().count() > 254 {
            errors.push(FieldError::body("email", "Email too long"));
        }
        if self.password.chars().count() > PASSWORD_MAX {
            errors.push(FieldError::body("password", "Password too long"));
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RefreshIn {
    /// The refresh token; browsers may leave it out and send the cookie instead.
    pub refresh_token: Option<String>,
}

impl Validate for RefreshIn {}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct UpdateMeIn {
    #[schemars(schema_with = "crate::http::schema::name")]
    pub name: String,
}

impl Validate for UpdateMeIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_name("name", &self.name, errors);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ChangePasswordIn {
    /// The password now in use (`old_password` is accepted too).
    #[serde(alias = "old_password")]
    #[schemars(schema_with = "crate::http::schema::any_password")]
    pub current_password: String,
    /// 8 to 128 characters, not the email.
    #[schemars(schema_with = "crate::http::schema::password")]
    pub new_password: String,
}

impl Validate for ChangePasswordIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_password("new_password", &self.new_password, None, errors);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ForgotPasswordIn {
    #[schemars(schema_with = "crate::http::schema::email")]
    pub email: String,
}

impl Validate for ForgotPasswordIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_email("email", &self.email, errors);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResetPasswordIn {
    pub token: String,
    /// 8 to 128 characters, not the email.
    #[schemars(schema_with = "crate::http::schema::password")]
    pub new_password: String,
}

impl Validate for ResetPasswordIn {
    fn validate(&self, errors: &mut Vec<FieldError>) {
        check_password("new_password", &self.new_password, None, errors);
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
pub struct AdminUserPatch {
    pub is_admin: Option<bool>,
    pub is_active: Option<bool>,
}

impl Validate for AdminUserPatch {}

#[derive(Debug, Serialize, JsonSchema)]
pub struct LoginOut {
    pub message: String,
    pub user: UserOut,
    pub access_token: String,
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: String,
    /// Seconds until the access token expires.
    pub expires_in: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct RefreshOut {
    pub message: String,
    pub access_token: String,
    pub refresh_token: String,
    pub token_type: String,
    pub expires_in: i64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct VerifiedOut {
    pub message: String,
    pub user: UserOut,
}
