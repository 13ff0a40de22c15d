//! Group commit: every writer waits for a flush that began after its write, and writers
//! that arrive while a flush runs share the next one.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use tokio::sync::{watch, Notify};
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
    requested: AtomicU64,
    wake: Notify,
    done: watch::Sender<Done>,
    closing: AtomicBool,
    flushes: AtomicU64,
}

impl Flusher {
    pub(super) fn new(sled: sled::Db) -> Self {
        Flusher {
            sled: Arc::new(sled),
            state: Arc::new(State {
                requested: AtomicU64::new(0),
                wake: Notify::new(),
                done: watch::channel((0, None)).0,
                closing: AtomicBool::new(false),
                flushes: AtomicU64::new(0),
            }),
            task: Mutex::new(None),
        }
    }

    pub(super) async fn flush(&self) -> StoreResult<()> {
        self.start_once();
        let mut done = self.state.done.subscribe();
        let ticket = self.state.requested.fetch_add(1, Ordering::SeqCst) + 1;
        self.state.wake.notify_one();
        let seen = done
            .wait_for(|(generation, _)| *generation >= ticket)
            .await
            .map_err(|_| StoreError::Storage("the flusher stopped".into()))?;
        match &seen.1 {
            None => Ok(()),
            Some(e) => Err(StoreError::Storage(format!("flush: {e}"))),
        }
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
                let target = state.requested.load(Ordering::SeqCst);
                if target <= state.done.borrow().0 {
                    continue;
                }
                state.flushes.fetch_add(1, Ordering::Relaxed);
                let Some(db) = Weak::upgrade(&sled) else {
                    break;
                };
                let result = tokio::task::spawn_blocking(move || db.flush()).await;
                let error = match result {
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => Some(e.to_string()),
                    Err(e) => Some(e.to_string()),
                };
                if let Some(e) = &error {
                    tracing::error!("flushing the database failed: {e}");
                }
                state.done.send_replace((target, error));
            }
        }));
    }
}

impl Drop for Flusher {
    /// Lets the flush task end, so that it no longer holds the database open.
    fn drop(&mut self) {
        self.state.closing.store(true, Ordering::SeqCst);
        self.state.wake.notify_one();
    }
}
