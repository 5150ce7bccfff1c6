//! Junk and Possible Junk as a quarantine (Xeams' quarantine report):
//!
//! - [`report`]: the junk report, a message put in a user's INBOX that
//!   lists what arrived in Junk and Possible Junk since the last one, each
//!   with a link that releases it without logging in;
//! - [`links`]: those links, signed (HMAC-SHA256 with a key the store
//!   keeps), bound to one message of one account, single-use, expiring;
//! - [`release`]: what a link does, checked;
//! - [`retention`]: Junk and Possible Junk emptied of mail older than the
//!   configured days.

pub mod links;
pub mod report;
pub mod retention;

pub use links::{LinkError, Links, ReleaseLink};
pub use report::{ReportSettings, wants_report};

/// Reports for every account that wants one (or only `address`, wanted or
/// not), as the daily run and `satchel junk-report send` make them: each
/// address with how many messages its report listed (`None`: nothing had
/// arrived, nothing was sent).
pub async fn send_reports(
    store: &dyn MailStore,
    links: &Links,
    settings: &ReportSettings,
    address: Option<&str>,
    now: i64,
) -> Result<Vec<(String, Option<usize>)>, store::Error> {
    let mut out = Vec::new();
    let wanted = address.map(str::to_lowercase);
    for o in store.account_overview().await? {
        let chosen = match &wanted {
            Some(a) => *a == o.account.address,
            None => wants_report(&o.account, &o.logins, now),
        };
        if chosen {
            let sent = report::send(store, links, settings, &o.account, now).await?;
            out.push((o.account.address, sent));
        }
    }
    if let Some(a) = wanted
        && out.is_empty()
    {
        return Err(store::Error::NoAccount(a));
    }
    Ok(out)
}

/// The daily run inside `serve`: at `hour` (UTC) the reports go out and
/// Junk and Possible Junk are emptied of mail older than the retention
/// (`retention_days` 0: kept forever). Checks once a minute; runs at most
/// once a day per process.
pub async fn run_daily(
    store: std::sync::Arc<dyn MailStore>,
    links: std::sync::Arc<Links>,
    settings: ReportSettings,
    hour: u8,
) {
    let mut last_day = None;
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
    loop {
        tick.tick().await;
        let now = time::OffsetDateTime::now_utc();
        if now.hour() != hour || last_day == Some(now.date()) {
            continue;
        }
        last_day = Some(now.date());
        let unix = now.unix_timestamp();
        if let Err(e) = send_reports(store.as_ref(), &links, &settings, None, unix).await {
            tracing::warn!("junk report: the daily run failed: {e}");
        }
        if settings.retention_days > 0 {
            match store.list_accounts().await {
                Ok(accounts) => {
                    for a in accounts {
                        if let Err(e) =
                            retention::purge(store.as_ref(), &a, settings.retention_days, unix)
                                .await
                        {
                            tracing::warn!("retention: {} failed: {e}", a.address);
                        }
                    }
                }
                Err(e) => tracing::warn!("retention: cannot list the accounts: {e}"),
            }
        }
    }
}

use store::{MailStore, SpecialUse};

/// What releasing by a link did or why it did nothing.
#[derive(Debug, thiserror::Error)]
pub enum ReleaseError {
    #[error(transparent)]
    Link(#[from] LinkError),
    #[error("this link was already used: the message was released then")]
    Used,
    #[error("the message is no longer in Junk: it was released or deleted since")]
    Gone,
    #[error(transparent)]
    Store(#[from] store::Error),
}

/// A message released to INBOX.
#[derive(Debug, Clone)]
pub struct Released {
    pub account: String,
    pub from: String,
    pub subject: String,
}

/// Releases the message `token` names to its account's INBOX, which
/// trains the filter on it as ham the same way an IMAP move out of Junk
/// does. The link is used up first, so two clicks release once.
pub async fn release(
    store: &dyn MailStore,
    links: &Links,
    token: &str,
    now: i64,
) -> Result<Released, ReleaseError> {
    let link = links.check(token, now)?;
    let mailbox = match store.mailbox_by_id(link.mailbox).await? {
        Some(m)
            if m.account_id == link.account
                && m.uidvalidity == link.uidvalidity
                && is_quarantine(&m) =>
        {
            m
        }
        _ => return Err(ReleaseError::Gone),
    };
    if !store.use_link(&link.id, link.expires).await? {
        return Err(ReleaseError::Used);
    }
    let Some(meta) = store
        .details(mailbox.id, &[link.uid])
        .await?
        .into_iter()
        .next()
    else {
        return Err(ReleaseError::Gone);
    };
    let raw = store.read_blob(&meta.blob).await?;
    let (from, subject) = report::sender_and_subject(&raw);
    let account = store
        .list_accounts()
        .await?
        .into_iter()
        .find(|a| a.id == link.account)
        .ok_or(ReleaseError::Gone)?;
    let inbox = store
        .mailbox(account.id, "INBOX")
        .await?
        .ok_or(ReleaseError::Gone)?;
    store
        .move_messages(mailbox.id, &[link.uid], inbox.id)
        .await?;
    tracing::info!(
        "junk report: {} released UID {} from {} to INBOX by a link",
        account.address,
        link.uid,
        mailbox.name
    );
    Ok(Released {
        account: account.address,
        from,
        subject,
    })
}

/// Junk or Possible Junk.
pub fn is_quarantine(m: &store::Mailbox) -> bool {
    m.special_use == Some(SpecialUse::Junk) || m.name == store::POSSIBLE_JUNK
}
