//! [`crate::WebSessions`] on PostgreSQL: a session opened on one node works
//! on every other.

use std::time::Duration;

use super::accounts::{ACCOUNT_COLUMNS, account_from_row};
use super::traces::without_nul;
use super::*;
use crate::{WEB_SEEN_EVERY, millis, unix_millis};

#[async_trait::async_trait]
impl WebSessions for PgStore {
    async fn open_web_session(&self, s: &NewWebSession<'_>, max_per_account: usize) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let now = unix_millis();
        exec(
            &tx,
            "INSERT INTO web_sessions (key, account_id, csrf, started, last_seen, client, agent) \
             VALUES ($1, $2, $3, $4, $4, $5, $6)",
            &[
                &s.key,
                &s.account.0,
                &s.csrf,
                &now,
                &without_nul(s.client),
                &without_nul(s.agent),
            ],
        )
        .await?;
        exec(
            &tx,
            "DELETE FROM web_sessions WHERE account_id = $1 AND key NOT IN \
             (SELECT key FROM web_sessions WHERE account_id = $1 \
              ORDER BY last_seen DESC, started DESC LIMIT $2)",
            &[&s.account.0, &(max_per_account as i64)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn web_session(&self, key: &str, idle: Duration) -> Result<Option<WebSession>> {
        let c = self.client().await?;
        let sql = format!("{} WHERE key = $1", select_sessions());
        let Some(row) = one(&c, &sql, &[&without_nul(key)]).await? else {
            return Ok(None);
        };
        let session = session_from_row(&row)?;
        let now = unix_millis();
        if session.last_seen < now - millis(idle) {
            exec(
                &c,
                "DELETE FROM web_sessions WHERE key = $1",
                &[&session.key],
            )
            .await?;
            return Ok(None);
        }
        if session.last_seen < now - millis(WEB_SEEN_EVERY) {
            exec(
                &c,
                "UPDATE web_sessions SET last_seen = $2 WHERE key = $1",
                &[&session.key, &now],
            )
            .await?;
        }
        Ok(Some(session))
    }

    async fn web_sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>> {
        let c = self.client().await?;
        let sql = format!(
            "{} WHERE account_id = $1 ORDER BY last_seen DESC",
            select_sessions()
        );
        all(&c, &sql, &[&account.0])
            .await?
            .iter()
            .map(session_from_row)
            .collect()
    }

    async fn end_web_session(&self, key: &str) -> Result<bool> {
        let c = self.client().await?;
        Ok(exec(
            &c,
            "DELETE FROM web_sessions WHERE key = $1",
            &[&without_nul(key)],
        )
        .await?
            > 0)
    }

    async fn end_web_sessions(&self, account: AccountId, keep: Option<&str>) -> Result<usize> {
        let c = self.client().await?;
        let keep = without_nul(keep.unwrap_or(""));
        Ok(exec(
            &c,
            "DELETE FROM web_sessions WHERE account_id = $1 AND key != $2",
            &[&account.0, &keep],
        )
        .await? as usize)
    }

    async fn prune_web_sessions(&self, idle: Duration) -> Result<usize> {
        let c = self.client().await?;
        Ok(exec(
            &c,
            "DELETE FROM web_sessions WHERE last_seen < $1",
            &[&(unix_millis() - millis(idle))],
        )
        .await? as usize)
    }
}

/// Sessions with their accounts' columns, for [`session_from_row`].
fn select_sessions() -> String {
    format!(
        "SELECT key, csrf, client, agent, started, last_seen, {ACCOUNT_COLUMNS} \
         FROM web_sessions JOIN accounts ON accounts.id = web_sessions.account_id"
    )
}

fn session_from_row(r: &Row) -> Result<WebSession> {
    Ok(WebSession {
        key: r.try_get("key")?,
        account: account_from_row(r)?,
        csrf: r.try_get("csrf")?,
        client: r.try_get("client")?,
        agent: r.try_get("agent")?,
        started: r.try_get("started")?,
        last_seen: r.try_get("last_seen")?,
    })
}
