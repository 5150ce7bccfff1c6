//! Quotas on PostgreSQL: an account's storage (the bytes of its messages)
//! and message count, each 0 for none, checked inside the write that
//! would pass them, under the account row's lock so that two nodes cannot
//! both squeeze in.

use std::collections::HashMap;

use super::*;

/// What an account stores, and its limits.
pub(super) async fn usage_in(c: &impl GenericClient, account: AccountId) -> Result<Usage> {
    let limits = one(
        c,
        "SELECT quota_bytes, quota_messages FROM accounts WHERE id = $1",
        &[&account.0],
    )
    .await?;
    let (quota_bytes, quota_messages): (i64, i64) =
        limits.map(|r| (r.get(0), r.get(1))).unwrap_or((0, 0));
    let r = c
        .query_one(
            "SELECT count(*), coalesce(sum(m.size), 0)::BIGINT FROM messages m \
             JOIN mailboxes b ON b.id = m.mailbox_id WHERE b.account_id = $1",
            &[&account.0],
        )
        .await?;
    Ok(Usage {
        messages: r.get::<_, i64>(0).max(0) as u64,
        bytes: r.get::<_, i64>(1).max(0) as u64,
        quota_messages: quota_messages.max(0) as u64,
        quota_bytes: quota_bytes.max(0) as u64,
    })
}

/// Refuses when storing messages of these sizes into these mailboxes
/// would take an account past its quota. An account with a quota has its
/// row locked for the rest of the transaction, so that two nodes cannot
/// both squeeze in.
pub(super) async fn quota_check(c: &impl GenericClient, adding: &[(MailboxId, u64)]) -> Result<()> {
    let mut per_mailbox: HashMap<MailboxId, (u64, u64)> = HashMap::new();
    for (mailbox, size) in adding {
        let e = per_mailbox.entry(*mailbox).or_default();
        e.0 += 1;
        e.1 += size;
    }
    let mut per_account: HashMap<AccountId, (String, u64, u64)> = HashMap::new();
    for (mailbox, (n, bytes)) in per_mailbox {
        let Some(r) = one(
            c,
            "SELECT a.id, a.address, a.quota_bytes, a.quota_messages FROM accounts a \
             JOIN mailboxes m ON m.account_id = a.id WHERE m.id = $1",
            &[&mailbox.0],
        )
        .await?
        else {
            continue;
        };
        if r.get::<_, i64>(2) <= 0 && r.get::<_, i64>(3) <= 0 {
            continue;
        }
        let e = per_account
            .entry(AccountId(r.get(0)))
            .or_insert((r.get(1), 0, 0));
        e.1 += n;
        e.2 += bytes;
    }
    for (account, (address, n, bytes)) in per_account {
        exec(
            c,
            "SELECT 1 FROM accounts WHERE id = $1 FOR NO KEY UPDATE",
            &[&account.0],
        )
        .await?;
        if let Some(why) = usage_in(c, account).await?.refuses(n, bytes) {
            return Err(Error::OverQuota(address, why));
        }
    }
    Ok(())
}
