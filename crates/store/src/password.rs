//! Argon2id password hashes (PHC strings), computed off the async runtime.

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};

use tokio::sync::Semaphore;

use crate::Error;

/// At most this many hashes at once: each takes 19 MiB and a core for tens
/// of milliseconds, so a burst of logins (or of wrong passwords) queues
/// here instead of taking the machine's memory.
fn hashing() -> &'static Semaphore {
    static HASHING: std::sync::OnceLock<Semaphore> = std::sync::OnceLock::new();
    HASHING.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        Semaphore::new(cores.clamp(1, 8))
    })
}

/// Hashes `password` with Argon2id and a fresh random salt.
pub async fn hash(password: String) -> Result<String, Error> {
    let _permit = hashing()
        .acquire()
        .await
        .map_err(|e| Error::Password(e.to_string()))?;
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut argon2::password_hash::rand_core::OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|h| h.to_string())
            .map_err(|e| Error::Password(e.to_string()))
    })
    .await
    .map_err(|e| Error::Password(e.to_string()))?
}

/// Checks `password` against a stored PHC string. With no stored hash (an
/// unknown user) it still spends the same work, so timing does not tell
/// which addresses exist.
pub async fn verify(password: String, stored: Option<String>) -> bool {
    let Ok(_permit) = hashing().acquire().await else {
        return false;
    };
    tokio::task::spawn_blocking(move || {
        let known = stored.is_some();
        let phc = stored.unwrap_or_else(|| DUMMY_HASH.to_string());
        let Ok(parsed) = PasswordHash::new(&phc) else {
            return false;
        };
        let ok = Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok();
        ok && known
    })
    .await
    .unwrap_or(false)
}

/// An Argon2id hash (default parameters) of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2F0Y2hlbGR1bW15c2FsdA$3M0w9Q1cJ4wW8hGm0U7kqkXl2yq8nAEdSaGZVnqgJcM";
