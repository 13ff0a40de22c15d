//! Accounts on sled: users with their email index, sessions, refresh and mail tokens.

use super::{mail_token_user, NewUser, Rotation};
use crate::account::model::*;
use crate::db::{abort, Db, KeyOrder, StoreError, StoreResult, Tx, TxResult};

pub async fn create_user(db: &Db, new: NewUser, now: i64) -> StoreResult<User> {
    let user = new_user_record(db, new, now)?;
    db.write(|tx| insert_user(tx, &user)).await?;
    Ok(user)
}

fn new_user_record(db: &Db, new: NewUser, now: i64) -> StoreResult<User> {
    Ok(User {
        id: db.next_id(USERS)?,
        email: new.email.trim().to_string(),
        hashed_password: new.hashed_password,
        name: new.name,
        is_active: true,
        is_admin: new.is_admin,
        is_verified: new.is_verified,
        created_at: now,
        updated_at: now,
        tokens_valid_after: 0,
    })
}

/// Writes a new user with its email index; a taken email (ignoring case) is a conflict.
pub fn insert_user(tx: &Tx<'_>, user: &User) -> TxResult<()> {
    tx.save(user)
}

pub fn user(db: &Db, id: u64) -> StoreResult<Option<User>> {
    db.get(id)
}

pub fn user_by_email(db: &Db, email: &str) -> StoreResult<Option<User>> {
    match db.unique_get(USERS_BY_EMAIL, &email_key(email))? {
        Some(id) => db.get(id),
        None => Ok(None),
    }
}

fn load_user(tx: &Tx<'_>, id: u64) -> TxResult<User> {
    match tx.get::<User>(id)? {
        Some(u) => Ok(u),
        None => abort(StoreError::NotFound("User")),
    }
}

/// Changes a user in one transaction; `change` may refuse with a store error.
pub async fn update_user(
    db: &Db,
    id: u64,
    now: i64,
    change: impl Fn(&mut User) -> Result<(), StoreError>,
) -> StoreResult<User> {
    db.write(|tx| update_user_tx(tx, id, now, &change)).await
}

fn update_user_tx(
    tx: &Tx<'_>,
    id: u64,
    now: i64,
    change: &impl Fn(&mut User) -> Result<(), StoreError>,
) -> TxResult<User> {
    let mut user = load_user(tx, id)?;
    change(&mut user).or_else(abort)?;
    user.updated_at = now;
    tx.save(&user)?;
    Ok(user)
}

/// Every user whose email or name contains `q` (ignoring case), in id order.
pub fn list_users(db: &Db, q: Option<&str>) -> StoreResult<Vec<User>> {
    let users: Vec<User> = db.scan(KeyOrder::Ascending)?;
    Ok(match q.map(str::to_lowercase) {
        Some(q) if !q.is_empty() => users
            .into_iter()
            .filter(|u| u.email.to_lowercase().contains(&q) || u.name.to_lowercase().contains(&q))
            .collect(),
        _ => users,
    })
}

/// Starts a login session with its first refresh token.
pub async fn start_session(
    db: &Db,
    user_id: u64,
    refresh_hash: [u8; 32],
    expires_at: i64,
    now: i64,
) -> StoreResult<Session> {
    let session = Session {
        id: db.next_id(SESSIONS)?,
        user_id,
        created_at: now,
        expires_at,
        revoked: false,
    };
    let token = RefreshToken {
        session_id: session.id,
        user_id,
        expires_at,
        rotated: false,
    };
    db.write(|tx| {
        tx.save(&session)?;
        put_refresh(tx, &refresh_hash, &token)
    })
    .await?;
    Ok(session)
}

fn put_refresh(tx: &Tx<'_>, hash: &[u8; 32], token: &RefreshToken) -> TxResult<()> {
    let bytes = crate::db::encode(token).or_else(abort)?;
    tx.raw_insert(REFRESH_TOKENS, hash, &bytes)
}

fn get_refresh(tx: &Tx<'_>, hash: &[u8; 32]) -> TxResult<Option<RefreshToken>> {
    match tx.raw_get(REFRESH_TOKENS, hash)? {
        Some(bytes) => crate::db::decode(&bytes).map(Some).or_else(abort),
        None => Ok(None),
    }
}

/// The session an access token names, while it is live and belongs to `user_id`.
pub fn live_session(db: &Db, session_id: u64, user_id: u64) -> StoreResult<Option<Session>> {
    Ok(db
        .get::<Session>(session_id)?
        .filter(|s| !s.revoked && s.user_id == user_id))
}

/// Swaps a refresh token for a new one within its session. Presenting a token that was
/// already rotated ends the session.
pub async fn rotate_refresh(
    db: &Db,
    old_hash: [u8; 32],
    new_hash: [u8; 32],
    new_expires_at: i64,
    now: i64,
) -> StoreResult<Rotation> {
    db.write(|tx| {
        let Some(mut old) = get_refresh(tx, &old_hash)? else {
            return Ok(Rotation::Invalid);
        };
        let Some(mut session) = tx.get::<Session>(old.session_id)? else {
            return Ok(Rotation::Invalid);
        };
        if session.revoked {
            return Ok(Rotation::Invalid);
        }
        if old.rotated {
            session.revoked = true;
            tx.save(&session)?;
            return Ok(Rotation::Reused);
        }
        if old.expires_at <= now {
            return Ok(Rotation::Invalid);
        }
        let Some(user) = tx.get::<User>(session.user_id)? else {
            return Ok(Rotation::Invalid);
        };
        if !user.is_active {
            return Ok(Rotation::Invalid);
        }
        old.rotated = true;
        put_refresh(tx, &old_hash, &old)?;
        put_refresh(
            tx,
            &new_hash,
            &RefreshToken {
                session_id: session.id,
                user_id: session.user_id,
                expires_at: new_expires_at,
                rotated: false,
            },
        )?;
        session.expires_at = new_expires_at;
        tx.save(&session)?;
        Ok(Rotation::Rotated { session, user })
    })
    .await
}

fn revoke(tx: &Tx<'_>, session_id: u64) -> TxResult<()> {
    if let Some(mut s) = tx.get::<Session>(session_id)? {
        if !s.revoked {
            s.revoked = true;
            tx.save(&s)?;
        }
    }
    Ok(())
}

pub async fn end_session(db: &Db, session_id: u64) -> StoreResult<()> {
    db.write(|tx| revoke(tx, session_id)).await
}

/// Sets a new password hash, voids every verification and reset token issued so far, and
/// ends every session of the user except `keep`.
pub async fn set_password(
    db: &Db,
    user_id: u64,
    hashed_password: &str,
    keep: Option<u64>,
    now: i64,
) -> StoreResult<User> {
    let sessions = db.children(SESSIONS_BY_USER, user_id, KeyOrder::Ascending)?;
    db.write(|tx| set_password_tx(tx, user_id, hashed_password, &sessions, keep, now))
        .await
}

fn set_password_tx(
    tx: &Tx<'_>,
    user_id: u64,
    hashed_password: &str,
    sessions: &[u64],
    keep: Option<u64>,
    now: i64,
) -> TxResult<User> {
    let mut user = load_user(tx, user_id)?;
    user.hashed_password = hashed_password.to_string();
    user.tokens_valid_after = now;
    user.updated_at = now;
    tx.save(&user)?;
    for &sid in sessions.iter().filter(|&&s| Some(s) != keep) {
        revoke(tx, sid)?;
    }
    Ok(user)
}

/// Replaces a hash without touching sessions (a legacy hash upgraded at login).
pub async fn rehash_password(db: &Db, user_id: u64, hashed_password: &str) -> StoreResult<()> {
    db.write(|tx| {
        let mut user = load_user(tx, user_id)?;
        user.hashed_password = hashed_password.to_string();
        tx.save(&user)
    })
    .await
}

/// Ends every session of a user (deactivation).
pub async fn end_all_sessions(db: &Db, user_id: u64) -> StoreResult<()> {
    let sessions = db.children(SESSIONS_BY_USER, user_id, KeyOrder::Ascending)?;
    db.write(|tx| {
        for &sid in &sessions {
            revoke(tx, sid)?;
        }
        Ok(())
    })
    .await
}

pub async fn issue_mail_token(db: &Db, hash: [u8; 32], token: MailToken) -> StoreResult<()> {
    let bytes = crate::db::encode(&token)?;
    db.write(|tx| tx.raw_insert(MAIL_TOKENS, &hash, &bytes))
        .await
}

/// The user a verification or reset token would act for, without using it.
pub fn peek_mail_token(
    db: &Db,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
) -> StoreResult<Option<User>> {
    let Some(bytes) = db.raw_get(MAIL_TOKENS, &hash)? else {
        return Ok(None);
    };
    let token: MailToken = crate::db::decode(&bytes)?;
    Ok(mail_token_user(&token, kind, db.get(token.user_id)?, now))
}

/// Uses a verification or reset token once: it must be of `kind`, unexpired, unused and
/// issued after the user's last password change. `apply` changes the user in the same
/// transaction, which also ends the sessions listed in `end_sessions`; `None` means the
/// token is not valid.
pub async fn redeem_mail_token(
    db: &Db,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
    apply: impl Fn(&mut User),
) -> StoreResult<Option<User>> {
    let end_sessions = match (kind, peek_mail_token(db, hash, kind, now)?) {
        (MailTokenKind::Reset, Some(user)) => {
            db.children(SESSIONS_BY_USER, user.id, KeyOrder::Ascending)?
        }
        _ => Vec::new(),
    };
    db.write(|tx| {
        let Some(bytes) = tx.raw_get(MAIL_TOKENS, &hash)? else {
            return Ok(None);
        };
        let mut token: MailToken = crate::db::decode(&bytes).or_else(abort)?;
        let Some(mut user) = mail_token_user(&token, kind, tx.get::<User>(token.user_id)?, now)
        else {
            return Ok(None);
        };
        token.used = true;
        let bytes = crate::db::encode(&token).or_else(abort)?;
        tx.raw_insert(MAIL_TOKENS, &hash, &bytes)?;
        apply(&mut user);
        user.updated_at = now;
        tx.save(&user)?;
        for &sid in &end_sessions {
            revoke(tx, sid)?;
        }
        Ok(Some(user))
    })
    .await
}

/// An admin's change of another user's flags; deactivation ends all their sessions.
pub async fn admin_update(
    db: &Db,
    user_id: u64,
    is_admin: Option<bool>,
    is_active: Option<bool>,
    now: i64,
) -> StoreResult<User> {
    let sessions = if is_active == Some(false) {
        db.children(SESSIONS_BY_USER, user_id, KeyOrder::Ascending)?
    } else {
        Vec::new()
    };
    db.write(|tx| {
        let mut user = load_user(tx, user_id)?;
        if let Some(a) = is_admin {
            user.is_admin = a;
        }
        if let Some(a) = is_active {
            user.is_active = a;
        }
        user.updated_at = now;
        tx.save(&user)?;
        for &sid in &sessions {
            revoke(tx, sid)?;
        }
        Ok(user)
    })
    .await
}
