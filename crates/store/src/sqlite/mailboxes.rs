//! The embedded store's [`crate::Mailboxes`]. Mailboxes: the folder tree, subscriptions, status and \Recent.

use super::*;

#[async_trait]
impl Mailboxes for SqliteStore {
    async fn list_mailboxes(&self, account: AccountId) -> Result<Vec<Mailbox>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    select_mailboxes!("WHERE account_id = ?1 ORDER BY name"),
                    [account],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn mailbox(&self, account: AccountId, name: &str) -> Result<Option<Mailbox>> {
        let name = normalize_mailbox_name(name)?;
        self.db
            .read(move |c| {
                one(
                    c,
                    select_mailboxes!("WHERE account_id = ?1 AND name = ?2"),
                    params![account, name],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn create_mailbox(
        &self,
        account: AccountId,
        name: &str,
        special_use: Option<SpecialUse>,
    ) -> Result<Mailbox> {
        let name = normalize_mailbox_name(name)?;
        let origin = self.origin;
        let made = self
            .db
            .write(move |c| {
                if mailbox_id(c, account, &name)?.is_some() {
                    return Err(Error::MailboxExists(name));
                }
                create_parents(c, account, &name)?;
                let id = insert_mailbox(c, account, &name, special_use)?;
                // Sessions watching the account's names (NOTIFY) look again.
                record_change(c, origin, account, id, 0)?;
                one(
                    c,
                    select_mailboxes!("WHERE id = ?1"),
                    [id],
                    mailbox_from_row,
                )?
                .ok_or_else(|| Error::Corrupt("a new mailbox vanished".into()))
            })
            .await?;
        self.publish(account, made.id, 0);
        Ok(made)
    }

    async fn mailbox_by_id(&self, mailbox: MailboxId) -> Result<Option<Mailbox>> {
        self.db
            .read(move |c| {
                one(
                    c,
                    select_mailboxes!("WHERE id = ?1"),
                    [mailbox],
                    mailbox_from_row,
                )
            })
            .await
    }

    async fn delete_mailbox(&self, account: AccountId, name: &str) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        if name == "INBOX" {
            return Err(Error::InboxUndeletable);
        }
        refuse_default(&name)?;
        let origin = self.origin;
        let id = self
            .db
            .write(move |c| {
                let id = mailbox_id(c, account, &name)?.ok_or(Error::NoMailbox(name))?;
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) SELECT DISTINCT blob FROM messages \
                     WHERE mailbox_id = ?1",
                    [id],
                )?;
                exec(c, "DELETE FROM mailboxes WHERE id = ?1", [id])?;
                // Sessions showing it look again, and find it gone.
                record_change(c, origin, account, id, 0)?;
                Ok(id)
            })
            .await?;
        self.publish(account, id, 0);
        self.collect_soon().await
    }

    async fn rename_mailbox(&self, account: AccountId, from: &str, to: &str) -> Result<()> {
        let from = normalize_mailbox_name(from)?;
        let to = normalize_mailbox_name(to)?;
        if to == from || to.starts_with(&format!("{from}{DELIMITER}")) {
            return Err(Error::RenameIntoItself);
        }
        // INBOX may be renamed: its messages move, INBOX stays (RFC 9051 6.3.6).
        refuse_default(&from)?;
        let origin = self.origin;
        let touched = self
            .db
            .write(move |c| rename_in_tx(c, origin, account, &from, &to))
            .await?;
        for (mailbox, modseq) in touched {
            self.publish(account, mailbox, modseq);
        }
        Ok(())
    }

    async fn set_subscribed(&self, account: AccountId, name: &str, subscribed: bool) -> Result<()> {
        let name = normalize_mailbox_name(name)?;
        let sql = if subscribed {
            "INSERT OR IGNORE INTO subscriptions (account_id, name) VALUES (?1, ?2)"
        } else {
            "DELETE FROM subscriptions WHERE account_id = ?1 AND name = ?2"
        };
        self.db
            .write(move |c| exec(c, sql, params![account, name]).map(|_| ()))
            .await?;
        // Mailbox 0: "the subscriptions", for sessions that watch them
        // (NOTIFY SubscriptionChange); no mailbox has that id.
        self.publish(account, MailboxId(0), 0);
        Ok(())
    }

    async fn subscriptions(&self, account: AccountId) -> Result<Vec<String>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT name FROM subscriptions WHERE account_id = ?1 ORDER BY name",
                    [account],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn status(&self, mailbox: MailboxId) -> Result<MailboxStatus> {
        self.db
            .read(move |c| {
                one(
                    c,
                    "SELECT COUNT(m.uid), \
                     COALESCE(SUM((m.flags & 1) = 0), 0), \
                     COALESCE(SUM((m.flags & 8) != 0), 0), \
                     COALESCE(SUM(m.uid >= b.first_recent), 0), \
                     COALESCE(SUM(m.size), 0), \
                     COALESCE(SUM(IIF((m.flags & 8) != 0, m.size, 0)), 0) \
                     FROM mailboxes b LEFT JOIN messages m ON m.mailbox_id = b.id WHERE b.id = ?1",
                    [mailbox],
                    |r| {
                        Ok(MailboxStatus {
                            messages: r.get(0)?,
                            unseen: r.get(1)?,
                            deleted: r.get(2)?,
                            recent: r.get(3)?,
                            size: r.get::<_, i64>(4)? as u64,
                            deleted_size: r.get::<_, i64>(5)?.max(0) as u64,
                        })
                    },
                )?
                .ok_or_else(|| Error::Corrupt("a count gave no row".into()))
            })
            .await
    }

    async fn unseen_counts(&self, account: AccountId) -> Result<Vec<(MailboxId, u32)>> {
        self.db
            .read(move |c| {
                // Through the partial index of unseen messages: the cost
                // is the unseen mail, not the mailbox.
                all(
                    c,
                    "SELECT m.mailbox_id, COUNT(*) FROM messages m INDEXED BY messages_unseen \
                     JOIN mailboxes b ON b.id = m.mailbox_id \
                     WHERE b.account_id = ?1 AND (m.flags & 1) = 0 GROUP BY m.mailbox_id",
                    [account],
                    |r| Ok((MailboxId(r.get(0)?), r.get(1)?)),
                )
            })
            .await
    }

    async fn claim_recent(&self, mailbox: MailboxId, claim: bool) -> Result<std::ops::Range<u32>> {
        if !claim {
            // EXAMINE changes nothing: a read, no write turn.
            return self.db.read(move |c| recent_range(c, mailbox)).await;
        }
        // Sessions that see the same delivery all try to claim it; a look
        // on a reader first keeps all but the first off the writer.
        let range = self.db.read(move |c| recent_range(c, mailbox)).await?;
        if range.is_empty() {
            return Ok(range);
        }
        self.db.write(move |c| claim_in_tx(c, mailbox)).await
    }
}

/// The UIDs nobody has seen as \Recent yet.
pub(super) fn recent_range(c: &Connection, mailbox: MailboxId) -> Result<std::ops::Range<u32>> {
    one(
        c,
        "SELECT first_recent, uidnext FROM mailboxes WHERE id = ?1",
        [mailbox],
        |r| Ok(r.get::<_, u32>(0)?..r.get::<_, u32>(1)?),
    )?
    .ok_or_else(|| Error::NoMailbox(format!("#{mailbox}")))
}

/// Takes the \Recent UIDs for the caller (RFC 3501 2.3.2); a write only
/// when there is something to take.
pub(super) fn claim_in_tx(c: &Connection, mailbox: MailboxId) -> Result<std::ops::Range<u32>> {
    let range = recent_range(c, mailbox)?;
    if !range.is_empty() {
        exec(
            c,
            "UPDATE mailboxes SET first_recent = uidnext WHERE id = ?1",
            [mailbox],
        )?;
    }
    Ok(range)
}

pub(super) fn mailbox_id(
    c: &Connection,
    account: AccountId,
    name: &str,
) -> Result<Option<MailboxId>> {
    one(
        c,
        "SELECT id FROM mailboxes WHERE account_id = ?1 AND name = ?2",
        params![account, name],
        |r| r.get(0),
    )
}

/// Inserts a mailbox with a UIDVALIDITY never handed out before in this store:
/// the larger of the clock and one past the last one given.
pub(super) fn insert_mailbox(
    c: &Connection,
    account: AccountId,
    name: &str,
    special_use: Option<SpecialUse>,
) -> Result<MailboxId> {
    let next: i64 = one(
        c,
        "SELECT value FROM meta WHERE key = 'next_uidvalidity'",
        [],
        |r| r.get(0),
    )?
    .unwrap_or(1);
    let uidvalidity = next.max(unix_now()).clamp(1, u32::MAX as i64);
    exec(
        c,
        "INSERT INTO meta (key, value) VALUES ('next_uidvalidity', ?1) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        [uidvalidity + 1],
    )?;
    Ok(c.prepare_cached(
        "INSERT INTO mailboxes (account_id, name, special_use, uidvalidity) \
         VALUES (?1, ?2, ?3, ?4) RETURNING id",
    )?
    .query_row(
        params![account, name, special_use.map(|s| s.as_imap()), uidvalidity],
        |r| r.get(0),
    )?)
}

pub(super) fn mailbox_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Mailbox> {
    Ok(Mailbox {
        id: r.get("id")?,
        account_id: r.get("account_id")?,
        name: r.get("name")?,
        special_use: r
            .get::<_, Option<String>>("special_use")?
            .as_deref()
            .and_then(SpecialUse::parse),
        uidvalidity: r.get("uidvalidity")?,
        uidnext: r.get("uidnext")?,
        highestmodseq: r.get::<_, i64>("highestmodseq")? as u64,
        subscribed: r.get("subscribed")?,
    })
}

/// Renames a mailbox and those under it (RFC 9051 6.3.6), or for INBOX
/// moves its messages into a new mailbox; the mailboxes that changed.
pub(super) fn rename_in_tx(
    c: &Connection,
    origin: i64,
    account: AccountId,
    from: &str,
    to: &str,
) -> Result<Vec<(MailboxId, u64)>> {
    let source = mailbox_id(c, account, from)?.ok_or_else(|| Error::NoMailbox(from.into()))?;
    if mailbox_id(c, account, to)?.is_some() {
        return Err(Error::MailboxExists(to.into()));
    }
    create_parents(c, account, to)?;
    if from == "INBOX" {
        // INBOX stays; its messages move to the new mailbox.
        let target = insert_mailbox(c, account, to, None)?;
        let uids: Vec<u32> = all(
            c,
            "SELECT uid FROM messages WHERE mailbox_id = ?1",
            [source],
            |r| r.get(0),
        )?;
        let moved = move_in_tx(c, source, &uids, target, true)?;
        for (mailbox, modseq) in &moved.touched {
            record_change(c, origin, account, *mailbox, *modseq)?;
        }
        return Ok(moved.touched);
    }
    let prefix = format!("{from}{DELIMITER}");
    let children: Vec<(MailboxId, String)> = all(
        c,
        "SELECT id, name FROM mailboxes WHERE account_id = ?1 AND substr(name, 1, length(?2)) = ?2",
        params![account, prefix],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    let mut renames = vec![(source, from.to_string(), to.to_string())];
    for (id, name) in children {
        let new = format!("{to}{}", &name[from.len()..]);
        renames.push((id, name, new));
    }
    let mut touched = Vec::with_capacity(renames.len());
    for (id, old, new) in &renames {
        normalize_mailbox_name(new)?;
        exec(
            c,
            "UPDATE mailboxes SET name = ?1 WHERE id = ?2",
            params![new, id],
        )?;
        exec(
            c,
            "UPDATE OR IGNORE subscriptions SET name = ?1 WHERE account_id = ?2 AND name = ?3",
            params![new, account, old],
        )?;
        record_change(c, origin, account, *id, 0)?;
        touched.push((*id, 0));
    }
    Ok(touched)
}

/// Creates the missing superior levels of `name` (RFC 9051 6.3.4).
pub(super) fn create_parents(c: &Connection, account: AccountId, name: &str) -> Result<()> {
    let levels: Vec<&str> = name.split(DELIMITER).collect();
    let mut parent = String::new();
    for level in &levels[..levels.len() - 1] {
        if !parent.is_empty() {
            parent.push(DELIMITER);
        }
        parent.push_str(level);
        if mailbox_id(c, account, &parent)?.is_none() {
            insert_mailbox(c, account, &parent, None)?;
        }
    }
    Ok(())
}
