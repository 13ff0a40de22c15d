//! All reads and writes of accounts (users, sessions, refresh and mail tokens): one
//! interface over the storage engines, each function dispatching to `sled` or `pg`.

mod sled;

use crate::account::model::*;
use crate::db::{pg::pending, Backend, StoreError, StoreResult};

pub struct NewUser {
    pub email: String,
    pub name: String,
    pub hashed_password: String,
    pub is_admin: bool,
    pub is_verified: bool,
}

pub enum Rotation {
    Rotated {
        session: Session,
        user: User,
    },
    /// A rotated token came back: its whole session has been ended.
    Reused,
    Invalid,
}

/// Writes a new user; a taken email (ignoring case) is a conflict.
pub async fn create_user(b: &Backend, new: NewUser, now: i64) -> StoreResult<User> {
    match b {
        Backend::Sled(db) => sled::create_user(db, new, now).await,
        Backend::Pg(_) => pending("account::create_user"),
    }
}

pub async fn user(b: &Backend, id: u64) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::user(db, id),
        Backend::Pg(_) => pending("account::user"),
    }
}

/// The user with this email, ignoring case.
pub async fn user_by_email(b: &Backend, email: &str) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::user_by_email(db, email),
        Backend::Pg(_) => pending("account::user_by_email"),
    }
}

/// Changes a user in one transaction; `change` may refuse with a store error.
pub async fn update_user(
    b: &Backend,
    id: u64,
    now: i64,
    change: impl Fn(&mut User) -> Result<(), StoreError>,
) -> StoreResult<User> {
    match b {
        Backend::Sled(db) => sled::update_user(db, id, now, change).await,
        Backend::Pg(_) => pending("account::update_user"),
    }
}

/// Every user whose email or name contains `q` (ignoring case), in id order.
pub async fn list_users(b: &Backend, q: Option<&str>) -> StoreResult<Vec<User>> {
    match b {
        Backend::Sled(db) => sled::list_users(db, q),
        Backend::Pg(_) => pending("account::list_users"),
    }
}

/// Starts a login session with its first refresh token.
pub async fn start_session(
    b: &Backend,
    user_id: u64,
    refresh_hash: [u8; 32],
    expires_at: i64,
    now: i64,
) -> StoreResult<Session> {
    match b {
        Backend::Sled(db) => sled::start_session(db, user_id, refresh_hash, expires_at, now).await,
        Backend::Pg(_) => pending("account::start_session"),
    }
}

/// The session an access token names, while it is live and belongs to `user_id`.
pub async fn live_session(
    b: &Backend,
    session_id: u64,
    user_id: u64,
) -> StoreResult<Option<Session>> {
    match b {
        Backend::Sled(db) => sled::live_session(db, session_id, user_id),
        Backend::Pg(_) => pending("account::live_session"),
    }
}

/// Swaps a refresh token for a new one within its session. Presenting a token that was
/// already rotated ends the session.
pub async fn rotate_refresh(
    b: &Backend,
    old_hash: [u8; 32],
    new_hash: [u8; 32],
    new_expires_at: i64,
    now: i64,
) -> StoreResult<Rotation> {
    match b {
        Backend::Sled(db) => {
            sled::rotate_refresh(db, old_hash, new_hash, new_expires_at, now).await
        }
        Backend::Pg(_) => pending("account::rotate_refresh"),
    }
}

pub async fn end_session(b: &Backend, session_id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::end_session(db, session_id).await,
        Backend::Pg(_) => pending("account::end_session"),
    }
}

/// Sets a new password hash, voids every verification and reset token issued so far, and
/// ends every session of the user except `keep`.
pub async fn set_password(
    b: &Backend,
    user_id: u64,
    hashed_password: &str,
    keep: Option<u64>,
    now: i64,
) -> StoreResult<User> {
    match b {
        Backend::Sled(db) => sled::set_password(db, user_id, hashed_password, keep, now).await,
        Backend::Pg(_) => pending("account::set_password"),
    }
}

/// Replaces a hash without touching sessions (a legacy hash upgraded at login).
pub async fn rehash_password(b: &Backend, user_id: u64, hashed_password: &str) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::rehash_password(db, user_id, hashed_password).await,
        Backend::Pg(_) => pending("account::rehash_password"),
    }
}

/// Ends every session of a user (deactivation).
pub async fn end_all_sessions(b: &Backend, user_id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::end_all_sessions(db, user_id).await,
        Backend::Pg(_) => pending("account::end_all_sessions"),
    }
}

pub async fn issue_mail_token(b: &Backend, hash: [u8; 32], token: MailToken) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::issue_mail_token(db, hash, token).await,
        Backend::Pg(_) => pending("account::issue_mail_token"),
    }
}

/// The user a verification or reset token would act for, without using it.
pub async fn peek_mail_token(
    b: &Backend,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::peek_mail_token(db, hash, kind, now),
        Backend::Pg(_) => pending("account::peek_mail_token"),
    }
}

/// Uses a verification or reset token once: it must be of `kind`, unexpired, unused and
/// issued after the user's last password change. `apply` changes the user in the same
/// transaction, which for a reset also ends every session of the user; `None` means the
/// token is not valid.
pub async fn redeem_mail_token(
    b: &Backend,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
    apply: impl Fn(&mut User),
) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::redeem_mail_token(db, hash, kind, now, apply).await,
        Backend::Pg(_) => pending("account::redeem_mail_token"),
    }
}

/// An admin's change of another user's flags; deactivation ends all their sessions.
pub async fn admin_update(
    b: &Backend,
    user_id: u64,
    is_admin: Option<bool>,
    is_active: Option<bool>,
    now: i64,
) -> StoreResult<User> {
    match b {
        Backend::Sled(db) => sled::admin_update(db, user_id, is_admin, is_active, now).await,
        Backend::Pg(_) => pending("account::admin_update"),
    }
}
