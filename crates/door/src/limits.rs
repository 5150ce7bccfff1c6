//! Limits that protect a door: how many connections one address and one
//! user may hold, and how many the whole door.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

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
}
