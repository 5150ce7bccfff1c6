//! The embedded store's [`crate::Logins`]: failed logins and the addresses
//! each account logged in from.

use std::net::IpAddr;

use super::*;
use crate::types::{address_key, name_key};
use crate::{millis, unix_millis};

#[async_trait]
impl Logins for SqliteStore {
    async fn login_failed(&self, name: Option<&str>, ip: IpAddr, window: Duration) -> Result<u32> {
        let keys = [Some(address_key(ip)), name.map(name_key)];
        let window = millis(window);
        self.db
            .write(move |c| {
                let now = unix_millis();
                let mut counts = Vec::with_capacity(2);
                for key in keys.iter().flatten() {
                    counts.push(one(c, COUNT_FAILURE, params![key, now, window], |r| {
                        r.get::<_, u32>(0)
                    })?);
                }
                Ok(counts.first().copied().flatten().unwrap_or(1))
            })
            .await
    }

    async fn login_guard(&self, name: &str, ip: IpAddr, window: Duration) -> Result<LoginGuard> {
        let (key, name, ip) = (name_key(name), name.to_lowercase(), ip.to_string());
        let window = millis(window);
        self.db
            .read(move |c| {
                let now = unix_millis();
                let failures = one(
                    c,
                    "SELECT failures FROM login_failures WHERE key = ?1 AND last_failure > ?2",
                    params![key, now - window],
                    |r| r.get::<_, u32>(0),
                )?;
                let known_at = one(
                    c,
                    "SELECT at FROM login_known WHERE name = ?1 AND ip = ?2",
                    params![name, ip],
                    |r| r.get::<_, i64>(0),
                )?;
                Ok(LoginGuard {
                    failures: failures.unwrap_or(0),
                    known_at,
                })
            })
            .await
    }

    async fn login_turn(&self, name: &str, spacing: Duration) -> Result<Duration> {
        let (key, spacing) = (name_key(name), millis(spacing));
        self.db
            .write(move |c| {
                let now = unix_millis();
                let turn = one(
                    c,
                    "UPDATE login_failures SET next_slot = max(next_slot, ?2) + ?3 WHERE key = ?1 \
                     RETURNING next_slot - ?3",
                    params![key, now, spacing],
                    |r| r.get::<_, i64>(0),
                )?;
                Ok(Duration::from_millis(
                    turn.map_or(0, |t| (t - now).max(0)) as u64
                ))
            })
            .await
    }

    async fn login_succeeded(&self, name: &str, ip: IpAddr, keep: usize) -> Result<()> {
        let (name, ip, keep) = (name.to_lowercase(), ip.to_string(), keep as i64);
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO login_known (name, ip, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (name, ip) DO UPDATE SET at = excluded.at",
                    params![name, ip, unix_millis()],
                )?;
                exec(c, FORGET_OLDEST, params![name, keep])?;
                Ok(())
            })
            .await
    }

    async fn prune_logins(&self, failures: Duration, known: Duration) -> Result<usize> {
        let (failures, known) = (millis(failures), millis(known));
        self.db
            .write(move |c| {
                let now = unix_millis();
                Ok(exec(
                    c,
                    "DELETE FROM login_failures WHERE last_failure < ?1",
                    [now - failures],
                )? + exec(c, "DELETE FROM login_known WHERE at < ?1", [now - known])?)
            })
            .await
    }
}

/// Counts one failure of a key: a count whose last failure is older than
/// the window starts again at one.
const COUNT_FAILURE: &str = "INSERT INTO login_failures (key, failures, last_failure, next_slot) \
     VALUES (?1, 1, ?2, ?2) ON CONFLICT (key) DO UPDATE SET \
     failures = CASE WHEN login_failures.last_failure <= ?2 - ?3 THEN 1 \
                ELSE login_failures.failures + 1 END, \
     last_failure = ?2 RETURNING failures";

/// Keeps a name's newest addresses.
const FORGET_OLDEST: &str = "DELETE FROM login_known WHERE name = ?1 AND ip NOT IN \
     (SELECT ip FROM login_known WHERE name = ?1 ORDER BY at DESC LIMIT ?2)";
