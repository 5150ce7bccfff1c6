//! [`crate::Scripts`] on PostgreSQL: Sieve scripts and vacation memory.

use super::*;
use crate::names::check_script_name;

#[async_trait::async_trait]
impl Scripts for PgStore {
    async fn sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScript>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT name, active, octet_length(content)::BIGINT FROM sieve_scripts \
             WHERE account_id = $1 ORDER BY name",
            &[&account.0],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(SieveScript {
                name: r.try_get(0)?,
                active: r.try_get(1)?,
                size: r.try_get::<_, i64>(2)?.max(0) as u64,
            })
        })
        .collect()
    }

    async fn sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let c = self.client().await?;
        match one(
            &c,
            "SELECT content FROM sieve_scripts WHERE account_id = $1 AND name = $2",
            &[&account.0, &name],
        )
        .await?
        {
            Some(r) => Ok(Some(r.try_get(0)?)),
            None => Ok(None),
        }
    }

    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>> {
        let c = self.client().await?;
        match one(
            &c,
            "SELECT name, content FROM sieve_scripts WHERE account_id = $1 AND active",
            &[&account.0],
        )
        .await?
        {
            Some(r) => Ok(Some((r.try_get(0)?, r.try_get(1)?))),
            None => Ok(None),
        }
    }

    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()> {
        check_script_name(name)?;
        let c = self.client().await?;
        exec(
            &c,
            "INSERT INTO sieve_scripts (account_id, name, content) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, name) DO UPDATE SET content = EXCLUDED.content",
            &[&account.0, &name, &content],
        )
        .await?;
        Ok(())
    }

    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // The account's scripts locked, in name order: two nodes activating
        // at once take turns (the later choice wins, as it would one after
        // the other) instead of the second failing on the one-active index.
        let names: Vec<String> = all(
            &tx,
            "SELECT name FROM sieve_scripts WHERE account_id = $1 ORDER BY name FOR UPDATE",
            &[&account.0],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
        if let Some(name) = name
            && !names.iter().any(|n| n == name)
        {
            return Err(Error::NoScript(name.to_string()));
        }
        exec(
            &tx,
            "UPDATE sieve_scripts SET active = FALSE WHERE account_id = $1 AND active",
            &[&account.0],
        )
        .await?;
        if let Some(name) = name {
            exec(
                &tx,
                "UPDATE sieve_scripts SET active = TRUE WHERE account_id = $1 AND name = $2",
                &[&account.0, &name],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Locked, so that it cannot be activated before it goes.
        let active: bool = one(
            &tx,
            "SELECT active FROM sieve_scripts WHERE account_id = $1 AND name = $2 FOR UPDATE",
            &[&account.0, &name],
        )
        .await?
        .ok_or_else(|| Error::NoScript(name.to_string()))?
        .try_get(0)?;
        if active {
            return Err(Error::ScriptActive(name.to_string()));
        }
        exec(
            &tx,
            "DELETE FROM sieve_scripts WHERE account_id = $1 AND name = $2",
            &[&account.0, &name],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        check_script_name(to)?;
        let c = self.client().await?;
        if script_exists(&c, account, to).await? {
            return Err(Error::ScriptExists(to.to_string()));
        }
        // Another node may make `to` in between: the key says so then.
        match c
            .execute(
                "UPDATE sieve_scripts SET name = $3 WHERE account_id = $1 AND name = $2",
                &[&account.0, &from, &to],
            )
            .await
        {
            Ok(0) => Err(Error::NoScript(from.to_string())),
            Ok(_) => Ok(()),
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                Err(Error::ScriptExists(to.to_string()))
            }
            Err(e) => Err(e.into()),
        }
    }

    async fn vacation_due(
        &self,
        account: AccountId,
        handle: &str,
        sender: &str,
        days: u64,
    ) -> Result<bool> {
        use sha2::Digest;
        let handle = hex::encode(sha2::Sha256::digest(handle.as_bytes()));
        let sender = sender.to_lowercase();
        let now = unix_now();
        let until = now + (days.min(365) as i64) * 86_400;
        let c = self.client().await?;
        // One statement: a reply noted by another node meanwhile holds the
        // row until it commits, and then this one finds it not due.
        Ok(one(
            &c,
            "INSERT INTO vacation_replies (account_id, handle, sender, until) \
             VALUES ($1, $2, $3, $4) \
             ON CONFLICT (account_id, handle, sender) DO UPDATE SET until = EXCLUDED.until \
             WHERE vacation_replies.until <= $5 \
             RETURNING 1",
            &[&account.0, &handle, &sender, &until, &now],
        )
        .await?
        .is_some())
    }
}

async fn script_exists(c: &impl GenericClient, account: AccountId, name: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM sieve_scripts WHERE account_id = $1 AND name = $2",
        &[&account.0, &name],
    )
    .await?
    .is_some())
}
