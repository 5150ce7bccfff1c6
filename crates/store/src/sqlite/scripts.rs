//! The embedded store's [`crate::Scripts`]. Sieve scripts and vacation memory.

use super::*;

#[async_trait]
impl Scripts for SqliteStore {
    async fn sieve_scripts(&self, account: AccountId) -> Result<Vec<SieveScript>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT name, active, length(CAST(content AS BLOB)) FROM sieve_scripts \
                     WHERE account_id = ?1 ORDER BY name",
                    [account],
                    |r| {
                        Ok(SieveScript {
                            name: r.get(0)?,
                            active: r.get(1)?,
                            size: r.get::<_, i64>(2)? as u64,
                        })
                    },
                )
            })
            .await
    }

    async fn sieve_script(&self, account: AccountId, name: &str) -> Result<Option<String>> {
        let name = name.to_string();
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT content FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn active_sieve_script(&self, account: AccountId) -> Result<Option<(String, String)>> {
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT name, content FROM sieve_scripts WHERE account_id = ?1 AND active = 1",
                    [account],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn put_sieve_script(&self, account: AccountId, name: &str, content: &str) -> Result<()> {
        check_script_name(name)?;
        let (name, content) = (name.to_string(), content.to_string());
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO sieve_scripts (account_id, name, content) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (account_id, name) DO UPDATE SET content = ?3",
                    params![account, name, content],
                )?;
                Ok(())
            })
            .await
    }

    async fn activate_sieve_script(&self, account: AccountId, name: Option<&str>) -> Result<()> {
        let name = name.map(str::to_string);
        self.db
            .write(move |c| {
                if let Some(name) = &name
                    && !script_exists(c, account, name)?
                {
                    return Err(Error::NoScript(name.clone()));
                }
                exec(
                    c,
                    "UPDATE sieve_scripts SET active = 0 WHERE account_id = ?1 AND active = 1",
                    [account],
                )?;
                if let Some(name) = &name {
                    exec(
                        c,
                        "UPDATE sieve_scripts SET active = 1 WHERE account_id = ?1 AND name = ?2",
                        params![account, name],
                    )?;
                }
                Ok(())
            })
            .await
    }

    async fn delete_sieve_script(&self, account: AccountId, name: &str) -> Result<()> {
        let name = name.to_string();
        self.db
            .write(move |c| {
                let active: bool = one(
                    c,
                    "SELECT active FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                    |r| r.get(0),
                )?
                .ok_or_else(|| Error::NoScript(name.clone()))?;
                if active {
                    return Err(Error::ScriptActive(name));
                }
                exec(
                    c,
                    "DELETE FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
                    params![account, name],
                )?;
                Ok(())
            })
            .await
    }

    async fn rename_sieve_script(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        check_script_name(to)?;
        let (from, to) = (from.to_string(), to.to_string());
        self.db
            .write(move |c| {
                if script_exists(c, account, &to)? {
                    return Err(Error::ScriptExists(to));
                }
                match exec(
                    c,
                    "UPDATE sieve_scripts SET name = ?3 WHERE account_id = ?1 AND name = ?2",
                    params![account, from, to],
                )? {
                    0 => Err(Error::NoScript(from)),
                    _ => Ok(()),
                }
            })
            .await
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
        self.db
            .write(move |c| {
                let until: Option<i64> = one(
                    c,
                    "SELECT until FROM vacation_replies \
                     WHERE account_id = ?1 AND handle = ?2 AND sender = ?3",
                    params![account, handle, sender],
                    |r| r.get(0),
                )?;
                if until.is_some_and(|u| u > now) {
                    return Ok(false);
                }
                exec(
                    c,
                    "INSERT INTO vacation_replies (account_id, handle, sender, until) \
                     VALUES (?1, ?2, ?3, ?4) \
                     ON CONFLICT (account_id, handle, sender) DO UPDATE SET until = ?4",
                    params![
                        account,
                        handle,
                        sender,
                        now + (days.min(365) as i64) * 86_400
                    ],
                )?;
                Ok(true)
            })
            .await
    }
}

fn script_exists(c: &Connection, account: AccountId, name: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM sieve_scripts WHERE account_id = ?1 AND name = ?2",
        params![account, name],
        |_| Ok(()),
    )?
    .is_some())
}
