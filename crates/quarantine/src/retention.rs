//! Retention: Junk and Possible Junk keep mail for a number of days (the
//! junk report says how many), then it is deleted.

use store::{Account, MailStore};

use crate::is_quarantine;

/// Deletes what arrived in the account's Junk and Possible Junk more than
/// `days` days before `now`; how many messages went.
pub async fn purge(
    store: &dyn MailStore,
    account: &Account,
    days: u32,
    now: i64,
) -> Result<usize, store::Error> {
    let cutoff = now - i64::from(days) * 86_400;
    let mut purged = 0;
    for mailbox in store.list_mailboxes(account.id).await? {
        if !is_quarantine(&mailbox) {
            continue;
        }
        let old: Vec<u32> = store
            .messages(mailbox.id)
            .await?
            .into_iter()
            .filter(|m| m.internal_date.unix < cutoff)
            .map(|m| m.uid)
            .collect();
        if old.is_empty() {
            continue;
        }
        store.expunge(mailbox.id, &old, false).await?;
        purged += old.len();
    }
    if purged > 0 {
        tracing::info!(
            "retention: {purged} messages older than {days} days left Junk and Possible Junk of {}",
            account.address
        );
    }
    Ok(purged)
}
