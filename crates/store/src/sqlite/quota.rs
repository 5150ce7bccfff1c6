//! Quotas: an account's storage (the bytes of its messages) and message
//! count, each 0 for none. Checked inside the write that would pass them,
//! so nothing is half-stored and two writers cannot both squeeze in.

use std::collections::HashMap;

use super::*;

/// What an account stores, and its limits.
pub(super) fn usage_in(c: &Connection, account: AccountId) -> Result<Usage> {
    let (quota_bytes, quota_messages): (i64, i64) = one(
        c,
        "SELECT quota_bytes, quota_messages FROM accounts WHERE id = ?1",
        [account],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?
    .unwrap_or((0, 0));
    let (messages, bytes): (i64, i64) = one(
        c,
        "SELECT count(*), coalesce(sum(m.size), 0) FROM messages m \
         JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = ?1",
        [account],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?
    .unwrap_or((0, 0));
    Ok(Usage {
        messages: messages.max(0) as u64,
        bytes: bytes.max(0) as u64,
        quota_messages: quota_messages.max(0) as u64,
        quota_bytes: quota_bytes.max(0) as u64,
    })
}

/// Refuses when storing messages of these sizes into these mailboxes
/// would take an account past its quota; accounts without one cost one
/// indexed lookup per mailbox.
pub(super) fn check(c: &Connection, adding: &[(MailboxId, u64)]) -> Result<()> {
    let mut per_mailbox: HashMap<MailboxId, (u64, u64)> = HashMap::new();
    for (mailbox, size) in adding {
        let e = per_mailbox.entry(*mailbox).or_default();
        e.0 += 1;
        e.1 += size;
    }
    let mut per_account: HashMap<AccountId, (String, u64, u64)> = HashMap::new();
    for (mailbox, (n, bytes)) in per_mailbox {
        let row = one(
            c,
            "SELECT a.id, a.address, a.quota_bytes, a.quota_messages FROM accounts a \
             JOIN mailboxes m ON m.account_id = a.id WHERE m.id = ?1",
            [mailbox],
            |r| {
                Ok((
                    r.get::<_, AccountId>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, i64>(2)?,
                    r.get::<_, i64>(3)?,
                ))
            },
        )?;
        let Some((account, address, quota_bytes, quota_messages)) = row else {
            continue;
        };
        if quota_bytes <= 0 && quota_messages <= 0 {
            continue;
        }
        let e = per_account.entry(account).or_insert((address, 0, 0));
        e.1 += n;
        e.2 += bytes;
    }
    for (account, (address, n, bytes)) in per_account {
        let usage = usage_in(c, account)?;
        if let Some(why) = usage.refuses(n, bytes) {
            return Err(Error::OverQuota(address, why));
        }
    }
    Ok(())
}
