//! Password hashing with argon2id (OWASP parameters) on a few dedicated threads (one per
//! core), so logins never starve the async workers. Dedicated threads also keep the
//! 19 MiB that each hash allocates in a fixed number of per-thread allocator heaps: spread
//! over the blocking pool's many threads, that memory stayed resident once per thread's
//! arena (300 MB RSS with glibc's allocator).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};

/// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

/// Hashing could not run: argon2 refused, or the hashing threads are gone.
#[derive(Debug, Clone, PartialEq)]
pub struct PasswordError(pub String);

impl std::fmt::Display for PasswordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for PasswordError {}

pub fn hash_now(password: &str) -> Result<String, PasswordError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError(format!("hashing failed: {e}")))
}

/// Checks a password against a stored PHC string (argon2id, or bcrypt from an import).
pub fn verify_now(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        // bcrypt, from a shop imported from the FastAPI reference backend; `needs_rehash`
        // then has the login replace it with argon2id.
        return bcrypt::verify(password, stored).unwrap_or(false);
    }
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// Whether a stored hash should be replaced by a fresh argon2id hash at the next login.
pub fn needs_rehash(stored: &str) -> bool {
    !stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$")
}

type Job = Box<dyn FnOnce() + Send>;

/// Runs this thread at a lower priority, so that hashing takes idle CPU first and the
/// async workers stay responsive while logins pour in.
fn lower_priority_once() {
    thread_local!(static DONE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) });
    DONE.with(|done| {
        if !done.replace(true) {
            #[cfg(target_os = "linux")]
            // SAFETY: plain syscalls on the calling thread; failure only leaves the priority as is.
            unsafe {
                let tid = libc::syscall(libc::SYS_gettid) as libc::id_t;
                libc::setpriority(libc::PRIO_PROCESS, tid, 4);
            }
        }
    });
}

pub struct Passwords {
    jobs: Mutex<mpsc::Sender<Job>>,
    verifications: AtomicU64,
    dummy: OnceLock<String>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..cores {
            let queue = Arc::clone(&queue);
            let spawned = std::thread::Builder::new()
                .name(format!("password-{i}"))
                .spawn(move || loop {
                    lower_priority_once();
                    let job = match queue.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    match job {
                        Ok(job) => job(),
                        // Every sender is gone: the app was dropped.
                        Err(_) => return,
                    }
                });
            if let Err(e) = spawned {
                tracing::error!("cannot start a password thread: {e}");
            }
        }
        Passwords {
            jobs: Mutex::new(jobs),
            verifications: AtomicU64::new(0),
            dummy: OnceLock::new(),
        }
    }
}

impl Passwords {
    async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PasswordError> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move || {
            let _ = reply.send(work());
        });
        let failed = |what: &str| PasswordError(format!("password pool {what}"));
        self.jobs
            .lock()
            .map_err(|_| failed("poisoned"))?
            .send(job)
            .map_err(|_| failed("stopped"))?;
        answer.await.map_err(|_| failed("task failed"))
    }

    pub async fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let password = password.to_string();
        self.off_thread(move || hash_now(&password)).await?
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown email) it verifies
    /// against a dummy hash, so both cost the same.
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<bool, PasswordError> {
        let known = stored.is_some();
        let stored = match stored {
            Some(s) => s.to_string(),
            None => self.dummy_hash().await?,
        };
        let password = password.to_string();
        self.verifications.fetch_add(1, Ordering::Relaxed);
        let ok = self
            .off_thread(move || verify_now(&password, &stored))
            .await?;
        Ok(ok && known)
    }

    async fn dummy_hash(&self) -> Result<String, PasswordError> {
        if let Some(h) = self.dummy.get() {
            return Ok(h.clone());
        }
        let random = hex::encode(rand::random::<[u8; 16]>());
        let h = self.hash(&random).await?;
        Ok(self.dummy.get_or_init(|| h).clone())
    }

    /// How many verifications ran: lets a test see that an unknown email was verified too.
    pub fn verifications(&self) -> u64 {
        self.verifications.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_owasp_argon2id_phc_strings() {
        let h = hash_now("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify_now("correct horse", &h));
        assert!(!verify_now("wrong horse", &h));
        assert!(!verify_now("x", "not a hash"));
        assert!(!needs_rehash(&h));
    }

    /// A login with an unknown email is checked against a dummy hash, so that it costs
    /// what a known one does (no telling accounts apart by time): that hash must be a
    /// real argon2id hash with the shop's parameters, made once.
    #[test]
    fn the_dummy_hash_costs_what_a_real_one_does() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let passwords = Passwords::default();
        let dummy = runtime.block_on(passwords.dummy_hash()).unwrap();
        assert!(!needs_rehash(&dummy), "{dummy}");
        assert!(PasswordHash::new(&dummy).is_ok(), "{dummy}");
        assert_eq!(runtime.block_on(passwords.dummy_hash()).unwrap(), dummy);
    }
}
