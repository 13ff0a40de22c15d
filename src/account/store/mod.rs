//! All reads and writes of accounts (users, sessions, refresh and mail tokens): one
//! interface over the storage engines, each function dispatching to `sled` or `pg`.

mod pg;
mod sled;

use crate::account::model::*;
use crate::db::{Backend, StoreError, StoreResult};

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

/// The user a mail token acts for, when it is of `kind`, unexpired, unused and issued
/// after the user's last password change.
fn mail_token_user(
    token: &MailToken,
    kind: MailTokenKind,
    user: Option<User>,
    now: i64,
) -> Option<User> {
    if token.kind != kind || token.used || token.expires_at <= now {
        return None;
    }
    user.filter(|u| token.created_at > u.tokens_valid_after)
}

/// Writes a new user; a taken email (ignoring case) is a conflict.
pub async fn create_user(b: &Backend, new: NewUser, now: i64) -> StoreResult<User> {
    match b {
        Backend::Sled(db) => sled::create_user(db, new, now).await,
        Backend::Pg(pg) => pg::create_user(pg, new, now).await,
    }
}

pub async fn user(b: &Backend, id: u64) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::user(db, id),
        Backend::Pg(pg) => pg::user(pg, id).await,
    }
}

/// The user with this email, ignoring case.
pub async fn user_by_email(b: &Backend, email: &str) -> StoreResult<Option<User>> {
    match b {
        Backend::Sled(db) => sled::user_by_email(db, email),
        Backend::Pg(pg) => pg::user_by_email(pg, email).await,
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
        Backend::Pg(pg) => pg::update_user(pg, id, now, change).await,
    }
}

/// Every user whose email or name contains `q` (ignoring case), in id order.
pub async fn list_users(b: &Backend, q: Option<&str>) -> StoreResult<Vec<User>> {
    match b {
        Backend::Sled(db) => sled::list_users(db, q),
        Backend::Pg(pg) => pg::list_users(pg, q).await,
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
        Backend::Pg(pg) => pg::start_session(pg, user_id, refresh_hash, expires_at, now).await,
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
        Backend::Pg(pg) => pg::live_session(pg, session_id, user_id).await,
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
        Backend::Pg(pg) => pg::rotate_refresh(pg, old_hash, new_hash, new_expires_at, now).await,
    }
}

pub async fn end_session(b: &Backend, session_id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::end_session(db, session_id).await,
        Backend::Pg(pg) => pg::end_session(pg, session_id).await,
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
        Backend::Pg(pg) => pg::set_password(pg, user_id, hashed_password, keep, now).await,
    }
}

/// Replaces a hash without touching sessions (a legacy hash upgraded at login).
pub async fn rehash_password(b: &Backend, user_id: u64, hashed_password: &str) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::rehash_password(db, user_id, hashed_password).await,
        Backend::Pg(pg) => pg::rehash_password(pg, user_id, hashed_password).await,
    }
}

/// Ends every session of a user (deactivation).
pub async fn end_all_sessions(b: &Backend, user_id: u64) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::end_all_sessions(db, user_id).await,
        Backend::Pg(pg) => pg::end_all_sessions(pg, user_id).await,
    }
}

pub async fn issue_mail_token(b: &Backend, hash: [u8; 32], token: MailToken) -> StoreResult<()> {
    match b {
        Backend::Sled(db) => sled::issue_mail_token(db, hash, token).await,
        Backend::Pg(pg) => pg::issue_mail_token(pg, hash, token).await,
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
        Backend::Pg(pg) => pg::peek_mail_token(pg, hash, kind, now).await,
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
        Backend::Pg(pg) => pg::redeem_mail_token(pg, hash, kind, now, apply).await,
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
        Backend::Pg(pg) => pg::admin_update(pg, user_id, is_admin, is_active, now).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_000_000;

    fn user(tokens_valid_after: i64) -> User {
        User {
            id: 7,
            email: "a@example.com".into(),
            hashed_password: String::new(),
            name: "A".into(),
            is_active: true,
            is_admin: false,
            is_verified: false,
            created_at: 0,
            updated_at: 0,
            tokens_valid_after,
        }
    }

    fn token(kind: MailTokenKind, created_at: i64, expires_at: i64, used: bool) -> MailToken {
        MailToken {
            kind,
            user_id: 7,
            created_at,
            expires_at,
            used,
        }
    }

    /// The user id a token acts for, the user's last password change being `valid_after`.
    fn acts(token: &MailToken, kind: MailTokenKind, valid_after: i64) -> Option<u64> {
        mail_token_user(token, kind, Some(user(valid_after)), NOW).map(|u| u.id)
    }

    /// Each condition refuses on its own, and each boundary is where SECURITY.md item 3
    /// puts it: a token expiring now is expired, one issued at the instant of the last
    /// password change is void.
    #[test]
    fn a_mail_token_acts_only_of_its_kind_unexpired_unused_and_newer_than_the_last_password_change()
    {
        use MailTokenKind::{Reset, Verify};
        let live = token(Reset, NOW - 10, NOW + 1, false);
        assert_eq!(acts(&live, Reset, 0), Some(7));
        assert_eq!(acts(&live, Verify, 0), None, "another kind");
        assert_eq!(
            acts(&token(Verify, NOW - 10, NOW + 1, false), Verify, 0),
            Some(7)
        );
        assert_eq!(
            acts(&token(Reset, NOW - 10, NOW + 1, true), Reset, 0),
            None,
            "used"
        );
        assert_eq!(
            acts(&token(Reset, NOW - 10, NOW, false), Reset, 0),
            None,
            "expires now"
        );
        assert_eq!(acts(&live, Reset, NOW - 11), Some(7));
        assert_eq!(acts(&live, Reset, NOW - 10), None, "issued at the change");
        assert_eq!(
            acts(&live, Reset, NOW - 9),
            None,
            "issued before the change"
        );
        assert_eq!(mail_token_user(&live, Reset, None, NOW).map(|u| u.id), None);
    }
}
