//! `shopbox serve`: the Rocket app with the server's own tasks around it (purging
//! idempotency keys, delivering mail, scheduled backups, the CLI's admin commands through
//! `control`), and the graceful stop: on
//! SIGTERM or Ctrl-C it stops accepting, lets requests in flight finish within
//! `shutdown.grace_secs`, stops its tasks, flushes the database and says so in one line.

use rocket::fairing::{Fairing, Info, Kind};
use rocket::{Data, Orbit, Request, Response, Rocket};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::Config;
use crate::core::time::Clock;
use crate::db::Backend;
use crate::db::Db;
use crate::mail::sender::{self, Mailer};
use crate::{backup, checkout, control, open_data, AppState, StartError};

/// How long the server waits for its own tasks (a mail being sent, a backup being
/// written) once requests are done.
const TASKS_GRACE: Duration = Duration::from_secs(60);

/// Runs the shop until SIGTERM or Ctrl-C, printing where it is reachable.
pub async fn serve(config: Config) -> Result<(), StartError> {
    if config.database.url.is_some() {
        return serve_pg(config).await;
    }
    let db = open_data(&config)?;
    let listen = match config.address.contains(':') {
        true => format!("[{}]:{}", config.address, config.port),
        false => format!("{}:{}", config.address, config.port),
    };
    let mailer = match config.smtp.host {
        Some(_) => Some(Mailer::new(&config.smtp).map_err(StartError)?),
        None => None,
    };
    // Starts the group-commit task on this runtime: the CLI's commands run on runtimes of
    // their own that end with them, and must not be where every writer's flush waits.
    db.durable()
        .await
        .map_err(|e| StartError(format!("the database cannot write: {e}")))?;
    let (stop, stopping) = watch::channel(false);
    let tasks: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
    // The CLI's admin commands run here while the server holds the folder.
    match control::bind(&config.data_dir) {
        Ok(listener) => {
            tracing::info!(
                "admin commands of the command line run in this server (through {})",
                control::socket_path(&config.data_dir).display()
            );
            let shop = Arc::new(control::Shop::live(config.clone(), db.clone()));
            let task = tokio::spawn(control::serve(listener, shop, stopping.clone()));
            if let Ok(mut tasks) = tasks.lock() {
                tasks.push(task);
            }
        }
        Err(e) => tracing::warn!(
            "{e}: admin commands of the command line cannot run while this server runs"
        ),
    }
    let requests = Arc::new(RequestCount::default());
    let background = Background {
        db: db.clone(),
        config: config.clone(),
        mailer: Mutex::new(mailer),
        stopping,
        tasks: Arc::clone(&tasks),
    };
    let rocket = crate::rocket(config, db.clone())?
        .attach(background)
        .attach(Arc::clone(&requests));
    let outcome = rocket.launch().await;
    let _ = stop.send(true);
    if let Some(why) = db.failure() {
        // Nothing more may reach the disk: no final flush, and the database is never
        // closed (closing it flushes), so the next start sees only what was durable.
        std::mem::forget(db);
        return Err(StartError(format!(
            "stopped because the database could not write to disk ({why}); \
             start it again once the disk has room"
        )));
    }
    let handles: Vec<JoinHandle<()>> = tasks
        .lock()
        .map(|mut t| t.drain(..).collect())
        .unwrap_or_default();
    let tasks_done = tokio::time::timeout(TASKS_GRACE, futures_util::future::join_all(handles))
        .await
        .is_ok();
    let flushed = tokio::task::spawn_blocking(move || {
        let flushed = db.flush_blocking();
        if db.failure().is_some() {
            // A task failed the database while the server stopped: never closed (closing
            // flushes), as above.
            std::mem::forget(db);
        }
        flushed
    })
    .await
    .map_err(|e| e.to_string())
    .and_then(|r| r.map_err(|e| e.to_string()));
    match outcome {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), rocket::error::ErrorKind::Shutdown(..)) => {}
        Err(e) => return Err(StartError(crate::launch_error(&e, &listen))),
    }
    let summary = requests.summary(tasks_done);
    match flushed {
        Ok(()) => {
            tracing::info!("stopped: {summary}; database flushed");
            Ok(())
        }
        Err(e) => Err(StartError(format!(
            "stopped: {summary}; flushing the database failed: {e}"
        ))),
    }
}

/// `serve` from PostgreSQL: the app on the database's pool, with the tasks that run per
/// database rather than per data folder (purging idempotency keys, sending mail). No
/// control socket: the command line's admin commands act on the database themselves
/// (`control::run_cli`). Scheduled backups are sled's (the database's own tools back it up).
async fn serve_pg(config: Config) -> Result<(), StartError> {
    let db = crate::open_backend(&config).await?;
    let listen = match config.address.contains(':') {
        true => format!("[{}]:{}", config.address, config.port),
        false => format!("{}:{}", config.address, config.port),
    };
    let mailer = match config.smtp.host {
        Some(_) => Some(Arc::new(Mailer::new(&config.smtp).map_err(StartError)?)),
        None => None,
    };
    let (stop, stopping) = watch::channel(false);
    let requests = Arc::new(RequestCount::default());
    let mut tasks = vec![tokio::spawn(purge_idempotency_keys(
        db.clone(),
        Clock::default(),
        stopping.clone(),
    ))];
    let smtp = config.smtp.clone();
    let banner = Banner(config.clone());
    let rocket = crate::rocket(config, db.clone())?;
    if let (Some(mailer), Some(state)) = (mailer, rocket.state::<AppState>()) {
        // Every instance sends; each mail is leased to one of them (`mail::store::due`).
        tokio::spawn(check_smtp(Arc::clone(&mailer)));
        tasks.push(tokio::spawn(sender::run(
            db.clone(),
            mailer,
            smtp,
            Arc::clone(&state.metrics),
            stopping.clone(),
        )));
    }
    let outcome = rocket
        .attach(banner)
        .attach(Arc::clone(&requests))
        .launch()
        .await;
    let _ = stop.send(true);
    let tasks_done = tokio::time::timeout(TASKS_GRACE, futures_util::future::join_all(tasks))
        .await
        .is_ok();
    match outcome {
        Ok(_) => {}
        Err(e) if matches!(e.kind(), rocket::error::ErrorKind::Shutdown(..)) => {}
        Err(e) => return Err(StartError(crate::launch_error(&e, &listen))),
    }
    tracing::info!("stopped: {}", requests.summary(tasks_done));
    Ok(())
}

/// Prints where the shop is reachable once it listens.
struct Banner(Config);

#[rocket::async_trait]
impl Fairing for Banner {
    fn info(&self) -> Info {
        Info {
            name: "banner",
            kind: Kind::Liftoff,
        }
    }

    async fn on_liftoff(&self, _: &Rocket<Orbit>) {
        print_banner(&self.0);
    }
}

fn print_banner(config: &Config) {
    let url = config.public_url();
    let banner = format!(
        "{} is open at {url}/\n\
         API docs (Swagger UI): {url}/docs/ (OpenAPI document: {url}/openapi.json)\n\
         Health: {url}/health  Metrics (Prometheus): {url}/metrics\n\
         Press Ctrl-C to stop.\n",
        config.shop_name
    );
    // A closed standard output (`shopbox | head -1`) must not stop the shop.
    let _ = std::io::Write::write_all(&mut std::io::stdout(), banner.as_bytes());
}

/// The server's own tasks, started once Rocket listens.
struct Background {
    db: Db,
    config: Config,
    mailer: Mutex<Option<Mailer>>,
    stopping: watch::Receiver<bool>,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

#[rocket::async_trait]
impl Fairing for Background {
    fn info(&self) -> Info {
        Info {
            name: "background tasks",
            kind: Kind::Liftoff,
        }
    }

    async fn on_liftoff(&self, rocket: &Rocket<Orbit>) {
        let mut started = Vec::new();
        tokio::spawn(stop_when_unwritable(
            self.db.clone(),
            rocket.shutdown(),
            self.stopping.clone(),
        ));
        if let Some(state) = rocket.state::<AppState>() {
            started.push(tokio::spawn(purge_idempotency_keys(
                state.db.clone(),
                state.clock.clone(),
                self.stopping.clone(),
            )));
        }
        let metrics = rocket.state::<AppState>().map(|s| Arc::clone(&s.metrics));
        if let (Some(mailer), Some(metrics)) =
            (self.mailer.lock().ok().and_then(|mut m| m.take()), metrics)
        {
            let mailer = Arc::new(mailer);
            tokio::spawn(check_smtp(Arc::clone(&mailer)));
            started.push(tokio::spawn(sender::run(
                Backend::from(self.db.clone()),
                mailer,
                self.config.smtp.clone(),
                metrics,
                self.stopping.clone(),
            )));
        }
        if self.config.backup.interval_hours > 0.0 {
            started.push(tokio::spawn(scheduled_backups(
                self.db.clone(),
                self.config.clone(),
                self.stopping.clone(),
            )));
        }
        if let Ok(mut tasks) = self.tasks.lock() {
            tasks.extend(started);
        }
        print_banner(&self.config);
    }
}

/// Once a write could not reach the disk, the shop cannot go on: what failed is still in
/// memory and readable. Every answer is a 503 from then on (`http::unwritable`); this says
/// why in one line and stops the server, which exits with a failure status so that its
/// supervisor starts it again from what is on disk.
async fn stop_when_unwritable(
    db: Db,
    shutdown: rocket::Shutdown,
    mut stopping: watch::Receiver<bool>,
) {
    tokio::select! {
        _ = db.failed() => {}
        _ = stopping.changed() => return,
    }
    let why = db.failure().unwrap_or_default();
    tracing::error!(
        "the database could not write to disk ({why}); every request answers 503 and the \
         shop is stopping, for its supervisor to restart it from what is on disk"
    );
    shutdown.notify();
}

/// Start-up check of the SMTP settings. A server that does not answer is a warning, not
/// a refusal to start: the shop can sell meanwhile, and its mail waits in the queue.
async fn check_smtp(mailer: Arc<Mailer>) {
    match mailer.check().await {
        Ok(()) => tracing::info!("SMTP server {} answers", mailer.server),
        Err(e) => tracing::warn!(
            "SMTP server {} does not answer as configured ({e}); mail stays queued and is retried",
            mailer.server
        ),
    }
}

async fn purge_idempotency_keys(db: Backend, clock: Clock, mut stopping: watch::Receiver<bool>) {
    loop {
        match checkout::store::purge_expired_keys(&db, clock.now()).await {
            Ok(0) => {}
            Ok(n) => tracing::info!("purged {n} idempotency keys older than 24 hours"),
            Err(e) => tracing::warn!("purging idempotency keys failed: {e}"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stopping.changed() => return,
        }
    }
}

/// Takes a backup every `backup.interval_hours`, the first one interval after start.
async fn scheduled_backups(db: Db, config: Config, mut stopping: watch::Receiver<bool>) {
    let every = Duration::from_secs_f64(config.backup.interval_hours * 3600.0);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stopping.changed() => return,
        }
        let (db, config) = (db.clone(), config.clone());
        match tokio::task::spawn_blocking(move || backup::scheduled(&db, &config)).await {
            Ok(Ok(report)) => tracing::info!("{report}"),
            Ok(Err(e)) => tracing::error!("scheduled backup failed: {e}"),
            Err(e) => tracing::error!("scheduled backup failed: {e}"),
        }
    }
}

/// Counts requests, to say at the stop how many finished after it began.
#[derive(Default)]
struct RequestCount {
    in_flight: AtomicU64,
    stopping: AtomicBool,
    finished_while_stopping: AtomicU64,
}

impl RequestCount {
    fn summary(&self, tasks_done: bool) -> String {
        let finished = self.finished_while_stopping.load(Ordering::SeqCst);
        let cut = self.in_flight.load(Ordering::SeqCst);
        let mut out = format!("{finished} request(s) finished during shutdown");
        if cut > 0 {
            out.push_str(&format!(", {cut} cut off at the end of the grace period"));
        }
        if !tasks_done {
            out.push_str(", background tasks did not end in time");
        }
        out
    }
}

#[rocket::async_trait]
impl Fairing for RequestCount {
    fn info(&self) -> Info {
        Info {
            name: "requests in flight",
            kind: Kind::Request | Kind::Response | Kind::Shutdown,
        }
    }

    async fn on_request(&self, _: &mut Request<'_>, _: &mut Data<'_>) {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
    }

    async fn on_response<'r>(&self, _: &'r Request<'_>, _: &mut Response<'r>) {
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        if self.stopping.load(Ordering::SeqCst) {
            self.finished_while_stopping.fetch_add(1, Ordering::SeqCst);
        }
    }

    async fn on_shutdown(&self, _: &Rocket<Orbit>) {
        self.stopping.store(true, Ordering::SeqCst);
    }
}
