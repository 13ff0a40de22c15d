//! Group commit: every writer waits for a flush that began after its write, and writers
//! that arrive while a flush runs share the next one.
//!
//! Commits and flushes take turns at an async lock (`Turns`). sled's flush holds its
//! process-wide lock against transactions until the disk has the data, so a transaction
//! that began during a flush would block its async worker thread (and every request that
//! thread serves) for the whole disk write. Instead it waits at the lock without a
//! thread; when the flush ends, every transaction that queued commits, and the next flush
//! (queued behind them) takes them all to disk.
//!
//! A flush that fails (a full disk, an I/O error) leaves writes in memory that may never
//! reach the disk: from then on the database is *failed*. No flush runs again (one that
//! succeeded later could make durable a write whose writer was told it failed), every
//! writer waiting or to come is refused with `Unwritable`, and `Db::failed` wakes up so
//! the server can stop and be restarted from what is on disk.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use tokio::sync::{watch, Notify, RwLock, RwLockReadGuard};
use tokio::task::JoinHandle;

use super::{StoreError, StoreResult};

/// `(generation flushed, error of the last flush if it failed)`.
type Done = (u64, Option<String>);

pub(super) struct Flusher {
    /// The task holds this weakly: dropping the `Db` closes the database at once, without
    /// waiting for the task to be polled once more (a test or a command may reopen the
    /// folder right after).
    sled: Arc<sled::Db>,
    state: Arc<State>,
    /// The flush task, on the runtime of its first caller; started again if that runtime
    /// went away (a CLI command runs several short-lived runtimes).
    task: Mutex<Option<JoinHandle<()>>>,
}

struct State {
    /// Held shared while a transaction commits, alone while a flush runs (see the top).
    turns: RwLock<()>,
    requested: AtomicU64,
    wake: Notify,
    done: watch::Sender<Done>,
    closing: AtomicBool,
    flushes: AtomicU64,
    /// Why the database failed; set once, never cleared.
    failure: OnceLock<String>,
    failed: watch::Sender<bool>,
    /// Test seam: flushes fail, without touching the disk, once this file exists.
    fail_when: Option<PathBuf>,
}

impl State {
    fn fail(&self, why: String) {
        if self.failure.set(why).is_ok() {
            self.failed.send_replace(true);
        }
    }

    fn refused(&self) -> Option<StoreError> {
        self.failure
            .get()
            .map(|why| StoreError::Unwritable(why.clone()))
    }
}

impl Flusher {
    pub(super) fn new(sled: sled::Db, fail_when: Option<PathBuf>) -> Self {
        Flusher {
            sled: Arc::new(sled),
            state: Arc::new(State {
                turns: RwLock::new(()),
                requested: AtomicU64::new(0),
                wake: Notify::new(),
                done: watch::channel((0, None)).0,
                closing: AtomicBool::new(false),
                flushes: AtomicU64::new(0),
                failure: OnceLock::new(),
                failed: watch::channel(false).0,
                fail_when,
            }),
            task: Mutex::new(None),
        }
    }

    pub(super) async fn flush(&self) -> StoreResult<()> {
        let ticket = self.ticket()?;
        self.flushed(ticket).await
    }

    /// Asks for a flush that begins after every write made so far; answers the ticket to
    /// wait for with `flushed`. Taken by a transaction before its commit turn ends, so that
    /// the flush that follows that turn is the one it waits for.
    pub(super) fn ticket(&self) -> StoreResult<u64> {
        if let Some(e) = self.state.refused() {
            return Err(e);
        }
        self.start_once();
        let ticket = self.state.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.wake.notify_one();
        Ok(ticket)
    }

    /// Waits until the flush of a ticket has ended.
    pub(super) async fn flushed(&self, ticket: u64) -> StoreResult<()> {
        let mut done = self.state.done.subscribe();
        let seen = done
            .wait_for(|(generation, _)| *generation >= ticket)
            .await
            .map_err(|_| StoreError::Storage("the flusher stopped".into()))?;
        match &seen.1 {
            None => Ok(()),
            Some(e) => Err(StoreError::Unwritable(e.clone())),
        }
    }

    /// Waits, without holding a thread, until no flush runs; no flush starts while the
    /// guard is kept. Hold it around a transaction's commit, and no longer.
    pub(super) async fn commit_turn(&self) -> RwLockReadGuard<'_, ()> {
        match self.state.turns.try_read() {
            Ok(turn) => turn,
            Err(_) => self.state.turns.read().await,
        }
    }

    /// A flush on the caller's thread (the CLI, start-up and the final flush at a stop).
    pub(super) fn flush_blocking(&self) -> StoreResult<()> {
        if let Some(e) = self.state.refused() {
            return Err(e);
        }
        flush_now(&self.sled, &self.state).map_err(StoreError::Unwritable)
    }

    /// Records that a write could not reach the disk, outside a flush.
    pub(super) fn fail(&self, why: String) {
        self.state.fail(why);
    }

    /// Why the database failed, once it has.
    pub(super) fn failure(&self) -> Option<String> {
        self.state.failure.get().cloned()
    }

    /// Resolves once the database has failed.
    pub(super) async fn failed(&self) {
        let mut failed = self.state.failed.subscribe();
        let _ = failed.wait_for(|f| *f).await;
    }

    /// How many flushes the group-commit task has run.
    pub(super) fn flushes(&self) -> u64 {
        self.state.flushes.load(Ordering::Relaxed)
    }

    fn start_once(&self) {
        let Ok(mut task) = self.task.lock() else {
            return;
        };
        if task.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let state = Arc::clone(&self.state);
        let sled = Arc::downgrade(&self.sled);
        *task = Some(tokio::spawn(async move {
            loop {
                state.wake.notified().await;
                if state.closing.load(Ordering::SeqCst) {
                    break;
                }
                if state.requested.load(Ordering::SeqCst) <= state.done.borrow().0 {
                    continue;
                }
                // Transactions that queued before this point commit first (each takes its
                // ticket in its turn); those that come later wait for the next flush.
                let alone = state.turns.write().await;
                let target = state.requested.load(Ordering::SeqCst);
                // Once failed, never flush again: answer every waiting writer at once.
                if let Some(why) = state.failure.get() {
                    state.done.send_replace((target, Some(why.clone())));
                    continue;
                }
                state.flushes.fetch_add(1, Ordering::Relaxed);
                let Some(db) = Weak::upgrade(&sled) else {
                    break;
                };
                let flushing = Arc::clone(&state);
                let result = tokio::task::spawn_blocking(move || flush_now(&db, &flushing)).await;
                drop(alone);
                let error = match result {
                    Ok(Ok(())) => None,
                    Ok(Err(e)) => Some(e),
                    Err(e) => Some(e.to_string()),
                };
                state.done.send_replace((target, error));
            }
        }));
    }
}

/// Flushes sled, or fails the database with the reason.
fn flush_now(db: &sled::Db, state: &State) -> Result<(), String> {
    let result = match &state.fail_when {
        Some(file) if file.exists() => Err("injected write failure (test)".to_string()),
        _ => db.flush().map(|_| ()).map_err(|e| match e {
            sled::Error::Io(io) => io.to_string(),
            other => other.to_string(),
        }),
    };
    if let Err(e) = &result {
        state.fail(e.clone());
    }
    result
}

impl Drop for Flusher {
    /// Lets the flush task end, so that it no longer holds the database open.
    fn drop(&mut self) {
        self.state.closing.store(true, Ordering::SeqCst);
        self.state.wake.notify_one();
    }
}
