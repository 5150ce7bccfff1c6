//! Argon2id password hashes (PHC strings), computed off the async runtime,
//! and the cache of logins already verified.

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

/// Logins verified recently, so that the next login with the same password
/// costs a keyed hash instead of an Argon2id run (a client that logs in
/// for every check, or many devices of one user).
///
/// An entry is a keyed hash (HMAC-SHA256 under a key made at start and
/// never stored) of the account's stored PHC string and the password, never
/// the password. The stored string is read from the index at every login,
/// so a changed password (a new hash, with a new salt) or a removed account
/// misses the cache at once, in this process and in any other that shares
/// the store. Only successes are remembered: a wrong password always pays
/// the full hash (and the door's throttle).
pub struct Verified {
    key: ring::hmac::Key,
    seen: std::sync::Mutex<std::collections::HashMap<[u8; 32], std::time::Instant>>,
}

/// How long a verified login is remembered.
const VERIFIED_FOR: std::time::Duration = std::time::Duration::from_secs(3600);
/// Entries at most (32 bytes and an instant each).
const VERIFIED_MAX: usize = 100_000;

impl Verified {
    pub fn new() -> Verified {
        let rng = ring::rand::SystemRandom::new();
        let key = ring::hmac::Key::generate(ring::hmac::HMAC_SHA256, &rng)
            // Without randomness no key: an all-zero one would still keep
            // passwords out of memory, but be guessable; the system RNG
            // failing is fatal elsewhere long before this.
            .unwrap_or_else(|_| ring::hmac::Key::new(ring::hmac::HMAC_SHA256, &[0; 32]));
        Verified {
            key,
            seen: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    fn tag(&self, stored: &str, password: &str) -> [u8; 32] {
        let mut context = ring::hmac::Context::with_key(&self.key);
        // Length-prefixed, so no two (stored, password) pairs run together.
        context.update(&(stored.len() as u64).to_be_bytes());
        context.update(stored.as_bytes());
        context.update(password.as_bytes());
        let mut tag = [0; 32];
        tag.copy_from_slice(context.sign().as_ref());
        tag
    }

    fn knows(&self, stored: &str, password: &str) -> bool {
        let tag = self.tag(stored, password);
        let seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.get(&tag).is_some_and(|at| at.elapsed() < VERIFIED_FOR)
    }

    fn remember(&self, stored: &str, password: &str) {
        let tag = self.tag(stored, password);
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.len() >= VERIFIED_MAX {
            seen.retain(|_, at| at.elapsed() < VERIFIED_FOR);
            if seen.len() >= VERIFIED_MAX {
                seen.clear();
            }
        }
        seen.insert(tag, std::time::Instant::now());
    }

    /// [`verify`], answered from the cache when this exact stored hash and
    /// password were verified within [`VERIFIED_FOR`].
    pub async fn verify(&self, password: String, stored: Option<String>) -> bool {
        let Some(stored) = stored else {
            return verify(password, None).await;
        };
        if self.knows(&stored, &password) {
            return true;
        }
        let ok = verify(password.clone(), Some(stored.clone())).await;
        if ok {
            self.remember(&stored, &password);
        }
        ok
    }
}

impl Default for Verified {
    fn default() -> Verified {
        Verified::new()
    }
}

/// An Argon2id hash (default parameters) of a random string nobody knows.
const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2F0Y2hlbGR1bW15c2FsdA$3M0w9Q1cJ4wW8hGm0U7kqkXl2yq8nAEdSaGZVnqgJcM";

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_a_verified_login_is_remembered_and_only_for_its_stored_hash() {
        let cache = Verified::new();
        let stored = hash("right".into()).await.unwrap();
        assert!(!cache.verify("wrong".into(), Some(stored.clone())).await);
        assert!(!cache.knows(&stored, "wrong"), "a failure is never cached");
        assert!(cache.verify("right".into(), Some(stored.clone())).await);
        assert!(cache.knows(&stored, "right"));
        // A new hash of the same password (a password change) is a miss.
        let again = hash("right".into()).await.unwrap();
        assert!(!cache.knows(&again, "right"));
        assert!(
            !cache.verify("right".into(), None).await,
            "no account, no login"
        );
    }
}
