//! [`crate::Accounts`] on PostgreSQL: accounts, aliases, settings and
//! logging in.

use std::collections::HashMap;

use async_trait::async_trait;

use super::mailboxes::insert_mailbox;
use super::*;
use crate::names::{normalize_address, normalize_alias};

/// Every account column, in the order [`account_from_row`] reads them.
pub(super) const ACCOUNT_COLUMNS: &str = "id, address, is_admin, quota_bytes, quota_messages, pop3_delete, \
     sent_copy, junk_report, junk_report_at, referral";

#[async_trait]
impl Accounts for PgStore {
    async fn create_account(&self, address: &str, password: &str, admin: bool) -> Result<Account> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if taken(&tx, &address).await? {
            return Err(Error::AccountExists(address));
        }
        let id: i64 = tx
            .query_one(
                "INSERT INTO accounts (address, password_hash, is_admin, created_at) \
                 VALUES ($1, $2, $3, $4) RETURNING id",
                &[&address, &hash, &admin, &unix_now()],
            )
            .await
            .map_err(|e| exists_or(e, &address))?
            .get(0);
        let id = AccountId(id);
        for (name, special_use) in DEFAULT_MAILBOXES {
            insert_mailbox(&tx, id, name, *special_use).await?;
            exec(
                &tx,
                "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2)",
                &[&id.0, name],
            )
            .await?;
        }
        tx.commit().await?;
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
    }

    async fn list_accounts(&self) -> Result<Vec<Account>> {
        let c = self.client().await?;
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address");
        all(&c, &sql, &[])
            .await?
            .iter()
            .map(account_from_row)
            .collect()
    }

    async fn account(&self, address: &str) -> Result<Option<Account>> {
        Ok(self.account_row(address).await?.map(|(a, _)| a))
    }

    async fn add_alias(&self, alias: &str, account: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let account = normalize_address(account)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        if taken(&tx, &alias).await? {
            return Err(Error::AliasExists(alias));
        }
        let id: i64 = one(
            &tx,
            "SELECT id FROM accounts WHERE address = $1",
            &[&account],
        )
        .await?
        .ok_or(Error::NoAccount(account))?
        .get(0);
        exec(
            &tx,
            "INSERT INTO aliases (address, account_id) VALUES ($1, $2)",
            &[&alias, &id],
        )
        .await
        .map_err(|e| match e {
            Error::Db(_) => Error::AliasExists(alias.clone()),
            e => e,
        })?;
        tx.commit().await?;
        Ok(())
    }

    async fn remove_alias(&self, alias: &str) -> Result<()> {
        let alias = normalize_alias(alias)?;
        let c = self.client().await?;
        match exec(&c, "DELETE FROM aliases WHERE address = $1", &[&alias]).await? {
            0 => Err(Error::NoAlias(alias)),
            _ => Ok(()),
        }
    }

    async fn aliases(&self) -> Result<Vec<(String, String)>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT l.address, a.address FROM aliases l \
             JOIN accounts a ON a.id = l.account_id ORDER BY l.address",
            &[],
        )
        .await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    async fn catch_all(&self, domain: &str) -> Result<Option<Account>> {
        let alias = format!("@{}", domain.to_lowercase());
        let c = self.client().await?;
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS} FROM accounts \
             WHERE id = (SELECT account_id FROM aliases WHERE address = $1)"
        );
        one(&c, &sql, &[&alias])
            .await?
            .as_ref()
            .map(account_from_row)
            .transpose()
    }

    async fn has_domain(&self, domain: &str) -> Result<bool> {
        let domain = domain.to_lowercase();
        let c = self.client().await?;
        // Compared as text after the '@' (addresses hold one), the
        // expression of the indexes accounts_domain and aliases_domain.
        Ok(one(
            &c,
            "SELECT 1 FROM accounts WHERE split_part(address, '@', 2) = $1 UNION ALL \
             SELECT 1 FROM aliases WHERE split_part(address, '@', 2) = $1 LIMIT 1",
            &[&domain],
        )
        .await?
        .is_some())
    }

    async fn set_password(&self, address: &str, password: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let hash = password::hash(password.to_string()).await?;
        self.update_account(
            "UPDATE accounts SET password_hash = $2 WHERE address = $1",
            address,
            &[&hash],
        )
        .await
    }

    async fn set_pop3_delete(&self, address: &str, mode: Option<Pop3Delete>) -> Result<()> {
        self.set_setting("pop3_delete", address, mode.map(Pop3Delete::as_str))
            .await
    }

    async fn set_referral(&self, address: &str, url: Option<&str>) -> Result<()> {
        self.set_setting("referral", address, url).await
    }

    async fn set_sent_copy(&self, address: &str, rule: Option<SentCopy>) -> Result<()> {
        self.set_setting("sent_copy", address, rule.map(SentCopy::as_str))
            .await
    }

    async fn remove_account(&self, address: &str) -> Result<()> {
        let address = normalize_address(address)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let id: i64 = one(
            &tx,
            "SELECT id FROM accounts WHERE address = $1",
            &[&address],
        )
        .await?
        .ok_or_else(|| Error::NoAccount(address.clone()))?
        .get(0);
        exec(
            &tx,
            "INSERT INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
             WHERE mailbox_id IN (SELECT id FROM mailboxes WHERE account_id = $1) \
            ",
            &[&id],
        )
        .await?;
        exec(
            &tx,
            "INSERT INTO blob_gc (hash) SELECT DISTINCT blob FROM training \
             WHERE account_id = $1",
            &[&id],
        )
        .await?;
        exec(&tx, "DELETE FROM accounts WHERE id = $1", &[&id]).await?;
        // Its Bayes model too: an id is never given again here, but the
        // model is the account's and goes with it.
        exec(&tx, "DELETE FROM bayes_tokens WHERE scope = $1", &[&id]).await?;
        exec(&tx, "DELETE FROM bayes_totals WHERE scope = $1", &[&id]).await?;
        // Every node ends the account's sessions when it hears this.
        let account = AccountId(id);
        notify(
            &tx,
            self.origin,
            account,
            MailboxId(0),
            Change::ACCOUNT_REMOVED,
        )
        .await?;
        tx.commit().await?;
        self.publish(account, MailboxId(0), Change::ACCOUNT_REMOVED);
        self.collect_garbage().await.map(|_| ())
    }

    async fn set_junk_report(&self, address: &str, on: Option<bool>) -> Result<()> {
        let value = on.map(|on| if on { "on" } else { "off" });
        self.set_setting("junk_report", address, value).await
    }

    async fn junk_report_sent(&self, account: AccountId, up_to: i64) -> Result<()> {
        let c = self.client().await?;
        exec(
            &c,
            "UPDATE accounts SET junk_report_at = GREATEST(junk_report_at, $2) WHERE id = $1",
            &[&account.0, &up_to],
        )
        .await?;
        Ok(())
    }

    async fn secret(&self, name: &str, fresh: Vec<u8>) -> Result<Vec<u8>> {
        let c = self.client().await?;
        exec(
            &c,
            "INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&name, &fresh],
        )
        .await?;
        Ok(
            one(&c, "SELECT value FROM secrets WHERE name = $1", &[&name])
                .await?
                .ok_or_else(|| Error::Corrupt(format!("the secret {name} vanished")))?
                .get(0),
        )
    }

    async fn use_link(&self, id: &str, expires: i64) -> Result<bool> {
        let c = self.client().await?;
        exec(
            &c,
            "DELETE FROM used_links WHERE expires < $1",
            &[&unix_now()],
        )
        .await?;
        let fresh = exec(
            &c,
            "INSERT INTO used_links (id, expires) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            &[&id, &expires],
        )
        .await?;
        Ok(fresh == 1)
    }

    async fn set_quota(&self, address: &str, bytes: u64, messages: u64) -> Result<()> {
        let address = normalize_address(address)?;
        let bytes = bytes.min(i64::MAX as u64) as i64;
        let messages = messages.min(i64::MAX as u64) as i64;
        self.update_account(
            "UPDATE accounts SET quota_bytes = $2, quota_messages = $3 WHERE address = $1",
            address,
            &[&bytes, &messages],
        )
        .await
    }

    async fn usage(&self, account: AccountId) -> Result<Usage> {
        let c = self.client().await?;
        super::quota::usage_in(&c, account).await
    }

    async fn set_admin(&self, address: &str, admin: bool) -> Result<()> {
        let address = normalize_address(address)?;
        self.update_account(
            "UPDATE accounts SET is_admin = $2 WHERE address = $1",
            address,
            &[&admin],
        )
        .await
    }

    async fn account_overview(&self) -> Result<Vec<AccountOverview>> {
        let mut c = self.client().await?;
        // One snapshot for the three reads.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let sql = format!("SELECT {ACCOUNT_COLUMNS} FROM accounts ORDER BY address");
        let accounts = all(&tx, &sql, &[])
            .await?
            .iter()
            .map(account_from_row)
            .collect::<Result<Vec<_>>>()?;
        let usage: HashMap<i64, (u64, u64)> = all(
            &tx,
            "SELECT mb.account_id, count(*), coalesce(sum(m.size), 0)::BIGINT \
             FROM messages m JOIN mailboxes mb ON mb.id = m.mailbox_id \
             GROUP BY mb.account_id",
            &[],
        )
        .await?
        .iter()
        .map(|r| {
            let (n, bytes): (i64, i64) = (r.get(1), r.get(2));
            (r.get(0), (n.max(0) as u64, bytes.max(0) as u64))
        })
        .collect();
        let mut logins: HashMap<i64, Vec<(String, i64)>> = HashMap::new();
        for r in all(
            &tx,
            "SELECT account_id, door, at FROM logins ORDER BY account_id, door",
            &[],
        )
        .await?
        {
            logins
                .entry(r.get(0))
                .or_default()
                .push((r.get(1), r.get(2)));
        }
        tx.commit().await?;
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
    }

    async fn record_login(&self, account: AccountId, door: &str) -> Result<()> {
        let c = self.client().await?;
        exec(
            &c,
            "INSERT INTO logins (account_id, door, at) VALUES ($1, $2, $3) \
             ON CONFLICT (account_id, door) DO UPDATE SET at = EXCLUDED.at",
            &[&account.0, &door, &unix_now()],
        )
        .await?;
        Ok(())
    }

    async fn take_maildrop(&self, account: AccountId) -> Result<bool> {
        // On the node's liveness connection: PostgreSQL lets the lock go
        // when the node dies. Session locks nest within one connection,
        // so two sessions of one node are kept apart by the door's own
        // lock, taken first.
        let held = self.liveness().await?;
        let client = held
            .as_ref()
            .ok_or_else(|| Error::Db("the liveness connection is gone".into()))?;
        let taken: bool = client
            .query_one("SELECT pg_try_advisory_lock($1)", &[&maildrop_key(account)])
            .await?
            .get(0);
        if taken {
            self.maildrops_held().insert(account);
        }
        Ok(taken)
    }

    async fn release_maildrop(&self, account: AccountId) -> Result<()> {
        self.maildrops_held().remove(&account);
        let held = self.liveness().await?;
        if let Some(client) = held.as_ref() {
            client
                .execute("SELECT pg_advisory_unlock($1)", &[&maildrop_key(account)])
                .await?;
        }
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

impl PgStore {
    /// The account `address` (or an alias of it) names, with its password hash.
    async fn account_row(&self, address: &str) -> Result<Option<(Account, String)>> {
        let Ok(address) = normalize_address(address) else {
            return Ok(None);
        };
        let c = self.client().await?;
        let sql = format!(
            "SELECT {ACCOUNT_COLUMNS}, password_hash FROM accounts WHERE address = $1 \
             OR id = (SELECT account_id FROM aliases WHERE address = $1)"
        );
        match one(&c, &sql, &[&address]).await? {
            Some(r) => Ok(Some((account_from_row(&r)?, r.get("password_hash")))),
            None => Ok(None),
        }
    }

    /// One of an account's own settings (`None`: the server's applies).
    async fn set_setting(&self, column: &str, address: &str, value: Option<&str>) -> Result<()> {
        let address = normalize_address(address)?;
        let sql = format!("UPDATE accounts SET {column} = $2 WHERE address = $1");
        self.update_account(&sql, address, &[&value]).await
    }

    /// Runs `sql` on the account `address` (`$1`; `values` are `$2`...);
    /// `NoAccount` when there is none.
    async fn update_account(
        &self,
        sql: &str,
        address: String,
        values: &[&(dyn ToSql + Sync)],
    ) -> Result<()> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&address];
        params.extend_from_slice(values);
        let c = self.client().await?;
        match exec(&c, sql, &params).await? {
            0 => Err(Error::NoAccount(address.clone())),
            _ => Ok(()),
        }
    }
}

/// The advisory lock key of an account's maildrop: the account id in the
/// low 48 bits, a class of its own above them.
pub(super) fn maildrop_key(account: AccountId) -> i64 {
    (0x4d44_i64 << 48) | (account.0 & 0xffff_ffff_ffff)
}

/// Whether an account or an alias has the address.
async fn taken(c: &impl GenericClient, address: &str) -> Result<bool> {
    Ok(one(
        c,
        "SELECT 1 FROM accounts WHERE address = $1 UNION SELECT 1 FROM aliases WHERE address = $1",
        &[&address],
    )
    .await?
    .is_some())
}

/// Two nodes adding one address at once: the second's insert fails on the
/// unique address, and is told so.
fn exists_or(e: tokio_postgres::Error, address: &str) -> Error {
    match e.code() {
        Some(code) if code == &SqlState::UNIQUE_VIOLATION => Error::AccountExists(address.into()),
        _ => e.into(),
    }
}

pub(super) fn account_from_row(r: &Row) -> Result<Account> {
    Ok(Account {
        id: AccountId(r.try_get("id")?),
        address: r.try_get("address")?,
        is_admin: r.try_get("is_admin")?,
        quota_bytes: r.try_get("quota_bytes")?,
        quota_messages: r.try_get("quota_messages")?,
        pop3_delete: r
            .try_get::<_, Option<String>>("pop3_delete")?
            .as_deref()
            .and_then(Pop3Delete::parse),
        sent_copy: r
            .try_get::<_, Option<String>>("sent_copy")?
            .as_deref()
            .and_then(SentCopy::parse),
        junk_report: r
            .try_get::<_, Option<String>>("junk_report")?
            .map(|v| v == "on"),
        junk_report_at: r.try_get("junk_report_at")?,
        referral: r.try_get("referral")?,
    })
}
