//! Limits that protect a door: how many connections one address and one
//! user may hold, and a delay after failed logins that grows per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connection counts per client address, per user and for the whole door,
/// released by guards.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Mutex<Counts>>,
    per_ip: usize,
    per_user: usize,
    total: usize,
}

#[derive(Default)]
struct Counts {
    ips: HashMap<IpAddr, usize>,
    users: HashMap<String, usize>,
    /// Connections the door holds, from every address.
    connections: usize,
}

/// Holds one connection slot until dropped.
pub struct ConnectionGuard {
    inner: Arc<Mutex<Counts>>,
    key: Key,
}

enum Key {
    Ip(IpAddr),
    User(String),
}

impl ConnectionLimits {
    pub fn new(per_ip: usize, per_user: usize) -> ConnectionLimits {
        ConnectionLimits {
            inner: Arc::default(),
            per_ip,
            per_user,
            total: usize::MAX,
        }
    }

    /// At most `total` connections at once from everywhere together: many
    /// addresses cannot take the machine's sockets and descriptors.
    pub fn with_total(mut self, total: usize) -> ConnectionLimits {
        self.total = total.max(1);
        self
    }

    /// A slot for a new connection from `ip`, or `None` when it has too many.
    pub fn connect(&self, ip: IpAddr) -> Option<ConnectionGuard> {
        self.take(Key::Ip(ip), self.per_ip)
    }

    /// A slot for a session of `user`, or `None` when it has too many.
    pub fn login(&self, user: &str) -> Option<ConnectionGuard> {
        self.take(Key::User(user.to_string()), self.per_user)
    }

    fn take(&self, key: Key, max: usize) -> Option<ConnectionGuard> {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if matches!(key, Key::Ip(_)) && c.connections >= self.total {
            return None;
        }
        let n = match &key {
            Key::Ip(ip) => c.ips.entry(*ip).or_default(),
            Key::User(u) => c.users.entry(u.clone()).or_default(),
        };
        if *n >= max {
            return None;
        }
        *n += 1;
        if matches!(key, Key::Ip(_)) {
            c.connections += 1;
        }
        Some(ConnectionGuard {
            inner: self.inner.clone(),
            key,
        })
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        let mut c = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &self.key {
            Key::Ip(ip) => {
                release(&mut c.ips, ip);
                c.connections = c.connections.saturating_sub(1);
            }
            Key::User(u) => release(&mut c.users, u),
        }
    }
}

fn release<K: std::hash::Hash + Eq>(map: &mut HashMap<K, usize>, key: &K) {
    if let Some(n) = map.get_mut(key) {
        *n -= 1;
        if *n == 0 {
            map.remove(key);
        }
    }
}

/// Failed logins, counted per client address and per account, shared by
/// every door that takes a password (one `LoginThrottle`, cloned).
///
/// Per address: each failure costs the client a delay of one second per
/// failure in the window (so guessing gets slower and slower), up to
/// [`LoginThrottle::MAX_DELAY`]; a quiet window forgives.
///
/// Per account: once an account has [`LoginThrottle::ACCOUNT_FREE`]
/// failures in the window, attempts at it from addresses it has not logged
/// in from are spaced out, from all of them together (a second per ten
/// failures, up to the same maximum), so spreading guesses over many
/// addresses does not help; an address the owner logged in from before is
/// never held back, so the owner is not locked out.
#[derive(Clone, Default, Debug)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
    accounts: Arc<Mutex<HashMap<String, AccountGuard>>>,
    /// When each account's login through each door was last written to
    /// the store (its last-login record needs hours, not every login).
    noted: Arc<Mutex<HashMap<(i64, String), Instant>>>,
}

/// What the throttle knows of one account.
#[derive(Debug)]
struct AccountGuard {
    failures: u32,
    last_failure: Instant,
    /// When the next attempt from an unknown address may be checked.
    next_slot: Instant,
    /// Addresses the account logged in from, newest last.
    known: Vec<(IpAddr, Instant)>,
}

impl LoginThrottle {
    pub const MAX_DELAY: Duration = Duration::from_secs(15);
    /// How long after its last failure an address is forgiven.
    pub const WINDOW: Duration = Duration::from_secs(15 * 60);
    /// Addresses remembered at most; the oldest are forgotten first.
    const MAX_TRACKED: usize = 100_000;

    pub fn new() -> LoginThrottle {
        LoginThrottle::default()
    }

    /// How stale a stored last login may get.
    pub const LOGIN_NOTE_EVERY: Duration = Duration::from_secs(3600);

    /// Whether this login of `account` through `door` should be written to
    /// the store: the first in [`Self::LOGIN_NOTE_EVERY`] in this process.
    pub fn login_to_note(&self, account: i64, door: &str) -> bool {
        let now = Instant::now();
        let mut noted = self.noted.lock().unwrap_or_else(|p| p.into_inner());
        let key = (account, door.to_string());
        match noted.get(&key) {
            Some(at) if now.duration_since(*at) < Self::LOGIN_NOTE_EVERY => false,
            _ => {
                if noted.len() >= Self::MAX_TRACKED {
                    noted.clear();
                }
                noted.insert(key, now);
                true
            }
        }
    }

    /// Records a failure and returns how long to wait before answering.
    pub fn failed(&self, ip: IpAddr) -> Duration {
        let mut map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if map.len() >= Self::MAX_TRACKED {
            map.retain(|_, (_, at)| now.duration_since(*at) < Self::WINDOW);
            if map.len() >= Self::MAX_TRACKED
                && let Some(oldest) = map.iter().min_by_key(|(_, (_, at))| *at).map(|(k, _)| *k)
            {
                map.remove(&oldest);
            }
        }
        let entry = map.entry(ip).or_insert((0, now));
        if now.duration_since(entry.1) >= Self::WINDOW {
            entry.0 = 0;
        }
        entry.0 = entry.0.saturating_add(1);
        entry.1 = now;
        Duration::from_secs(entry.0 as u64).min(Self::MAX_DELAY)
    }

    /// Failures an account may have in the window before attempts at it
    /// from unknown addresses are spaced out.
    pub const ACCOUNT_FREE: u32 = 10;
    /// How long an address stays known after a successful login.
    const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
    /// Known addresses kept per account.
    const MAX_KNOWN: usize = 16;

    /// How long an attempt at `user` from `ip` waits before its password is
    /// checked: nothing, unless the account is being guessed at and `ip`
    /// is not one it logged in from.
    pub fn before_attempt(&self, user: &str, ip: IpAddr) -> Duration {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        let Some(guard) = map.get_mut(&user.to_lowercase()) else {
            return Duration::ZERO;
        };
        if now.duration_since(guard.last_failure) >= Self::WINDOW {
            guard.failures = 0;
        }
        let known = guard
            .known
            .iter()
            .any(|(k, at)| *k == ip && now.duration_since(*at) < Self::KNOWN_FOR);
        if known || guard.failures < Self::ACCOUNT_FREE {
            return Duration::ZERO;
        }
        let spacing = Duration::from_secs((guard.failures / 10) as u64).min(Self::MAX_DELAY);
        let slot = guard.next_slot.max(now);
        guard.next_slot = slot + spacing;
        slot - now
    }

    /// Records a failed login at `user` from `ip` and returns how long to
    /// wait before answering (the address's delay).
    pub fn failed_login(&self, user: &str, ip: IpAddr) -> Duration {
        {
            let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
            let now = Instant::now();
            if map.len() >= Self::MAX_TRACKED {
                map.retain(|_, g| now.duration_since(g.last_failure) < Self::WINDOW);
            }
            // Names that are no account count too: guessing names is guessing.
            let guard = map.entry(user.to_lowercase()).or_insert(AccountGuard {
                failures: 0,
                last_failure: now,
                next_slot: now,
                known: Vec::new(),
            });
            if now.duration_since(guard.last_failure) >= Self::WINDOW {
                guard.failures = 0;
            }
            guard.failures = guard.failures.saturating_add(1);
            guard.last_failure = now;
        }
        self.failed(ip)
    }

    /// Records a successful login: `ip` is known for `user` from now on.
    pub fn succeeded(&self, user: &str, ip: IpAddr) {
        let mut map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        let Some(guard) = map.get_mut(&user.to_lowercase()) else {
            // Accounts nobody guesses at need no entry; the first failure
            // makes one, and the owner's next login marks its address.
            return;
        };
        let now = Instant::now();
        guard.known.retain(|(k, _)| *k != ip);
        guard.known.push((ip, now));
        if guard.known.len() > Self::MAX_KNOWN {
            guard.known.remove(0);
        }
    }

    /// Failures at `user` in the current window.
    pub fn account_failures(&self, user: &str) -> u32 {
        let map = self.accounts.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&user.to_lowercase())
            .filter(|g| g.last_failure.elapsed() < Self::WINDOW)
            .map_or(0, |g| g.failures)
    }

    /// Failures of `ip` in the current window.
    pub fn failures(&self, ip: IpAddr) -> u32 {
        let map = self.failures.lock().unwrap_or_else(|p| p.into_inner());
        map.get(&ip)
            .filter(|(_, at)| at.elapsed() < Self::WINDOW)
            .map_or(0, |(n, _)| *n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_door_total_holds_across_addresses() {
        let limits = ConnectionLimits::new(10, 10).with_total(3);
        let ip = |i: u8| IpAddr::from([10, 0, 0, i]);
        let held: Vec<_> = (1..=3).map(|i| limits.connect(ip(i)).unwrap()).collect();
        assert!(
            limits.connect(ip(4)).is_none(),
            "full for a new address too"
        );
        drop(held);
        assert!(limits.connect(ip(4)).is_some());
    }

    #[test]
    fn slots_are_counted_and_released() {
        let limits = ConnectionLimits::new(2, 1);
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let a = limits.connect(ip).unwrap();
        let _b = limits.connect(ip).unwrap();
        assert!(limits.connect(ip).is_none());
        drop(a);
        assert!(limits.connect(ip).is_some());
        let u = limits.login("x@y").unwrap();
        assert!(limits.login("x@y").is_none());
        drop(u);
        assert!(limits.login("x@y").is_some());
    }

    #[test]
    fn guesses_at_one_account_from_many_addresses_are_spaced_but_the_owner_gets_in() {
        let t = LoginThrottle::new();
        let owner: IpAddr = "192.0.2.10".parse().unwrap();
        // The owner logs in once after a typo: the address is known.
        t.failed_login("Alice@example.test", owner);
        t.succeeded("alice@example.test", owner);
        // 40 guesses, each from an address of its own.
        for i in 0..40u8 {
            let ip = IpAddr::from([198, 51, 100, i]);
            assert_eq!(t.before_attempt("alice@example.test", ip), Duration::ZERO);
            t.failed_login("alice@example.test", ip);
            if t.account_failures("alice@example.test") >= LoginThrottle::ACCOUNT_FREE {
                break;
            }
        }
        assert_eq!(
            t.account_failures("ALICE@example.test"),
            LoginThrottle::ACCOUNT_FREE
        );
        let stranger = |i: u8| IpAddr::from([203, 0, 113, i]);
        // Now every unknown address queues behind the others...
        let waits: Vec<Duration> = (0..5)
            .map(|i| t.before_attempt("alice@example.test", stranger(i)))
            .collect();
        assert_eq!(waits[0], Duration::ZERO);
        assert!(waits.windows(2).all(|w| w[1] > w[0]), "{waits:?}");
        assert!(waits[4] >= Duration::from_secs(3), "{waits:?}");
        // ...while the owner's address goes straight through, and another
        // account is untouched.
        assert_eq!(
            t.before_attempt("alice@example.test", owner),
            Duration::ZERO
        );
        assert_eq!(
            t.before_attempt("bob@example.test", stranger(1)),
            Duration::ZERO
        );
    }

    #[test]
    fn delays_grow_per_address() {
        let t = LoginThrottle::new();
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(t.failed(a), Duration::from_secs(1));
        assert_eq!(t.failed(a), Duration::from_secs(2));
        assert_eq!(t.failed(b), Duration::from_secs(1));
        for _ in 0..100 {
            t.failed(a);
        }
        assert_eq!(t.failed(a), LoginThrottle::MAX_DELAY);
        assert_eq!(t.failures(b), 1);
    }
}
