//! The embedded store's [`crate::WebSessions`].

use super::*;
use crate::{WEB_SEEN_EVERY, millis, unix_millis};

#[async_trait]
impl WebSessions for SqliteStore {
    async fn open_web_session(&self, s: &NewWebSession<'_>, max_per_account: usize) -> Result<()> {
        let (key, account, csrf) = (s.key.to_string(), s.account, s.csrf.to_string());
        let (client, agent) = (s.client.to_string(), s.agent.to_string());
        let keep = max_per_account as i64;
        self.db
            .write(move |c| {
                let now = unix_millis();
                exec(
                    c,
                    "INSERT INTO web_sessions (key, account_id, csrf, started, last_seen, client, agent) \
                     VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)",
                    params![key, account, csrf, now, client, agent],
                )?;
                exec(
                    c,
                    "DELETE FROM web_sessions WHERE account_id = ?1 AND key NOT IN \
                     (SELECT key FROM web_sessions WHERE account_id = ?1 \
                      ORDER BY last_seen DESC, started DESC LIMIT ?2)",
                    params![account, keep],
                )?;
                Ok(())
            })
            .await
    }

    async fn web_session(&self, key: &str, idle: Duration) -> Result<Option<WebSession>> {
        let key = key.to_string();
        let sql = format!("{SELECT_SESSIONS} WHERE key = ?1");
        let Some(session) = self
            .db
            .read(move |c| one(c, &sql, [key], session_from_row))
            .await?
        else {
            return Ok(None);
        };
        let now = unix_millis();
        if session.last_seen < now - millis(idle) {
            self.end_web_session(&session.key).await?;
            return Ok(None);
        }
        if session.last_seen < now - millis(WEB_SEEN_EVERY) {
            let key = session.key.clone();
            self.db
                .write(move |c| {
                    exec(
                        c,
                        "UPDATE web_sessions SET last_seen = ?2 WHERE key = ?1",
                        params![key, now],
                    )
                })
                .await?;
        }
        Ok(Some(session))
    }

    async fn web_sessions_of(&self, account: AccountId) -> Result<Vec<WebSession>> {
        let sql = format!("{SELECT_SESSIONS} WHERE account_id = ?1 ORDER BY last_seen DESC");
        self.db
            .read(move |c| all(c, &sql, [account], session_from_row))
            .await
    }

    async fn end_web_session(&self, key: &str) -> Result<bool> {
        let key = key.to_string();
        self.db
            .write(move |c| Ok(exec(c, "DELETE FROM web_sessions WHERE key = ?1", [key])? > 0))
            .await
    }

    async fn end_web_sessions(&self, account: AccountId, keep: Option<&str>) -> Result<usize> {
        let keep = keep.unwrap_or("").to_string();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "DELETE FROM web_sessions WHERE account_id = ?1 AND key != ?2",
                    params![account, keep],
                )
            })
            .await
    }

    async fn prune_web_sessions(&self, idle: Duration) -> Result<usize> {
        let before = unix_millis() - millis(idle);
        self.db
            .write(move |c| exec(c, "DELETE FROM web_sessions WHERE last_seen < ?1", [before]))
            .await
    }
}

/// Sessions with their accounts' columns, for [`session_from_row`].
const SELECT_SESSIONS: &str = "SELECT key, csrf, client, agent, started, last_seen, \
     accounts.* FROM web_sessions JOIN accounts ON accounts.id = web_sessions.account_id";

fn session_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<WebSession> {
    Ok(WebSession {
        key: r.get("key")?,
        account: account_from_row(r)?,
        csrf: r.get("csrf")?,
        client: r.get("client")?,
        agent: r.get("agent")?,
        started: r.get("started")?,
        last_seen: r.get("last_seen")?,
    })
}
