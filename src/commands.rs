//! The admin subcommands on an open shop: each does one thing and returns what to print,
//! or a one-line reason. `control` runs them for the CLI, in the CLI's own process or in
//! the server that holds the data folder; a `Console` shows their progress and asks for
//! what they need (a password) wherever the CLI's terminal is.

use crate::account::model::{check_email, check_password, Session, User};
use crate::account::store::{self, NewUser};
use crate::config::Config;
use crate::core::password::hash_now;
use crate::core::time::{now_micros, rfc3339};
use crate::db::index::{self, scan_entries, TreeEntries};
use crate::db::{Backend, Db, StoreError, StoreResult};
use crate::mail::model::Delivery;
use crate::mail::sender::Mailer;
use crate::order::model::Order;
use crate::payment::model::Payment;
use crate::review::model::Review;
use crate::shipping::model::Address;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// Where a long job shows its progress: bars on this terminal, on the terminal of the
/// CLI that asked a server for the job, or nowhere (the server's own jobs).
pub trait Progress: Sync {
    fn bar(&self, len: u64, what: &str) -> ProgressBar;
}

/// Progress, and the questions a command may have to ask the person who runs it.
pub trait Console: Progress {
    /// A new password, typed twice.
    fn new_password(&self) -> Result<String, String>;
}

/// Bars on standard error, questions on the terminal.
pub struct Terminal;

impl Progress for Terminal {
    fn bar(&self, len: u64, what: &str) -> ProgressBar {
        progress_bar(len, what)
    }
}

impl Console for Terminal {
    fn new_password(&self) -> Result<String, String> {
        if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
            return Err(
                "no password given: use --password, SHOPBOX_ADMIN_PASSWORD or a terminal".into(),
            );
        }
        let first = rpassword::prompt_password("Password: ").map_err(|e| e.to_string())?;
        let second = rpassword::prompt_password("Again: ").map_err(|e| e.to_string())?;
        if first != second {
            return Err("the passwords do not match".into());
        }
        Ok(first)
    }
}

/// No bars.
pub struct Silent;

impl Progress for Silent {
    fn bar(&self, len: u64, _: &str) -> ProgressBar {
        let bar = ProgressBar::hidden();
        bar.set_length(len);
        bar
    }
}

/// The progress bar of every long CLI job.
pub fn progress_bar(len: u64, what: &str) -> ProgressBar {
    // Styled while hidden, so that nothing is drawn before a `MultiProgress` takes it.
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::hidden());
    bar.set_style(
        ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, {eta} left)")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_message(what.to_string());
    bar.set_draw_target(ProgressDrawTarget::stderr());
    bar
}

/// Leaves a finished bar on its own line, so the next bar or the summary starts below it.
pub fn finish_bar(bar: &ProgressBar, message: Option<&str>) {
    match message {
        Some(m) => bar.finish_with_message(m.to_string()),
        None => bar.finish(),
    }
    if !bar.is_hidden() {
        let _ = std::io::Write::write_all(&mut std::io::stderr(), b"\n");
    }
}

/// Runs a store call to its end: on the runtime the caller entered (a PostgreSQL pool's
/// connections live on the one it was opened on, see `control`), else on one of its own
/// (sled needs none).
fn block<T>(f: impl std::future::Future<Output = StoreResult<T>>) -> StoreResult<T> {
    if let Ok(entered) = tokio::runtime::Handle::try_current() {
        return entered.block_on(f);
    }
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| StoreError::Storage(format!("cannot start a runtime: {e}")))?
        .block_on(f)
}

fn find(db: &Backend, email: &str) -> Result<User, String> {
    block(store::user_by_email(db, email))
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("no user with the email {email}"))
}

fn validate_password(password: &str, email: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    check_password("password", password, Some(email), &mut errors);
    match errors.first() {
        Some(e) => Err(e.msg.clone()),
        None => Ok(()),
    }
}

/// Creates an admin, or promotes an existing user, who keeps their password unless
/// `password` is given. A new admin without `password` gets one from the console.
pub fn admin_create(
    db: &Backend,
    email: &str,
    name: Option<&str>,
    password: Option<String>,
    console: &dyn Console,
) -> Result<String, String> {
    let mut errors = Vec::new();
    check_email("email", email, &mut errors);
    if !errors.is_empty() {
        return Err(format!("{email} is not a valid email address"));
    }
    let db = db.clone();
    let now = now_micros();
    if let Some(user) = block(store::user_by_email(&db, email)).map_err(|e| e.to_string())? {
        let replaced = match password {
            Some(password) => {
                validate_password(&password, email)?;
                let hash = hash_now(&password).map_err(|e| e.to_string())?;
                block(store::set_password(&db, user.id, &hash, None, now))
                    .map_err(|e| e.to_string())?;
                true
            }
            None => false,
        };
        block(store::update_user(&db, user.id, now, |u| {
            u.is_admin = true;
            u.is_active = true;
            Ok(())
        }))
        .map_err(|e| e.to_string())?;
        let password = if replaced {
            "their password was replaced by the one given and all their sessions have ended"
        } else {
            "their password is unchanged"
        };
        return Ok(format!(
            "{} (id {}) existed already and is now an admin; {password}",
            user.email, user.id
        ));
    }
    let password = match password {
        Some(password) => password,
        None => console.new_password()?,
    };
    validate_password(&password, email)?;
    let user = block(store::create_user(
        &db,
        NewUser {
            email: email.to_string(),
            name: name
                .map(str::to_string)
                .unwrap_or_else(|| email.split('@').next().unwrap_or_default().to_string()),
            hashed_password: hash_now(&password).map_err(|e| e.to_string())?,
            is_admin: true,
            is_verified: true,
        },
        now,
    ))
    .map_err(|e| e.to_string())?;
    Ok(format!("created admin {} (id {})", user.email, user.id))
}

/// What an admin command makes of a user.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Admin,
    Customer,
}

pub fn set_role(db: &Backend, email: &str, role: Role) -> Result<String, String> {
    let admin = role == Role::Admin;
    let user = find(db, email)?;
    block(store::update_user(db, user.id, now_micros(), |u| {
        u.is_admin = admin;
        Ok(())
    }))
    .map_err(|e| e.to_string())?;
    Ok(if admin {
        format!("{} is now an admin", user.email)
    } else {
        format!("{} is no longer an admin", user.email)
    })
}

/// Sets a new password and ends every session of the user.
pub fn reset_password(
    db: &Backend,
    email: &str,
    password: Option<String>,
    console: &dyn Console,
) -> Result<String, String> {
    let user = find(db, email)?;
    let password = match password {
        Some(password) => password,
        None => console.new_password()?,
    };
    validate_password(&password, &user.email)?;
    let hash = hash_now(&password).map_err(|e| e.to_string())?;
    block(store::set_password(db, user.id, &hash, None, now_micros()))
        .map_err(|e| e.to_string())?;
    Ok(format!(
        "password of {} changed; all their sessions have ended",
        user.email
    ))
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

pub fn users_list(db: &Backend) -> Result<String, String> {
    let users = block(store::list_users(db, None)).map_err(|e| e.to_string())?;
    let email_width = users
        .iter()
        .map(|u| u.email.len())
        .max()
        .unwrap_or(5)
        .max(5);
    let name_width = users
        .iter()
        .map(|u| u.name.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!(
        "{:>6}  {:<email_width$}  {:<name_width$}  admin  active  verified  created\n",
        "id", "email", "name"
    );
    for u in &users {
        out.push_str(&format!(
            "{:>6}  {:<email_width$}  {:<name_width$}  {:<5}  {:<6}  {:<8}  {}\n",
            u.id,
            u.email,
            u.name,
            yes_no(u.is_admin),
            yes_no(u.is_active),
            yes_no(u.is_verified),
            rfc3339(u.created_at)
        ));
    }
    out.push_str(&format!("{} user(s)", users.len()));
    Ok(out)
}

/// The latest mails with their links and where their delivery stands.
pub fn outbox_report(
    db: &Backend,
    config: &Config,
    to: Option<&str>,
    limit: usize,
) -> Result<String, String> {
    let mails = block(crate::mail::store::latest(db, to, limit)).map_err(|e| e.to_string())?;
    if mails.is_empty() {
        return Ok("the outbox is empty".into());
    }
    let mut out = String::new();
    for m in &mails {
        out.push_str(&format!(
            "{}  to {}  {}\n  {}\n",
            rfc3339(m.created_at),
            m.to,
            delivery_state(config, &m.delivery),
            m.subject
        ));
        if let Some(link) = &m.link {
            out.push_str(&format!("  {link}\n"));
        }
    }
    Ok(out.trim_end().to_string())
}

fn delivery_state(config: &Config, delivery: &Delivery) -> String {
    match delivery {
        Delivery::Queued { attempts: 0, .. } if config.smtp.host.is_none() => {
            "queued (no SMTP server configured)".into()
        }
        Delivery::Queued { attempts: 0, .. } => "queued".into(),
        Delivery::Queued {
            attempts,
            next_attempt,
            last_error,
        } => format!(
            "queued, {attempts} attempt(s) failed ({}), next at {}",
            last_error.as_deref().unwrap_or("?"),
            rfc3339(*next_attempt)
        ),
        Delivery::Sent { at, answer } => format!("sent {}: {answer}", rfc3339(*at)),
        Delivery::Failed {
            attempts,
            at,
            error,
        } => format!(
            "failed {} after {attempts} attempt(s): {error}",
            rfc3339(*at)
        ),
    }
}

/// Sends one message through the configured SMTP server; answers the server's reply.
pub async fn mail_test(config: &Config, to: &str) -> Result<String, String> {
    let mut errors = Vec::new();
    check_email("email", to, &mut errors);
    if !errors.is_empty() {
        return Err(format!("{to} is not a valid email address"));
    }
    let mailer = Mailer::new(&config.smtp)?;
    match mailer.send_test(to, &config.shop_name).await {
        Ok(answer) => Ok(format!(
            "sent to {to} through {}; the server answered: {answer}",
            mailer.server
        )),
        Err(e) => Err(format!("not sent through {}: {}", mailer.server, e.text)),
    }
}

/// What `check` does about the problems it finds.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Check {
    Report,
    Repair,
}

/// What every index of the shop should hold, from the records, as each record type
/// describes its entries.
fn expected_indexes(db: &Db) -> StoreResult<TreeEntries> {
    let mut out = crate::product::store::expected_entries(db)?;
    out.extend(scan_entries::<User>(db)?);
    out.extend(scan_entries::<Session>(db)?);
    out.extend(scan_entries::<Review>(db)?);
    out.extend(scan_entries::<Address>(db)?);
    out.extend(scan_entries::<Order>(db)?);
    out.extend(scan_entries::<Payment>(db)?);
    Ok(out)
}

/// Verifies every index against its records; with `Check::Repair`, rebuilds them. Writes
/// wait meanwhile (a server's customers too), so the records and indexes it compares are
/// of one instant and no write slips between a repair's reading and its rebuild.
pub fn check_db(db: &Db, mode: Check) -> Result<String, String> {
    db.paused(|| check_paused(db, mode))
}

fn check_paused(db: &Db, mode: Check) -> Result<String, String> {
    let failed = |e: StoreError| e.to_string();
    let problems = index::problems(db, &expected_indexes(db).map_err(failed)?).map_err(failed)?;
    if problems.is_empty() {
        return Ok("every index matches its records".into());
    }
    let report = problems.join("\n");
    if mode == Check::Report {
        return Err(format!(
            "{} index problem(s) found; run `shopbox check --repair`:\n{report}",
            problems.len()
        ));
    }
    index::rebuild(db, expected_indexes(db).map_err(failed)?).map_err(failed)?;
    let left = index::problems(db, &expected_indexes(db).map_err(failed)?).map_err(failed)?;
    if left.is_empty() {
        Ok(format!("repaired:\n{report}"))
    } else {
        Err(format!("repair left problems:\n{}", left.join("\n")))
    }
}
