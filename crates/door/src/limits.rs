//! Limits that protect a door: how many connections one address and one
//! user may hold, and a delay after failed logins that grows per address.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Connection counts per client address and per user, released by guards.
#[derive(Clone)]
pub struct ConnectionLimits {
    inner: Arc<Mutex<Counts>>,
    per_ip: usize,
    per_user: usize,
}

#[derive(Default)]
struct Counts {
    ips: HashMap<IpAddr, usize>,
    users: HashMap<String, usize>,
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
        }
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
        let n = match &key {
            Key::Ip(ip) => c.ips.entry(*ip).or_default(),
            Key::User(u) => c.users.entry(u.clone()).or_default(),
        };
        if *n >= max {
            return None;
        }
        *n += 1;
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
            Key::Ip(ip) => release(&mut c.ips, ip),
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

/// Failed logins per client address. Each failure costs the client a delay
/// of one second per failure in the window (so guessing gets slower and
/// slower), up to [`LoginThrottle::MAX_DELAY`]; a quiet window forgives.
#[derive(Clone, Default)]
pub struct LoginThrottle {
    failures: Arc<Mutex<HashMap<IpAddr, (u32, Instant)>>>,
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
