//! Password hashing with argon2id (OWASP parameters) on the blocking pool, at most about
//! one hash per core at a time, so logins never starve the async workers.

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use tokio::sync::Semaphore;

use crate::core::error::ApiError;

/// OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane.
fn argon2() -> Argon2<'static> {
    let params = Params::new(19 * 1024, 2, 1, None).expect("valid argon2 parameters");
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
}

pub fn hash_now(password: &str) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| format!("hashing failed: {e}"))
}

/// Checks a password against a stored PHC string (argon2id, or bcrypt from an import).
pub fn verify_now(password: &str, stored: &str) -> bool {
    if stored.starts_with("$2") {
        return false;
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

pub struct Passwords {
    permits: Arc<Semaphore>,
    verifications: AtomicU64,
    dummy: OnceLock<String>,
}

impl Default for Passwords {
    fn default() -> Self {
        let cores = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2);
        Passwords {
            permits: Arc::new(Semaphore::new(cores)),
            verifications: AtomicU64::new(0),
            dummy: OnceLock::new(),
        }
    }
}

impl Passwords {
    async fn off_thread<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| ApiError::Internal("password pool closed".into()))?;
        tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| ApiError::Internal(format!("password task failed: {e}")))
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let password = password.to_string();
        self.off_thread(move || hash_now(&password))
            .await?
            .map_err(ApiError::Internal)
    }

    /// Verifies `password` against `stored`; with no stored hash (unknown email) it verifies
    /// against a dummy hash, so both cost the same.
    pub async fn verify(&self, password: &str, stored: Option<&str>) -> Result<bool, ApiError> {
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

    async fn dummy_hash(&self) -> Result<String, ApiError> {
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
}
