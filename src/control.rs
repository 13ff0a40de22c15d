//! The admin commands (`admin`, `users list`, `outbox`, `check`, `backup`, `export-pg`,
//! `mail test`, `seed`), carried out by one runner, `Request::run`, whether the CLI opened
//! the data folder itself or a running server holds it and does the work for the CLI.
//!
//! A server listens on `control.sock` in its data folder. The socket is the owner's only
//! (0600, in a 0700 folder): whoever can connect may administer the shop, as whoever can
//! open the folder may. The CLI connects; when nothing answers (no server, or a socket
//! file a killed server left behind) it opens the folder itself. The conversation, one
//! JSON object a line:
//!
//! - the CLI sends `{"request": {"command": "users-list"}, "progress": true}`;
//! - the server answers `{"bar": {...}}` for each change of a progress bar (only when
//!   `progress` was asked for), `{"ask": "password"}` when the command needs a password
//!   (the CLI answers `{"answer": "..."}` or `{"error": "..."}`), and last
//!   `{"done": {"ok": "what to print"}}` or `{"done": {"err": "the one-line reason"}}`.
//!
//! The CLI prints the outcome exactly as it prints one it computed itself, so output and
//! exit codes are the same both ways.

use indicatif::ProgressBar;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;

use crate::commands::{self, finish_bar, Check, Console, Progress, Role};
use crate::config::Config;
use crate::db::{Backend, Db};

/// The socket's name in the data folder.
pub const SOCKET: &str = "control.sock";

/// How often a server sends the progress of a command's bars.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// How long a CLI waits for a server that holds the folder but does not answer yet (it is
/// starting: it opens the folder, then listens).
const STARTING_SERVER: Duration = Duration::from_secs(5);

/// One admin command with its arguments, as the CLI parsed them. Passwords are resolved
/// on the CLI's side (flag, then `SHOPBOX_ADMIN_PASSWORD`); a missing one is asked for
/// through the `Console`.
#[derive(Serialize, Deserialize, Debug, Clone)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    AdminCreate {
        email: String,
        name: Option<String>,
        password: Option<String>,
    },
    AdminPromote {
        email: String,
    },
    AdminDemote {
        email: String,
    },
    AdminResetPassword {
        email: String,
        password: Option<String>,
    },
    UsersList,
    Outbox {
        to: Option<String>,
        limit: usize,
    },
    Check {
        repair: bool,
    },
    /// `file` is absolute: the server's working folder is not the CLI's.
    Backup {
        file: PathBuf,
    },
    ExportPg {
        url: String,
        drop_existing: bool,
    },
    MailTest {
        email: String,
    },
    Seed {
        products: u64,
        add: bool,
    },
}

/// The shop a command runs on: the configuration in force and the open database (the
/// data folder's, or the PostgreSQL database the shop is served from).
pub struct Shop {
    pub config: Config,
    db: Option<Backend>,
    /// A server holds it: customers write while the command runs.
    live: bool,
}

impl Shop {
    /// The shop of a running server.
    pub fn live(config: Config, db: Db) -> Shop {
        Shop {
            config,
            db: Some(Backend::from(db)),
            live: true,
        }
    }

    fn backend(&self) -> Result<&Backend, String> {
        self.db
            .as_ref()
            .ok_or_else(|| "this command needs the data folder".to_string())
    }

    /// The data folder's database, for the commands that act on sled itself.
    fn db(&self) -> Result<&Db, String> {
        self.backend()?
            .sled()
            .ok_or_else(|| "this command needs the data folder".to_string())
    }
}

impl Request {
    /// The command as the server's log names it (never with a password).
    pub fn name(&self) -> &'static str {
        match self {
            Request::AdminCreate { .. } => "admin create",
            Request::AdminPromote { .. } => "admin promote",
            Request::AdminDemote { .. } => "admin demote",
            Request::AdminResetPassword { .. } => "admin reset-password",
            Request::UsersList => "users list",
            Request::Outbox { .. } => "outbox",
            Request::Check { .. } => "check",
            Request::Backup { .. } => "backup",
            Request::ExportPg { .. } => "export-pg",
            Request::MailTest { .. } => "mail test",
            Request::Seed { .. } => "seed",
        }
    }

    /// `mail test` needs only the configuration.
    pub fn uses_data(&self) -> bool {
        !matches!(self, Request::MailTest { .. })
    }

    /// Why the command does not run on a shop served from PostgreSQL, and what does
    /// instead; `None` for those that run there (`run_cli` sends `export-pg`, which reads
    /// the data folder, and `mail test`, which reads none, the usual way).
    pub fn refused_on_pg(&self, config: &Config) -> Option<String> {
        let media = config.data_dir.join("media");
        match self {
            Request::AdminCreate { .. }
            | Request::AdminPromote { .. }
            | Request::AdminDemote { .. }
            | Request::AdminResetPassword { .. }
            | Request::UsersList
            | Request::Outbox { .. }
            | Request::ExportPg { .. }
            | Request::MailTest { .. } => None,
            Request::Check { .. } => Some(
                "`check` verifies the indexes of a data folder's database; PostgreSQL keeps \
                 a served shop's indexes itself (its `amcheck` extension verifies them, \
                 REINDEX rebuilds them)"
                    .into(),
            ),
            Request::Backup { .. } => Some(format!(
                "`backup` archives a data folder; back up a shop served from PostgreSQL with \
                 PostgreSQL's own tools (pg_dump, or base backups) and copy the product \
                 images in {} beside it",
                media.display()
            )),
            Request::Seed { .. } => Some(
                "`seed` fills a data folder only: seed a new one (without database.url) and \
                 copy it into an empty PostgreSQL database with export-pg"
                    .into(),
            ),
        }
    }

    /// Carries the command out on `shop`; answers what to print, or the reason it failed.
    pub fn run(&self, shop: &Shop, console: &dyn Console) -> Result<String, String> {
        let backend = || shop.backend().cloned();
        match self {
            Request::AdminCreate {
                email,
                name,
                password,
            } => commands::admin_create(
                &backend()?,
                email,
                name.as_deref(),
                password.clone(),
                console,
            ),
            Request::AdminPromote { email } => commands::set_role(&backend()?, email, Role::Admin),
            Request::AdminDemote { email } => {
                commands::set_role(&backend()?, email, Role::Customer)
            }
            Request::AdminResetPassword { email, password } => {
                commands::reset_password(&backend()?, email, password.clone(), console)
            }
            Request::UsersList => commands::users_list(&backend()?),
            Request::Outbox { to, limit } => {
                commands::outbox_report(&backend()?, &shop.config, to.as_deref(), *limit)
            }
            Request::Check { repair: false } if shop.live => {
                // Compared at one instant without holding customers' writes back.
                crate::backup::with_copy(
                    shop.db()?,
                    &shop.config.data_dir,
                    shop.config.cache_capacity_mb,
                    |copy| commands::check_db(copy, Check::Report),
                )
            }
            Request::Check { repair } => {
                // A repair holds writes back until it is done.
                let mode = if *repair {
                    Check::Repair
                } else {
                    Check::Report
                };
                commands::check_db(shop.db()?, mode)
            }
            Request::Backup { file } => {
                crate::backup::backup(shop.db()?, &shop.config.data_dir, file, console)
                    .map(|r| r.to_string())
            }
            Request::ExportPg { url, drop_existing } => {
                let ca_file = shop.config.database.ca_file.as_deref();
                let export = |db: &Db| crate::pg::export(db, url, ca_file, *drop_existing, console);
                if shop.live {
                    // Customers write meanwhile: export the shop as it was at one instant.
                    crate::backup::with_copy(
                        shop.db()?,
                        &shop.config.data_dir,
                        shop.config.cache_capacity_mb,
                        export,
                    )
                } else {
                    export(shop.db()?)
                }
            }
            Request::MailTest { email } => {
                rocket::execute(commands::mail_test(&shop.config, email))
            }
            Request::Seed { products, add } => crate::seed::seed_demo(
                shop.db()?,
                &shop.config.data_dir.join("media"),
                *products,
                *add,
                console,
            ),
        }
    }
}

pub fn socket_path(data_dir: &Path) -> PathBuf {
    data_dir.join(SOCKET)
}

/// A connection to the server that holds `data_dir`, if one answers.
fn connect(data_dir: &Path) -> Option<UnixStream> {
    UnixStream::connect(socket_path(data_dir)).ok()
}

/// Whether a server holds `data_dir` and answers on its socket.
pub fn server_running(data_dir: &Path) -> bool {
    connect(data_dir).is_some()
}

/// Runs `request` for the CLI: on the PostgreSQL database of `database.url` when the shop
/// is served from one, else through the server that holds the data folder, or, with no
/// server, on the folder itself. Either way with `console` for progress and questions.
pub fn run_cli(
    request: &Request,
    config: &Config,
    console: &dyn Console,
) -> Result<String, String> {
    if let Some(url) = &config.database.url {
        // `export-pg` reads the data folder; `mail test` reads nothing.
        if request.uses_data() && !matches!(request, Request::ExportPg { .. }) {
            return run_on_pg(request, config, url, console);
        }
    }
    if let Some(server) = connect(&config.data_dir) {
        return ask_server(server, request, console);
    }
    let db = if request.uses_data() {
        match crate::open_data(config) {
            Ok(db) => Some(db),
            Err(e) if e.0.contains("in use by another process") => {
                // A server that is starting has the folder open but may not listen yet.
                let deadline = std::time::Instant::now() + STARTING_SERVER;
                while std::time::Instant::now() < deadline {
                    std::thread::sleep(Duration::from_millis(50));
                    if let Some(server) = connect(&config.data_dir) {
                        return ask_server(server, request, console);
                    }
                }
                return Err(e.0);
            }
            Err(e) => return Err(e.0),
        }
    } else {
        None
    };
    let shop = Shop {
        config: config.clone(),
        db: db.map(Backend::from),
        live: false,
    };
    request.run(&shop, console)
}

/// Runs `request` on the PostgreSQL database at `url`, in this process: the servers on
/// it need not be asked, since every instance and this command write through the same
/// stores, each write committed (and announced to the instances) on its own. The schema
/// is checked and migrated as a starting server does it, after making sure that it is a
/// shop's (or empty: the first admin may come before the first start).
fn run_on_pg(
    request: &Request,
    config: &Config,
    url: &str,
    console: &dyn Console,
) -> Result<String, String> {
    if let Some(why) = request.refused_on_pg(config) {
        return Err(why);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let pg = runtime.block_on(async {
        let pg = crate::connect_pg(config, url).await.map_err(|e| e.0)?;
        crate::pg::serving::check_is_shop(&pg).await?;
        crate::prepare_pg(&pg).await.map_err(|e| e.0)?;
        Ok::<_, String>(pg)
    })?;
    let shop = Shop {
        config: config.clone(),
        db: Some(Backend::Pg(pg)),
        live: true,
    };
    // The pool's connections run on this runtime: the commands' store calls go to it.
    let entered = runtime.enter();
    let outcome = request.run(&shop, console);
    drop(shop);
    drop(entered);
    // The notification listener would otherwise keep the runtime's end waiting.
    runtime.shutdown_background();
    outcome
}

/// What the CLI sends first.
#[derive(Serialize, Deserialize)]
pub struct Hello {
    pub request: Request,
    /// Whether to send the progress of the command's bars.
    #[serde(default)]
    pub progress: bool,
}

/// One progress bar's state.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq)]
pub struct BarState {
    pub id: u64,
    pub what: String,
    pub len: u64,
    pub pos: u64,
    pub done: bool,
    /// The message it finished with, if any.
    pub message: Option<String>,
}

/// What a server sends while it runs a command.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Event {
    Bar(BarState),
    Ask(String),
    Done(Outcome),
}

#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok(String),
    Err(String),
}

/// The CLI's answer to an `ask`.
#[derive(Serialize, Deserialize, Debug)]
#[serde(rename_all = "snake_case")]
pub enum Answer {
    Answer(String),
    Error(String),
}

fn send_line(to: &mut impl Write, what: &impl Serialize) -> std::io::Result<()> {
    let mut line = serde_json::to_vec(what).map_err(std::io::Error::other)?;
    line.push(b'\n');
    to.write_all(&line)?;
    to.flush()
}

/// The CLI's side: sends the request, draws the server's progress with the same bars the
/// CLI draws for itself, answers its questions, and answers its outcome.
fn ask_server(
    server: UnixStream,
    request: &Request,
    console: &dyn Console,
) -> Result<String, String> {
    let lost = |e: std::io::Error| format!("lost the connection to the server: {e}");
    let mut writer = server.try_clone().map_err(lost)?;
    let hello = Hello {
        request: request.clone(),
        progress: std::io::IsTerminal::is_terminal(&std::io::stderr()),
    };
    send_line(&mut writer, &hello).map_err(lost)?;
    let mut bars: HashMap<u64, ProgressBar> = HashMap::new();
    for line in BufReader::new(server).lines() {
        let line = line.map_err(lost)?;
        let event: Event = serde_json::from_str(&line).map_err(|e| {
            format!("the server answered what this shopbox does not understand ({e}); is it another version?")
        })?;
        match event {
            Event::Bar(state) => {
                let bar = bars
                    .entry(state.id)
                    .or_insert_with(|| console.bar(state.len, &state.what));
                bar.set_length(state.len);
                bar.set_position(state.pos);
                if state.done {
                    if let Some(bar) = bars.remove(&state.id) {
                        finish_bar(&bar, state.message.as_deref());
                    }
                }
            }
            Event::Ask(_) => {
                let answer = match console.new_password() {
                    Ok(password) => Answer::Answer(password),
                    Err(e) => Answer::Error(e),
                };
                send_line(&mut writer, &answer).map_err(lost)?;
            }
            Event::Done(Outcome::Ok(text)) => return Ok(text),
            Event::Done(Outcome::Err(reason)) => return Err(reason),
        }
    }
    Err("the server ended the connection before the command finished (its log may say why)".into())
}

/// The server's listening socket, removed when the server stops.
pub struct Listener {
    socket: tokio::net::UnixListener,
    path: PathBuf,
}

/// Listens on the socket of `data_dir`, replacing one a killed server left (the caller
/// holds the folder, so no other server can be behind it). Call it in a runtime.
pub fn bind(data_dir: &Path) -> Result<Listener, String> {
    use std::os::unix::fs::PermissionsExt;
    let path = socket_path(data_dir);
    match std::fs::remove_file(&path) {
        Ok(()) => tracing::info!(
            "removed {} left by a server that did not stop",
            path.display()
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("cannot remove the old {}: {e}", path.display())),
    }
    let socket = tokio::net::UnixListener::bind(&path)
        .map_err(|e| format!("cannot listen on {}: {e}", path.display()))?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("cannot restrict {}: {e}", path.display()))?;
    Ok(Listener { socket, path })
}

/// Serves the CLI until `stopping`: each connection's command runs on a thread of its
/// own. Then removes the socket and waits for the commands under way.
pub async fn serve(listener: Listener, shop: Arc<Shop>, mut stopping: watch::Receiver<bool>) {
    let mut running: Vec<std::thread::JoinHandle<()>> = Vec::new();
    loop {
        tokio::select! {
            accepted = listener.socket.accept() => match accepted.and_then(|(s, _)| s.into_std()) {
                Ok(stream) => {
                    let shop = Arc::clone(&shop);
                    running.push(std::thread::spawn(move || serve_one(stream, &shop)));
                }
                Err(e) => {
                    tracing::warn!("accepting a command-line connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            _ = stopping.changed() => break,
        }
        running.retain(|h| !h.is_finished());
    }
    let _ = std::fs::remove_file(&listener.path);
    drop(listener);
    let _ = tokio::task::spawn_blocking(move || {
        for command in running {
            let _ = command.join();
        }
    })
    .await;
}

/// One CLI's command, on the server.
fn serve_one(stream: UnixStream, shop: &Shop) {
    let _ = stream.set_nonblocking(false);
    // A CLI that says nothing (or a person who never types the password) lets go at last.
    let _ = stream.set_read_timeout(Some(Duration::from_secs(600)));
    let Ok(reading) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(reading);
    let mut line = String::new();
    if reader.read_line(&mut line).is_err() {
        return;
    }
    let hello: Result<Hello, _> = serde_json::from_str(&line);
    let remote = Remote {
        writer: Mutex::new(stream),
        reader: Mutex::new(reader),
        bars: Mutex::new(Vec::new()),
        next_bar: AtomicU64::new(0),
        progress: hello.as_ref().map(|h| h.progress).unwrap_or(false),
    };
    let hello = match hello {
        Ok(hello) => hello,
        Err(e) => {
            remote.send(&Event::Done(Outcome::Err(format!(
                "the server does not know this command ({e}); is this shopbox another version?"
            ))));
            return;
        }
    };
    if let Some(why) = shop.db.as_ref().and_then(Backend::failure) {
        remote.send(&Event::Done(Outcome::Err(format!(
            "the shop's database could not write to disk ({why}); the server is stopping, run the command again once it has restarted"
        ))));
        return;
    }
    let name = hello.request.name();
    let outcome = std::thread::scope(|scope| {
        let (stop, ticks) = std::sync::mpsc::channel::<()>();
        let remote = &remote;
        scope.spawn(move || {
            while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                ticks.recv_timeout(PROGRESS_EVERY)
            {
                remote.send_bars();
            }
        });
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            hello.request.run(shop, remote)
        }))
        .unwrap_or_else(|_| {
            Err("the command failed unexpectedly; the server's log says more".into())
        });
        drop(stop);
        outcome
    });
    remote.send_bars();
    let outcome = match outcome {
        Ok(text) => {
            tracing::info!("ran `{name}` for the command line");
            Outcome::Ok(text)
        }
        Err(reason) => {
            tracing::info!("`{name}` for the command line failed: {reason}");
            Outcome::Err(reason)
        }
    };
    remote.send(&Event::Done(outcome));
}

/// A bar the server reports to the CLI.
struct Tracked {
    id: u64,
    what: String,
    bar: ProgressBar,
    sent: Option<(u64, u64)>,
}

/// The CLI's console, seen from the server.
struct Remote {
    writer: Mutex<UnixStream>,
    reader: Mutex<BufReader<UnixStream>>,
    bars: Mutex<Vec<Tracked>>,
    next_bar: AtomicU64,
    progress: bool,
}

impl Remote {
    /// Sends one event; a CLI that went away does not stop the command.
    fn send(&self, event: &Event) -> bool {
        let mut writer = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        send_line(&mut *writer, event).is_ok()
    }

    /// Sends every bar that moved since it was last sent; forgets finished ones.
    fn send_bars(&self) {
        let mut bars = self.bars.lock().unwrap_or_else(|e| e.into_inner());
        for t in bars.iter_mut() {
            let now = (t.bar.position(), t.bar.length().unwrap_or(0));
            let done = t.bar.is_finished();
            if t.sent == Some(now) && !done {
                continue;
            }
            t.sent = Some(now);
            let message = t.bar.message();
            self.send(&Event::Bar(BarState {
                id: t.id,
                what: t.what.clone(),
                pos: now.0,
                len: now.1,
                done,
                message: (done && !message.is_empty() && message != t.what).then_some(message),
            }));
        }
        bars.retain(|t| !t.bar.is_finished());
    }
}

impl Progress for Remote {
    fn bar(&self, len: u64, what: &str) -> ProgressBar {
        let bar = ProgressBar::hidden();
        bar.set_length(len);
        bar.set_message(what.to_string());
        if self.progress {
            self.bars
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(Tracked {
                    id: self.next_bar.fetch_add(1, Ordering::Relaxed),
                    what: what.to_string(),
                    bar: bar.clone(),
                    sent: None,
                });
        }
        bar
    }
}

impl Console for Remote {
    fn new_password(&self) -> Result<String, String> {
        self.send_bars();
        if !self.send(&Event::Ask("password".into())) {
            return Err("the command line went away".into());
        }
        let mut line = String::new();
        self.reader
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .read_line(&mut line)
            .map_err(|e| format!("no password came from the command line: {e}"))?;
        match serde_json::from_str(&line) {
            Ok(Answer::Answer(password)) => Ok(password),
            Ok(Answer::Error(reason)) => Err(reason),
            Err(_) => Err("no password came from the command line".into()),
        }
    }
}
