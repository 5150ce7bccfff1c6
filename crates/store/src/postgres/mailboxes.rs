//! [`crate::Mailboxes`] on PostgreSQL: the folder tree, subscriptions,
//! status and \Recent.

use async_trait::async_trait;

use super::messages::move_in_tx;
use super::*;
use crate::names::{normalize_mailbox_name, refuse_default};

/// Every mailbox column, in the order [`mailbox_from_row`] reads them.
const MAILBOX_COLUMNS: &str = "id, account_id, name, special_use, uidvalidity, uidnext, \
     highestmodseq, EXISTS (SELECT 1 FROM subscriptions s WHERE s.account_id = mailboxes.account_id \
     AND s.name = mailboxes.name) AS subscribed";

#[async_trait]
impl Mailboxes for PgStore {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        let c = self.client().await?;
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 ORDER BY name");
        all(&c, &sql, &[&account.0])
            .await?
            .iter()
            .map(mailbox_from_row)
            .collect()
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = normalize_mailbox_name(name)?;
        let c = self.client().await?;
        let sql =
            format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE account_id = $1 AND name = $2");
        one(&c, &sql, &[&account.0, &name])
            .await?
            .as_ref()
            .map(mailbox_from_row)
            .transpose()
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_mailbox_name(name)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        lock_tree(&tx, account).await?;
        if mailbox_id(&tx, account, &name).await?.is_some() {
            return Err(Error::MailboxExists(name));
        }
        create_parents(&tx, account, &name).await?;
        let id = insert_mailbox(&tx, account, &name, special_use).await?;
        // Sessions watching the account's names (NOTIFY) look again.
        notify(&tx, self.origin, account, id, 0).await?;
        let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1");
        let made = one(&tx, &sql, &[&id.0])
            .await?
            .as_ref()
            .map(mailbox_from_row)
            .transpose()?
            .ok_or_else(|| Error::Corrupt("a new mailbox vanished".into()))?;
        tx.commit().await?;
        self.publish(account, made.id, 0);
        Ok(made)
    }

    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<Mailbox>> {
        let c = self.client().await?;
        let sql = format!("SELECT {MAILBOX_COLUMNS} FROM mailboxes WHERE id = $1");
        one(&c, &sql, &[&mailbox.0])
            .await?
            .as_ref()
            .map(mailbox_from_row)
            .transpose()
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        if name == "INBOX" {
            return Err(Error::InboxUndeletable);
        }
        refuse_default(&name)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        lock_tree(&tx, account).await?;
        let id = mailbox_id(&tx, account, &name)
            .await?
            .ok_or(Error::NoMailbox(name))?;
        exec(
            &tx,
            "INSERT INTO blob_gc (hash) SELECT DISTINCT blob FROM messages WHERE mailbox_id = $1 \
            ",
            &[&id.0],
        )
        .await?;
        exec(&tx, "DELETE FROM mailboxes WHERE id = $1", &[&id.0]).await?;
        // Sessions showing it look again, and find it gone.
        notify(&tx, self.origin, account, id, 0).await?;
        tx.commit().await?;
        self.publish(account, id, 0);
        self.collect_garbage().await.map(|_| ())
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let from = normalize_mailbox_name(from)?;
        let to = normalize_mailbox_name(to)?;
        if to == from || to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(Error::RenameIntoItself);
        }
        // INBOX may be renamed: its messages move, INBOX stays (RFC 9051 6.3.6).
        refuse_default(&from)?;
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        lock_tree(&tx, account).await?;
        let touched = rename_in_tx(&tx, self.origin, account, &from, &to).await?;
        tx.commit().await?;
        for (mailbox, modseq) in touched {
            self.publish(account, mailbox, modseq);
        }
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        let sql = if subscribed {
            "INSERT INTO subscriptions (account_id, name) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM subscriptions WHERE account_id = $1 AND name = $2"
        };
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        exec(&tx, sql, &[&account.0, &name]).await?;
        // Mailbox 0: "the subscriptions", for sessions that watch them
        // (NOTIFY SubscriptionChange); no mailbox has that id.
        notify(&tx, self.origin, account, MailboxId(0), 0).await?;
        tx.commit().await?;
        self.publish(account, MailboxId(0), 0);
        Ok(())
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT name FROM subscriptions WHERE account_id = $1 ORDER BY name",
            &[&account.0],
        )
        .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        let c = self.client().await?;
        let r = one(
            &c,
            "SELECT COUNT(m.uid), \
             COUNT(m.uid) FILTER (WHERE (m.flags & 1) = 0), \
             COUNT(m.uid) FILTER (WHERE (m.flags & 8) != 0), \
             COUNT(m.uid) FILTER (WHERE m.uid >= b.first_recent), \
             COALESCE(SUM(m.size), 0)::BIGINT, \
             COALESCE(SUM(m.size) FILTER (WHERE (m.flags & 8) != 0), 0)::BIGINT \
             FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = $1",
            &[&mailbox.0],
        )
        .await?
        .ok_or_else(|| Error::Corrupt("a count gave no row".into()))?;
        let count = |i: usize| r.get::<_, i64>(i).clamp(0, u32::MAX as i64) as u32;
        Ok(MailboxStatus {
            messages: count(0),
            unseen: count(1),
            deleted: count(2),
            recent: count(3),
            size: r.get::<_, i64>(4).max(0) as u64,
            deleted_size: r.get::<_, i64>(5).max(0) as u64,
        })
    }

    async fn unseen_counts(&self, account: AccountId) -> Result<Vec<(MailboxId, u32)>> {
        let c = self.client().await?;
        // The partial index of unseen messages: the cost is the unseen
        // mail, not the mailbox.
        let rows = all(
            &c,
            "SELECT m.mailbox_id, COUNT(*) FROM messages m \
             JOIN mailboxes b ON b.id = m.mailbox_id \
             WHERE b.account_id = $1 AND (m.flags & 1) = 0 GROUP BY m.mailbox_id",
            &[&account.0],
        )
        .await?;
        Ok(rows
            .iter()
            .map(|r| (MailboxId(r.get(0)), r.get::<_, i64>(1) as u32))
            .collect())
    }

    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<std::ops::Range<u32>> {
        let mut c = self.client().await?;
        // Sessions that see the same delivery all try to claim it; a look
        // first keeps all but the first from writing.
        let range = recent_range(&c, mailbox).await?;
        if !claim || range.is_empty() {
            return Ok(range);
        }
        let tx = c.transaction().await?;
        let range = claim_in_tx(&tx, mailbox).await?;
        tx.commit().await?;
        Ok(range)
    }
}

/// The UIDs nobody has seen as \Recent yet.
pub(super) async fn recent_range(
    c: &impl GenericClient,
    mailbox: MailboxId,
) -> Result<std::ops::Range<u32>> {
    let r = one(
        c,
        "SELECT first_recent, uidnext FROM mailboxes WHERE id = $1",
        &[&mailbox.0],
    )
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    Ok(r.get::<_, i64>(0) as u32..r.get::<_, i64>(1) as u32)
}

/// Takes the \Recent UIDs for the caller (RFC 3501 2.3.2), under the
/// mailbox row's lock so that two nodes never both take them.
pub(super) async fn claim_in_tx(
    c: &impl GenericClient,
    mailbox: MailboxId,
) -> Result<std::ops::Range<u32>> {
    let r = one(
        c,
        "SELECT first_recent, uidnext FROM mailboxes WHERE id = $1 FOR NO KEY UPDATE",
        &[&mailbox.0],
    )
    .await?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))?;
    let range = r.get::<_, i64>(0) as u32..r.get::<_, i64>(1) as u32;
    if !range.is_empty() {
        exec(
            c,
            "UPDATE mailboxes SET first_recent = uidnext WHERE id = $1",
            &[&mailbox.0],
        )
        .await?;
    }
    Ok(range)
}

/// Serializes changes to one account's folder tree across nodes (two
/// nodes creating the same parent at once would otherwise collide).
async fn lock_tree(c: &impl GenericClient, account: AccountId) -> Result<()> {
    exec(
        c,
        "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
        &[&account.0],
    )
    .await?;
    Ok(())
}

pub(super) async fn mailbox_id(
    c: &impl GenericClient,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxId>> {
    Ok(one(
        c,
        "SELECT id FROM mailboxes WHERE account_id = $1 AND name = $2",
        &[&account.0, &name],
    )
    .await?
    .map(|r| MailboxId(r.get(0))))
}

/// Inserts a mailbox with a UIDVALIDITY never handed out before in this
/// database: the larger of the clock and one past the last one given,
/// kept in one row every node shares.
pub(super) async fn insert_mailbox(
    c: &impl GenericClient,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    // One row every node updates: its lock orders them.
    let uidvalidity: i64 = c
        .query_one(
            "UPDATE meta SET value = GREATEST(value, $1) + 1 \
             WHERE key = 'next_uidvalidity' RETURNING value - 1",
            &[&unix_now().max(1)],
        )
        .await?
        .get(0);
    if uidvalidity > u32::MAX as i64 {
        return Err(Error::Corrupt("UIDVALIDITY has run past 32 bits".into()));
    }
    let id: i64 = c
        .query_one(
            "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) \
             VALUES ($1, $2, $3, $4) RETURNING id",
            &[
                &account.0,
                &name,
                &special_use.map(|s| s.as_imap()),
                &uidvalidity,
            ],
        )
        .await?
        .get(0);
    Ok(MailboxId(id))
}

pub(super) fn mailbox_from_row(r: &Row) -> Result<Mailbox> {
    Ok(Mailbox {
        id: MailboxId(r.try_get("id")?),
        account_id: AccountId(r.try_get("account_id")?),
        name: r.try_get("name")?,
        special_use: r
            .try_get::<_, Option<String>>("special_use")?
            .as_deref()
            .and_then(SpecialUse::parse),
        uidvalidity: r.try_get::<_, i64>("uidvalidity")? as u32,
        uidnext: r.try_get::<_, i64>("uidnext")? as u32,
        highestmodseq: r.try_get::<_, i64>("highestmodseq")? as u64,
        subscribed: r.try_get("subscribed")?,
    })
}

/// Renames a mailbox and those under it (RFC 9051 6.3.6), or for INBOX
/// moves its messages into a new mailbox; the mailboxes that changed.
async fn rename_in_tx(
    c: &impl GenericClient,
    origin: i64,
    account: AccountId,
    from: &str,
    to: &str,
) -> Result<Vec<(MailboxId, u64)>> {
    let source = mailbox_id(c, account, from)
        .await?
        .ok_or_else(|| Error::NoMailbox(from.into()))?;
    if mailbox_id(c, account, to).await?.is_some() {
        return Err(Error::MailboxExists(to.into()));
    }
    create_parents(c, account, to).await?;
    if from == "INBOX" {
        // INBOX stays; its messages move to the new mailbox.
        let target = insert_mailbox(c, account, to, None).await?;
        let uids: Vec<u32> = all(
            c,
            "SELECT uid FROM messages WHERE mailbox_id = $1",
            &[&source.0],
        )
        .await?
        .iter()
        .map(|r| r.get::<_, i64>(0) as u32)
        .collect();
        let moved = move_in_tx(c, source, &uids, target, true).await?;
        for (mailbox, modseq) in &moved.touched {
            notify(c, origin, account, *mailbox, *modseq).await?;
        }
        return Ok(moved.touched);
    }
    let prefix = format!("{from}{DELIMITER}");
    let children = all(
        c,
        "SELECT id, name FROM mailboxes WHERE account_id = $1 AND starts_with(name, $2)",
        &[&account.0, &prefix],
    )
    .await?;
    let mut renames = vec![(source, from.to_string(), to.to_string())];
    for r in children {
        let name: String = r.get(1);
        let new = format!("{to}{}", &name[from.len()..]);
        renames.push((MailboxId(r.get(0)), name, new));
    }
    let mut touched = Vec::with_capacity(renames.len());
    for (id, old, new) in &renames {
        normalize_mailbox_name(new)?;
        exec(
            c,
            "UPDATE mailboxes SET name = $1 WHERE id = $2",
            &[new, &id.0],
        )
        .await?;
        // A subscription to the new name already there stays as it is.
        exec(
            c,
            "UPDATE subscriptions SET name = $1 WHERE account_id = $2 AND name = $3 \
             AND NOT EXISTS (SELECT 1 FROM subscriptions WHERE account_id = $2 AND name = $1)",
            &[new, &account.0, old],
        )
        .await?;
        notify(c, origin, account, *id, 0).await?;
        touched.push((*id, 0));
    }
    Ok(touched)
}

/// Creates the missing superior levels of `name` (RFC 9051 6.3.4).
async fn create_parents(c: &impl GenericClient, account: AccountId, name: &str) -> Result<()> {
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    let mut parent = String::new();
    for level in &levels[..levels.len() - 1] {
        if !parent.is_empty() {
            parent.push(DELIMITER);
        }
        parent.push_str(level);
        if mailbox_id(c, account, &parent).await?.is_none() {
            insert_mailbox(c, account, &parent, None).await?;
        }
    }
    Ok(())
}
