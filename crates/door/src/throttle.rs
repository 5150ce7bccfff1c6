//! The login throttle every door that takes a password shares: how long an
//! attempt waits before its password is checked and how long a failure
//! waits before it is answered. The counts live in the store
//! ([`store::Logins`]), so a restart forgets no guesser and every node
//! behind a load balancer holds back the same guesses.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use store::{LoginGuard, Logins};

/// Per address: each failure costs the client a delay of one second per
/// failure in the window (so guessing gets slower and slower), up to
/// [`LoginThrottle::MAX_DELAY`]; a quiet window forgives.
///
/// Per account: once an account has [`LoginThrottle::ACCOUNT_FREE`]
/// failures in the window, attempts at it from addresses it has not logged
/// in from are spaced out, from all of them together (a second per ten
/// failures, up to the same maximum), so spreading guesses over many
/// addresses (or nodes) does not help; an address the owner logged in from
/// before is never held back, so the owner is not locked out.
#[derive(Clone, Default, Debug)]
pub struct LoginThrottle {
    /// When each account's login through each door was last written to
    /// the store (its last-login record needs hours, not every login).
    noted: Arc<Mutex<HashMap<(i64, String), Instant>>>,
}

impl LoginThrottle {
    pub const MAX_DELAY: Duration = Duration::from_secs(15);
    /// How long after its last failure an address or account is forgiven.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Failures an account may have in the window before attempts at it
    /// from unknown addresses are spaced out.
    pub const ACCOUNT_FREE: u32 = 10;
    /// How long an address stays known after a successful login.
    pub const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Known addresses kept per account.
    const MAX_KNOWN: usize = 16;
    /// How stale a known address's last login may get before it is
    /// written again (a write per login would be a write per phone poll).
    const KNOWN_REFRESH: Duration = Duration::from_secs(24 * 3600);
    /// How stale a stored last login may get.
    pub const LOGIN_NOTE_EVERY: Duration = Duration::from_secs(3600);
    /// Logins remembered for [`Self::login_to_note`] at most.
    const MAX_NOTED: usize = 100_000;

    pub fn new() -> LoginThrottle {
        LoginThrottle::default()
    }

    /// How long an attempt at `user` from `ip` waits before its password
    /// is checked (nothing, unless the account is being guessed at and
    /// `ip` is not one it logged in from), with what the store knew, for
    /// [`Self::succeeded`].
    pub async fn before_attempt(
        &self,
        store: &dyn Logins,
        user: &str,
        ip: IpAddr,
    ) -> store::Result<(Duration, LoginGuard)> {
        let guard = store.login_guard(user, ip, Self::WINDOW).await?;
        if known_within(&guard, Self::KNOWN_FOR) || guard.failures < Self::ACCOUNT_FREE {
            return Ok((Duration::ZERO, guard));
        }
        let spacing = Duration::from_secs((guard.failures / 10) as u64).min(Self::MAX_DELAY);
        Ok((store.login_turn(user, spacing).await?, guard))
    }

    /// Records a failed login from `ip`, at `user` when the client named
    /// one, and returns how long to wait before answering (the address's
    /// delay).
    pub async fn failed_login(
        &self,
        store: &dyn Logins,
        user: Option<&str>,
        ip: IpAddr,
    ) -> store::Result<Duration> {
        let failures = store.login_failed(user, ip, Self::WINDOW).await?;
        Ok(Duration::from_secs(failures as u64).min(Self::MAX_DELAY))
    }

    /// Records a successful login: `ip` is known for `user` from now on.
    /// `guard` is what [`Self::before_attempt`] answered; an address known
    /// since less than a day is not written again.
    pub async fn succeeded(
        &self,
        store: &dyn Logins,
        user: &str,
        ip: IpAddr,
        guard: &LoginGuard,
    ) -> store::Result<()> {
        if known_within(guard, Self::KNOWN_REFRESH) {
            return Ok(());
        }
        store.login_succeeded(user, ip, Self::MAX_KNOWN).await
    }

    /// Whether this login of `account` through `door` should be written to
    /// the store: the first in [`Self::LOGIN_NOTE_EVERY`] in this process.
    pub fn login_to_note(&self, account: i64, door: &str) -> bool {
        let now = Instant::now();
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account, door.to_string());
        match noted.get(&key) {
            Some(at) if now.duration_since(*at) < Self::LOGIN_NOTE_EVERY => false,
            _ => {
                if noted.len() >= Self::MAX_NOTED {
                    noted.clear();
                }
                noted.insert(key, now);
                true
            }
        }
    }
}

/// Whether the guard's address logged in as its account within `age`.
fn known_within(guard: &LoginGuard, age: Duration) -> bool {
    let age = age.as_millis().min(i64::MAX as u128) as i64;
    guard
        .known_at
        .is_some_and(|at| store::unix_millis().saturating_sub(at) < age)
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn store(dir: &tempfile::TempDir) -> store::SqliteStore {
        store::SqliteStore::open(dir.path()).await.unwrap()
    }

    async fn wait(t: &LoginThrottle, s: &dyn Logins, user: &str, ip: IpAddr) -> Duration {
        t.before_attempt(s, user, ip).await.unwrap().0
    }

    #[tokio::test]
    async fn guesses_at_one_account_from_many_addresses_are_spaced_but_the_owner_gets_in() {
        let dir = tempfile::tempdir().unwrap();
        let s = store(&dir).await;
        let t = LoginThrottle::new();
        let owner: IpAddr = "192.0.2.10".parse().unwrap();
        // The owner logs in once after a typo: the address is known.
        t.failed_login(&s, Some("Alice@example.test"), owner)
            .await
            .unwrap();
        let (_, guard) = t
            .before_attempt(&s, "alice@example.test", owner)
            .await
            .unwrap();
        t.succeeded(&s, "alice@example.test", owner, &guard)
            .await
            .unwrap();
        // Guesses, each from an address of its own, until the account
        // has had its free failures.
        for i in 0..40u8 {
            let ip = IpAddr::from([198, 51, 100, i]);
            assert_eq!(wait(&t, &s, "alice@example.test", ip).await, Duration::ZERO);
            t.failed_login(&s, Some("alice@example.test"), ip)
                .await
                .unwrap();
            let g = s
                .login_guard("ALICE@example.test", ip, LoginThrottle::WINDOW)
                .await
                .unwrap();
            if g.failures >= LoginThrottle::ACCOUNT_FREE {
                assert_eq!(g.failures, LoginThrottle::ACCOUNT_FREE);
                break;
            }
        }
        let stranger = |i: u8| IpAddr::from([203, 0, 113, i]);
        // Now every unknown address queues behind the others...
        let mut waits = Vec::new();
        for i in 0..5 {
            waits.push(wait(&t, &s, "alice@example.test", stranger(i)).await);
        }
        assert!(waits[0] <= Duration::from_millis(50), "{waits:?}");
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(waits[4] >= Duration::from_secs(3), "{waits:?}");
        // ...while the owner's address goes straight through, and another
        // account is untouched.
        assert_eq!(
            wait(&t, &s, "alice@example.test", owner).await,
            Duration::ZERO
        );
        assert_eq!(
            wait(&t, &s, "bob@example.test", stranger(1)).await,
            Duration::ZERO
        );
    }

    #[tokio::test]
    async fn delays_grow_per_address_and_outlive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let t = LoginThrottle::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        {
            let s = store(&dir).await;
            assert_eq!(
                t.failed_login(&s, None, a).await.unwrap(),
                Duration::from_secs(1)
            );
            assert_eq!(
                t.failed_login(&s, None, a).await.unwrap(),
                Duration::from_secs(2)
            );
            assert_eq!(
                t.failed_login(&s, None, b).await.unwrap(),
                Duration::from_secs(1)
            );
        }
        // Another store on the same files (a restart, or another process).
        let s = store(&dir).await;
        assert_eq!(
            t.failed_login(&s, None, a).await.unwrap(),
            Duration::from_secs(3)
        );
        for _ in 0..20 {
            t.failed_login(&s, None, a).await.unwrap();
        }
        assert_eq!(
            t.failed_login(&s, None, a).await.unwrap(),
            LoginThrottle::MAX_DELAY
        );
        // Pruning keeps what is inside the window.
        s.prune_logins(LoginThrottle::WINDOW, LoginThrottle::KNOWN_FOR)
            .await
            .unwrap();
        assert_eq!(
            t.failed_login(&s, None, b).await.unwrap(),
            Duration::from_secs(2)
        );
    }
}
