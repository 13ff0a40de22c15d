//! Accounts on PostgreSQL: `users` (the exported table, plus `tokens_valid_after`),
//! `sessions`, `refresh_tokens` and `mail_tokens`.

use deadpool_postgres::GenericClient;
use tokio_postgres::Row;

use super::{mail_token_user, NewUser, Rotation};
use crate::account::model::*;
use crate::db::pg::{duplicate, id, key, micros, ts, PgDb, Prepared};
use crate::db::{StoreError, StoreResult, Unique};

const USER: &str = "id, email, hashed_password, name, is_active, is_admin, is_verified, \
                    created_at, updated_at, tokens_valid_after";

const EMAIL_TAKEN: &[(&str, Unique)] = &[
    ("users_email_key", Unique::Email),
    ("users_email_lower_key", Unique::Email),
];

fn user_of(row: &Row) -> User {
    User {
        id: id(row.get(0)),
        email: row.get(1),
        hashed_password: row.get(2),
        name: row.get(3),
        is_active: row.get(4),
        is_admin: row.get(5),
        is_verified: row.get(6),
        created_at: micros(row.get(7)),
        updated_at: micros(row.get(8)),
        tokens_valid_after: micros(row.get(9)),
    }
}

fn session_of(row: &Row) -> Session {
    Session {
        id: id(row.get(0)),
        user_id: id(row.get(1)),
        created_at: micros(row.get(2)),
        expires_at: micros(row.get(3)),
        revoked: row.get(4),
    }
}

const SESSION: &str = "id, user_id, created_at, expires_at, revoked";

async fn find_user(c: &impl GenericClient, id: u64, lock: bool) -> StoreResult<Option<User>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .pquery_opt(
            &format!("SELECT {USER} FROM users WHERE id = $1{lock}"),
            &[&key(id)],
        )
        .await?;
    Ok(row.as_ref().map(user_of))
}

async fn load_user(c: &impl GenericClient, id: u64) -> StoreResult<User> {
    find_user(c, id, true)
        .await?
        .ok_or(StoreError::NotFound("User"))
}

async fn save_user(c: &impl GenericClient, u: &User) -> StoreResult<()> {
    c.pexec(
        "UPDATE users SET email = $2, hashed_password = $3, name = $4, is_active = $5, \
         is_admin = $6, is_verified = $7, updated_at = $8, tokens_valid_after = $9 \
         WHERE id = $1",
        &[
            &key(u.id),
            &u.email,
            &u.hashed_password,
            &u.name,
            &u.is_active,
            &u.is_admin,
            &u.is_verified,
            &ts(u.updated_at),
            &ts(u.tokens_valid_after),
        ],
    )
    .await
    .map_err(|e| duplicate(e, EMAIL_TAKEN))?;
    Ok(())
}

pub async fn create_user(pg: &PgDb, new: NewUser, now: i64) -> StoreResult<User> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let email = new.email.trim().to_string();
    let row = tx
        .pquery_one(
            "INSERT INTO users (email, hashed_password, name, is_active, is_admin, is_verified, \
             created_at, updated_at, tokens_valid_after) \
             VALUES ($1, $2, $3, true, $4, $5, $6, $6, 'epoch') RETURNING id",
            &[
                &email,
                &new.hashed_password,
                &new.name,
                &new.is_admin,
                &new.is_verified,
                &ts(now),
            ],
        )
        .await
        .map_err(|e| duplicate(e, EMAIL_TAKEN))?;
    pg.commit(tx).await?;
    Ok(User {
        id: id(row.get(0)),
        email,
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

pub async fn user(pg: &PgDb, id: u64) -> StoreResult<Option<User>> {
    find_user(&pg.client().await?, id, false).await
}

pub async fn user_by_email(pg: &PgDb, email: &str) -> StoreResult<Option<User>> {
    let c = pg.client().await?;
    let row = c
        .pquery_opt(
            &format!("SELECT {USER} FROM users WHERE lower(email) = $1"),
            &[&email.trim().to_lowercase()],
        )
        .await?;
    Ok(row.as_ref().map(user_of))
}

pub async fn update_user(
    pg: &PgDb,
    id: u64,
    now: i64,
    change: impl Fn(&mut User) -> Result<(), StoreError>,
) -> StoreResult<User> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let mut user = load_user(&tx, id).await?;
    change(&mut user)?;
    user.updated_at = now;
    save_user(&tx, &user).await?;
    pg.commit(tx).await?;
    Ok(user)
}

pub async fn list_users(pg: &PgDb, q: Option<&str>) -> StoreResult<Vec<User>> {
    let c = pg.client().await?;
    let rows = match q.map(str::to_lowercase) {
        Some(q) if !q.is_empty() => {
            c.pquery(
                &format!(
                    "SELECT {USER} FROM users \
                     WHERE strpos(lower(email), $1) > 0 OR strpos(lower(name), $1) > 0 \
                     ORDER BY id"
                ),
                &[&q],
            )
            .await?
        }
        _ => {
            c.pquery(&format!("SELECT {USER} FROM users ORDER BY id"), &[])
                .await?
        }
    };
    Ok(rows.iter().map(user_of).collect())
}

pub async fn start_session(
    pg: &PgDb,
    user_id: u64,
    refresh_hash: [u8; 32],
    expires_at: i64,
    now: i64,
) -> StoreResult<Session> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let row = tx
        .pquery_one(
            "INSERT INTO sessions (user_id, created_at, expires_at) VALUES ($1, $2, $3) \
             RETURNING id",
            &[&key(user_id), &ts(now), &ts(expires_at)],
        )
        .await?;
    let session = Session {
        id: id(row.get(0)),
        user_id,
        created_at: now,
        expires_at,
        revoked: false,
    };
    tx.pexec(
        "INSERT INTO refresh_tokens (hash, session_id, user_id, expires_at) \
         VALUES ($1, $2, $3, $4)",
        &[
            &refresh_hash.as_slice(),
            &key(session.id),
            &key(user_id),
            &ts(expires_at),
        ],
    )
    .await?;
    pg.commit(tx).await?;
    Ok(session)
}

pub async fn live_session(
    pg: &PgDb,
    session_id: u64,
    user_id: u64,
) -> StoreResult<Option<Session>> {
    let c = pg.client().await?;
    let row = c
        .pquery_opt(
            &format!(
                "SELECT {SESSION} FROM sessions WHERE id = $1 AND user_id = $2 AND NOT revoked"
            ),
            &[&key(session_id), &key(user_id)],
        )
        .await?;
    Ok(row.as_ref().map(session_of))
}

pub async fn rotate_refresh(
    pg: &PgDb,
    old_hash: [u8; 32],
    new_hash: [u8; 32],
    new_expires_at: i64,
    now: i64,
) -> StoreResult<Rotation> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let Some(old) = tx
        .pquery_opt(
            "SELECT session_id, expires_at, rotated FROM refresh_tokens WHERE hash = $1 \
             FOR UPDATE",
            &[&old_hash.as_slice()],
        )
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let (session_id, old_expires, rotated): (i64, std::time::SystemTime, bool) =
        (old.get(0), old.get(1), old.get(2));
    let Some(row) = tx
        .pquery_opt(
            &format!("SELECT {SESSION} FROM sessions WHERE id = $1 FOR UPDATE"),
            &[&session_id],
        )
        .await?
    else {
        return Ok(Rotation::Invalid);
    };
    let mut session = session_of(&row);
    if session.revoked {
        return Ok(Rotation::Invalid);
    }
    if rotated {
        tx.pexec(
            "UPDATE sessions SET revoked = true WHERE id = $1",
            &[&session_id],
        )
        .await?;
        pg.commit(tx).await?;
        return Ok(Rotation::Reused);
    }
    if micros(old_expires) <= now {
        return Ok(Rotation::Invalid);
    }
    let Some(user) = find_user(&tx, session.user_id, false).await? else {
        return Ok(Rotation::Invalid);
    };
    if !user.is_active {
        return Ok(Rotation::Invalid);
    }
    tx.pexec(
        "UPDATE refresh_tokens SET rotated = true WHERE hash = $1",
        &[&old_hash.as_slice()],
    )
    .await?;
    tx.pexec(
        "INSERT INTO refresh_tokens (hash, session_id, user_id, expires_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (hash) DO UPDATE SET session_id = excluded.session_id, \
         user_id = excluded.user_id, expires_at = excluded.expires_at, rotated = false",
        &[
            &new_hash.as_slice(),
            &session_id,
            &key(session.user_id),
            &ts(new_expires_at),
        ],
    )
    .await?;
    tx.pexec(
        "UPDATE sessions SET expires_at = $2 WHERE id = $1",
        &[&session_id, &ts(new_expires_at)],
    )
    .await?;
    pg.commit(tx).await?;
    session.expires_at = new_expires_at;
    Ok(Rotation::Rotated { session, user })
}

pub async fn end_session(pg: &PgDb, session_id: u64) -> StoreResult<()> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    tx.pexec(
        "UPDATE sessions SET revoked = true WHERE id = $1 AND NOT revoked",
        &[&key(session_id)],
    )
    .await?;
    pg.commit(tx).await
}

/// Ends the sessions of a user, all but `keep`.
async fn revoke_all(c: &impl GenericClient, user_id: u64, keep: Option<u64>) -> StoreResult<()> {
    c.pexec(
        "UPDATE sessions SET revoked = true \
         WHERE user_id = $1 AND NOT revoked AND id IS DISTINCT FROM $2",
        &[&key(user_id), &keep.map(key)],
    )
    .await?;
    Ok(())
}

pub async fn set_password(
    pg: &PgDb,
    user_id: u64,
    hashed_password: &str,
    keep: Option<u64>,
    now: i64,
) -> StoreResult<User> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let mut user = load_user(&tx, user_id).await?;
    user.hashed_password = hashed_password.to_string();
    user.tokens_valid_after = now;
    user.updated_at = now;
    save_user(&tx, &user).await?;
    revoke_all(&tx, user_id, keep).await?;
    pg.commit(tx).await?;
    Ok(user)
}

pub async fn rehash_password(pg: &PgDb, user_id: u64, hashed_password: &str) -> StoreResult<()> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let n = tx
        .pexec(
            "UPDATE users SET hashed_password = $2 WHERE id = $1",
            &[&key(user_id), &hashed_password],
        )
        .await?;
    if n == 0 {
        return Err(StoreError::NotFound("User"));
    }
    pg.commit(tx).await
}

pub async fn end_all_sessions(pg: &PgDb, user_id: u64) -> StoreResult<()> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    revoke_all(&tx, user_id, None).await?;
    pg.commit(tx).await
}

fn kind_name(kind: MailTokenKind) -> &'static str {
    match kind {
        MailTokenKind::Verify => "verify",
        MailTokenKind::Reset => "reset",
    }
}

pub async fn issue_mail_token(pg: &PgDb, hash: [u8; 32], token: MailToken) -> StoreResult<()> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    tx.pexec(
        "INSERT INTO mail_tokens (hash, kind, user_id, created_at, expires_at, used) \
         VALUES ($1, $2, $3, $4, $5, $6) \
         ON CONFLICT (hash) DO UPDATE SET kind = excluded.kind, user_id = excluded.user_id, \
         created_at = excluded.created_at, expires_at = excluded.expires_at, \
         used = excluded.used",
        &[
            &hash.as_slice(),
            &kind_name(token.kind),
            &key(token.user_id),
            &ts(token.created_at),
            &ts(token.expires_at),
            &token.used,
        ],
    )
    .await?;
    pg.commit(tx).await
}

async fn mail_token(
    c: &impl GenericClient,
    hash: &[u8; 32],
    lock: bool,
) -> StoreResult<Option<MailToken>> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let row = c
        .pquery_opt(
            &format!(
                "SELECT kind, user_id, created_at, expires_at, used FROM mail_tokens \
                 WHERE hash = $1{lock}"
            ),
            &[&hash.as_slice()],
        )
        .await?;
    Ok(row.map(|r| MailToken {
        kind: match r.get::<_, &str>(0) {
            "reset" => MailTokenKind::Reset,
            _ => MailTokenKind::Verify,
        },
        user_id: id(r.get(1)),
        created_at: micros(r.get(2)),
        expires_at: micros(r.get(3)),
        used: r.get(4),
    }))
}

pub async fn peek_mail_token(
    pg: &PgDb,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
) -> StoreResult<Option<User>> {
    let c = pg.client().await?;
    let Some(token) = mail_token(&c, &hash, false).await? else {
        return Ok(None);
    };
    let user = find_user(&c, token.user_id, false).await?;
    Ok(mail_token_user(&token, kind, user, now))
}

pub async fn redeem_mail_token(
    pg: &PgDb,
    hash: [u8; 32],
    kind: MailTokenKind,
    now: i64,
    apply: impl Fn(&mut User),
) -> StoreResult<Option<User>> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let Some(token) = mail_token(&tx, &hash, true).await? else {
        return Ok(None);
    };
    let user = find_user(&tx, token.user_id, true).await?;
    let Some(mut user) = mail_token_user(&token, kind, user, now) else {
        return Ok(None);
    };
    tx.pexec(
        "UPDATE mail_tokens SET used = true WHERE hash = $1",
        &[&hash.as_slice()],
    )
    .await?;
    apply(&mut user);
    user.updated_at = now;
    save_user(&tx, &user).await?;
    if kind == MailTokenKind::Reset {
        revoke_all(&tx, user.id, None).await?;
    }
    pg.commit(tx).await?;
    Ok(Some(user))
}

pub async fn admin_update(
    pg: &PgDb,
    user_id: u64,
    is_admin: Option<bool>,
    is_active: Option<bool>,
    now: i64,
) -> StoreResult<User> {
    let mut c = pg.client().await?;
    let tx = c.transaction().await?;
    let mut user = load_user(&tx, user_id).await?;
    if let Some(a) = is_admin {
        user.is_admin = a;
    }
    if let Some(a) = is_active {
        user.is_active = a;
    }
    user.updated_at = now;
    save_user(&tx, &user).await?;
    if is_active == Some(false) {
        revoke_all(&tx, user_id, None).await?;
    }
    pg.commit(tx).await?;
    Ok(user)
}
