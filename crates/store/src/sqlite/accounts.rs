//! The embedded store's [`crate::Accounts`]. Accounts, aliases, settings and logging in.

use std::collections::HashMap;

use super::*;

#[async_trait]
impl Accounts for SqliteStore {
    async fn create_account(&self, address: &str, password: &str, admin: bool) -> Result<Account> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        self.db
            .write(move |c| {
                if taken(c, &address)? {
                    return Err(Error::AccountExists(address));
                }
                let id: AccountId = c
                    .prepare_cached(
                        "INSERT INTO accounts (address, password_hash, is_admin, created_at) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING id",
                    )?
                    .query_row(params![address, hash, admin, unix_now()], |r| r.get(0))?;
                for (name, special_use) in DEFAULT_MAILBOXES {
                    insert_mailbox(c, id, name, *special_use)?;
                    exec(
                        c,
                        "INSERT INTO subscriptions (account_id, name) VALUES (?1, ?2)",
                        params![id, name],
                    )?;
                }
                Ok(Account {
                    id,
                    address,
                    is_admin: admin,
                    quota_bytes: 0,
                    quota_messages: 0,
                    pop3_delete: None,
                    sent_copy: None,
                    junk_report: None,
                    junk_report_at: 0,
                    referral: None,
                })
            })
            .await
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        self.db
            .read(|c| {
                all(
                    c,
                    select_accounts!("", "ORDER BY address"),
                    [],
                    account_from_row,
                )
            })
            .await
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        Ok(self.account_row(address).await?.map(|(a, _)| a))
    }

    async fn add_alias(&self, alias: &str, account: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let account = normalize_address(account)?;
        self.db
            .write(move |c| {
                if taken(c, &alias)? {
                    return Err(Error::AliasExists(alias));
                }
                let id: i64 = one(
                    c,
                    "SELECT id FROM accounts WHERE address = ?1",
                    [&account],
                    |r| r.get(0),
                )?
                .ok_or(Error::NoAccount(account))?;
                exec(
                    c,
                    "INSERT INTO aliases (address, account_id) VALUES (?1, ?2)",
                    params![alias, id],
                )?;
                Ok(())
            })
            .await
    }

    async fn remove_alias(&self, alias: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        self.db
            .write(
                move |c| match exec(c, "DELETE FROM aliases WHERE address = ?1", [&alias])? {
                    0 => Err(Error::NoAlias(alias)),
                    _ => Ok(()),
                },
            )
            .await
    }

    async fn aliases(&self) -> Result<Vec<(String, String)>> {
        self.db
            .read(|c| {
                all(
                    c,
                    "SELECT l.address, a.address FROM aliases l \
                     JOIN accounts a ON a.id = l.account_id ORDER BY l.address",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await
    }

    async fn catch_all(&self, domain: &str) -> Result<Option<Account>> {
        let alias = format!("@{}", domain.to_lowercase());
        self.db
            .read(move |c| {
                one(
                    c,
                    select_accounts!(
                        "",
                        "WHERE id = (SELECT account_id FROM aliases WHERE address = ?1)"
                    ),
                    [alias],
                    account_from_row,
                )
            })
            .await
    }

    async fn has_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.to_lowercase();
        self.db
            .read(move |c| {
                // The expression of the indexes accounts_domain and
                // aliases_domain (migration 0022), so no row is scanned.
                Ok(one(
                    c,
                    "SELECT 1 FROM accounts WHERE substr(address, instr(address, '@') + 1) = ?1 \
                     UNION ALL SELECT 1 FROM aliases \
                     WHERE substr(address, instr(address, '@') + 1) = ?1 LIMIT 1",
                    [domain],
                    |_| Ok(()),
                )?
                .is_some())
            })
            .await
    }

    async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        self.db
            .write(move |c| {
                match exec(
                    c,
                    "UPDATE accounts SET password_hash = ?1 WHERE address = ?2",
                    params![hash, address],
                )? {
                    0 => Err(Error::NoAccount(address)),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn set_pop3_delete(&self, address: &str, mode: Option<Pop3Delete>) -> Result<()> {
        self.set_account_setting(
            address,
            AccountSetting::Pop3Delete,
            mode.map(Pop3Delete::as_str),
        )
        .await
    }

    async fn set_referral(&self, address: &str, url: Option<&str>) -> Result<()> {
        self.set_account_setting(address, AccountSetting::Referral, url)
            .await
    }

    async fn set_sent_copy(&self, address: &str, rule: Option<SentCopy>) -> Result<()> {
        self.set_account_setting(
            address,
            AccountSetting::SentCopy,
            rule.map(SentCopy::as_str),
        )
        .await
    }

    async fn set_junk_report(&self, address: &str, on: Option<bool>) -> Result<()> {
        self.set_account_setting(
            address,
            AccountSetting::JunkReport,
            on.map(|on| if on { "on" } else { "off" }),
        )
        .await
    }

    async fn junk_report_sent(&self, account: AccountId, up_to: i64) -> Result<()> {
        self.db
            .write(move |c| {
                exec(
                    c,
                    "UPDATE accounts SET junk_report_at = max(junk_report_at, ?2) WHERE id = ?1",
                    params![account, up_to],
                )?;
                Ok(())
            })
            .await
    }

    async fn secret(&self, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>> {
        let name = name.to_string();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO secrets (name, value) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![name, fresh],
                )?;
                one(
                    c,
                    "SELECT value FROM secrets WHERE name = ?1",
                    [&name],
                    |r| r.get(0),
                )?
                .ok_or_else(|| Error::Corrupt(format!("the secret {name} vanished")))
            })
            .await
    }

    async fn use_link(&self, id: &str, expires: i64) -> Result<bool> {
        let id = id.to_string();
        self.db
            .write(move |c| {
                exec(c, "DELETE FROM used_links WHERE expires < ?1", [unix_now()])?;
                let fresh = exec(
                    c,
                    "INSERT INTO used_links (id, expires) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
                    params![id, expires],
                )?;
                Ok(fresh == 1)
            })
            .await
    }

    async fn set_quota(&self, address: &str, bytes: u64, messages: u64) -> Result<()> {
        let address = normalize_address(address)?;
        let (bytes, messages) = (
            bytes.min(i64::MAX as u64) as i64,
            messages.min(i64::MAX as u64) as i64,
        );
        self.db
            .write(move |c| {
                match exec(
                    c,
                    "UPDATE accounts SET quota_bytes = ?2, quota_messages = ?3 WHERE address = ?1",
                    params![address, bytes, messages],
                )? {
                    0 => Err(Error::NoAccount(address)),
                    _ => Ok(()),
                }
            })
            .await
    }

    async fn usage(&self, account: AccountId) -> Result<Usage> {
        self.db.read(move |c| quota::usage_in(c, account)).await
    }

    async fn set_admin(&self, address: &str, admin: bool) -> Result<()> {
        let address = normalize_address(address)?;
        self.db
            .write(move |c| {
                let changed = exec(
                    c,
                    "UPDATE accounts SET is_admin = ?2 WHERE address = ?1",
                    params![address, admin],
                )?;
                if changed == 0 {
                    return Err(Error::NoAccount(address));
                }
                Ok(())
            })
            .await
    }

    async fn account_overview(&self) -> Result<Vec<AccountOverview>> {
        self.db
            .read(|c| {
                let accounts = all(
                    c,
                    select_accounts!("", "ORDER BY address"),
                    [],
                    account_from_row,
                )?;
                let usage: HashMap<i64, (u64, u64)> = all(
                    c,
                    "SELECT mb.account_id, count(*), coalesce(sum(m.size), 0) \
                     FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id \
                     GROUP BY mb.account_id",
                    [],
                    |r| {
                        let (n, bytes): (i64, i64) = (r.get(1)?, r.get(2)?);
                        Ok((r.get(0)?, (n.max(0) as u64, bytes.max(0) as u64)))
                    },
                )?
                .into_iter()
                .collect();
                let mut logins: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
                for (id, door, at) in all(
                    c,
                    "SELECT account_id, door, at FROM logins ORDER BY account_id, door",
                    [],
                    |r| Ok((r.get::<_, i64>(0)?, r.get(1)?, r.get(2)?)),
                )? {
                    logins.entry(id).or_default().push((door, at));
                }
                Ok(accounts
                    .into_iter()
                    .map(|account| {
                        let (messages, bytes) = usage.get(&account.id.0).copied().unwrap_or((0, 0));
                        let logins = logins.remove(&account.id.0).unwrap_or_default();
                        AccountOverview {
                            account,
                            messages,
                            bytes,
                            logins,
                        }
                    })
                    .collect())
            })
            .await
    }

    async fn record_login(&self, account: AccountId, door: &str) -> Result<()> {
        let door = door.to_string();
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO logins (account_id, door, at) VALUES (?1, ?2, ?3) \
                     ON CONFLICT (account_id, door) DO UPDATE SET at = ?3",
                    params![account, door, unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let origin = self.origin;
        let id = self
            .db
            .write(move |c| {
                let id: i64 = one(
                    c,
                    "SELECT id FROM accounts WHERE address = ?1",
                    [&address],
                    |r| r.get(0),
                )?
                .ok_or_else(|| Error::NoAccount(address.clone()))?;
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
                     WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = ?1)",
                    [id],
                )?;
                exec(c, "DELETE FROM accounts WHERE id = ?1", [id])?;
                // Its Bayes model too: ids may be given again to a new account.
                exec(c, "DELETE FROM bayes_tokens WHERE scope = ?1", [id])?;
                exec(c, "DELETE FROM bayes_totals WHERE scope = ?1", [id])?;
                // Told to every process, so that each ends the account's
                // sessions (the feed's watcher relays it).
                record_change(
                    c,
                    origin,
                    AccountId(id),
                    MailboxId(0),
                    Change::ACCOUNT_REMOVED,
                )?;
                Ok(id)
            })
            .await?;
        self.publish(AccountId(id), MailboxId(0), Change::ACCOUNT_REMOVED);
        self.collect_soon().await
    }

    async fn take_maildrop(&self, _account: AccountId) -> Result<bool> {
        // One `serve` process serves an embedded store: the POP3 door's
        // own lock is the whole of it.
        Ok(true)
    }

    async fn release_maildrop(&self, _account: AccountId) -> Result<()> {
        Ok(())
    }

    async fn authenticate(&self, address: &str, password: &str) -> Result<Option<Account>> {
        let row = self.account_row(address).await?;
        let (account, stored) = match row {
            Some((account, hash)) => (Some(account), Some(hash)),
            None => (None, None),
        };
        if self.logins.verify(password.to_string(), stored).await {
            Ok(account)
        } else {
            Ok(None)
        }
    }
}

/// Whether an account or an alias has the address.
pub(super) fn taken(c: &Connection, address: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM accounts WHERE address = ?1 UNION SELECT 1 FROM aliases WHERE address = ?1",
        [address],
        |_| Ok(()),
    )?
    .is_some())
}

pub(super) fn account_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Account> {
    Ok(Account {
        id: r.get("id")?,
        address: r.get("address")?,
        is_admin: r.get("is_admin")?,
        quota_bytes: r.get("quota_bytes")?,
        quota_messages: r.get("quota_messages")?,
        pop3_delete: r
            .get::<_, Option<String>>("pop3_delete")?
            .as_deref()
            .and_then(Pop3Delete::parse),
        sent_copy: r
            .get::<_, Option<String>>("sent_copy")?
            .as_deref()
            .and_then(SentCopy::parse),
        junk_report: r
            .get::<_, Option<String>>("junk_report")?
            .map(|v| v == "on"),
        junk_report_at: r.get("junk_report_at")?,
        referral: r.get("referral")?,
    })
}
