//! [`crate::Logins`] on PostgreSQL: failed logins and the addresses each
//! account logged in from, counted alike by every node.

use std::net::IpAddr;
use std::time::Duration;

use super::traces::without_nul;
use super::*;
use crate::types::{address_key, name_key};
use crate::{millis, unix_millis};

#[async_trait::async_trait]
impl Logins for PgStore {
    async fn login_failed(&self, name: Option<&str>, ip: IpAddr, window: Duration) -> Result<u32> {
        let c = self.client().await?;
        let now = unix_millis();
        let window = millis(window);
        if let Some(name) = name {
            one(
                &c,
                COUNT_FAILURE,
                &[&without_nul(&name_key(name)), &now, &window],
            )
            .await?;
        }
        let row = one(&c, COUNT_FAILURE, &[&address_key(ip), &now, &window]).await?;
        Ok(row.map_or(1, |r| r.get::<_, i32>(0).max(0) as u32))
    }

    async fn login_guard(&self, name: &str, ip: IpAddr, window: Duration) -> Result<LoginGuard> {
        let c = self.client().await?;
        let now = unix_millis();
        let row = one(
            &c,
            "SELECT (SELECT failures FROM login_failures WHERE key = $1 AND last_failure > $2), \
                    (SELECT at FROM login_known WHERE name = $3 AND ip = $4)",
            &[
                &without_nul(&name_key(name)),
                &(now - millis(window)),
                &without_nul(&name.to_lowercase()),
                &ip.to_string(),
            ],
        )
        .await?;
        Ok(row.map_or(LoginGuard::default(), |r| LoginGuard {
            failures: r.get::<_, Option<i32>>(0).unwrap_or(0).max(0) as u32,
            known_at: r.get(1),
        }))
    }

    async fn login_turn(&self, name: &str, spacing: Duration) -> Result<Duration> {
        let c = self.client().await?;
        let now = unix_millis();
        let turn = one(
            &c,
            "UPDATE login_failures SET next_slot = GREATEST(next_slot, $2) + $3 WHERE key = $1 \
             RETURNING next_slot - $3",
            &[&without_nul(&name_key(name)), &now, &millis(spacing)],
        )
        .await?;
        let at: i64 = turn.map_or(now, |r| r.get(0));
        Ok(Duration::from_millis((at - now).max(0) as u64))
    }

    async fn login_succeeded(&self, name: &str, ip: IpAddr, keep: usize) -> Result<()> {
        let c = self.client().await?;
        let name = without_nul(&name.to_lowercase()).into_owned();
        exec(
            &c,
            "INSERT INTO login_known (name, ip, at) VALUES ($1, $2, $3) \
             ON CONFLICT (name, ip) DO UPDATE SET at = EXCLUDED.at",
            &[&name, &ip.to_string(), &unix_millis()],
        )
        .await?;
        exec(
            &c,
            "DELETE FROM login_known WHERE name = $1 AND ip NOT IN \
             (SELECT ip FROM login_known WHERE name = $1 ORDER BY at DESC LIMIT $2)",
            &[&name, &(keep as i64)],
        )
        .await?;
        Ok(())
    }

    async fn prune_logins(&self, failures: Duration, known: Duration) -> Result<usize> {
        let c = self.client().await?;
        let now = unix_millis();
        let gone = exec(
            &c,
            "DELETE FROM login_failures WHERE last_failure < $1",
            &[&(now - millis(failures))],
        )
        .await?
            + exec(
                &c,
                "DELETE FROM login_known WHERE at < $1",
                &[&(now - millis(known))],
            )
            .await?;
        Ok(gone as usize)
    }
}

/// Counts one failure of a key: a count whose last failure is older than
/// the window starts again at one. The upsert locks the row, so nodes
/// counting at once all count.
const COUNT_FAILURE: &str = "INSERT INTO login_failures (key, failures, last_failure, next_slot) \
     VALUES ($1, 1, $2, $2) ON CONFLICT (key) DO UPDATE SET \
     failures = CASE WHEN login_failures.last_failure <= $2 - $3 THEN 1 \
                ELSE login_failures.failures + 1 END, \
     last_failure = $2 RETURNING failures";
