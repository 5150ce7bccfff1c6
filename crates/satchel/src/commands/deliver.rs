//! `satchel deliver`: one message from standard input into local mailboxes.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use store::{Account, InternalDate, MAX_MESSAGE_SIZE, MailStore};

use super::say;

#[derive(Args)]
pub struct DeliverArgs {
    /// The envelope sender (SMTP MAIL FROM).
    #[arg(long, value_name = "SENDER")]
    from: String,
    /// A local recipient; repeat for several.
    #[arg(long, value_name = "ADDRESS", required = true)]
    to: Vec<String>,
}

pub async fn run(args: DeliverArgs, store: &dyn MailStore) -> anyhow::Result<()> {
    // The envelope sender goes into Return-Path once the pipeline lands.
    let _sender = args.from;
    // Every recipient is checked before anything is stored: an unknown one
    // stops the delivery before any mailbox is touched. Two addresses of one
    // account (an alias, a +detail) get one copy, reported for the first.
    let mut recipients: Vec<(&str, Account)> = Vec::with_capacity(args.to.len());
    for to in &args.to {
        let account = resolve_recipient(store, to)
            .await?
            .with_context(|| format!("no local account or alias for recipient {to}"))?;
        if !recipients.iter().any(|(_, a)| a.id == account.id) {
            recipients.push((to.as_str(), account));
        }
    }

    let mut raw = Vec::new();
    std::io::stdin()
        .lock()
        .take(MAX_MESSAGE_SIZE + 1)
        .read_to_end(&mut raw)
        .context("cannot read the message from standard input")?;
    if raw.is_empty() {
        bail!("the message on standard input is empty; nothing was delivered");
    }
    if raw.len() as u64 > MAX_MESSAGE_SIZE {
        bail!("the message is larger than {MAX_MESSAGE_SIZE} bytes; nothing was delivered");
    }

    let parsed = mime::analyze(&raw);
    for (to, account) in recipients {
        let inbox = store
            .mailbox(account.id, "INBOX")
            .await?
            .with_context(|| format!("account {} has no INBOX", account.address))?;
        let done = store
            .append(
                inbox.id,
                store::NewMessage {
                    raw: &raw,
                    size: parsed.size,
                    flags: store::Flags::empty(),
                    keywords: Vec::new(),
                    internal_date: InternalDate::now(),
                    cache: parsed.cache.clone(),
                },
            )
            .await?;
        // Printed only once the message is durable: this line is the receipt.
        say(&format!("{to} {} {}", inbox.name, done.uid))?;
    }
    Ok(())
}

/// The account a recipient address delivers to: the address or an alias, or
/// with a `+detail` in the local part, the address without it.
async fn resolve_recipient(store: &dyn MailStore, to: &str) -> anyhow::Result<Option<Account>> {
    if let Some(account) = store.account(to).await? {
        return Ok(Some(account));
    }
    if let Some((local, domain)) = to.rsplit_once('@')
        && let Some((base, _detail)) = local.split_once('+')
    {
        return Ok(store.account(&format!("{base}@{domain}")).await?);
    }
    Ok(None)
}
