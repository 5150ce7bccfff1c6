//! `satchel deliver`: one message from standard input into local mailboxes.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use std::sync::Arc;

use pipeline::{Pipeline, Recipient};
use store::{Account, MAX_MESSAGE_SIZE, MailStore};

use crate::config::Config;

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

pub async fn run(
    args: DeliverArgs,
    config: &Config,
    store: Arc<dyn MailStore>,
) -> anyhow::Result<()> {
    let thresholds = config.spam.thresholds();
    let pipeline = Pipeline::new(store.clone(), &config.hostname, &config.domains).with_spam(
        Box::new(pipeline::StoreScorer::new(store.clone())),
        thresholds,
    );
    // The envelope sender goes into Return-Path once the pipeline adds
    // trace fields for local deliveries too.
    let _sender = args.from;
    // Every recipient is checked before anything is stored: an unknown one
    // stops the delivery before any mailbox is touched.
    let mut recipients: Vec<(&str, Account)> = Vec::with_capacity(args.to.len());
    for to in &args.to {
        match pipeline.recipient(to).await? {
            Recipient::Local(account) => recipients.push((to.as_str(), account)),
            _ => bail!("no local account or alias for recipient {to}"),
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

    // Stored verbatim (no trace fields): one transaction for every recipient.
    let accounts: Vec<Account> = recipients.iter().map(|(_, a)| a.clone()).collect();
    let done = pipeline.deliver(&raw, &accounts, None).await?;
    // Printed only once the message is durable: these lines are the receipt.
    // Two addresses of one account (an alias, a +detail) got one copy,
    // reported for the first of them.
    for d in done {
        let to = recipients
            .iter()
            .find(|(_, a)| a.address == d.account)
            .map_or(d.account.as_str(), |(to, _)| to);
        say(&format!("{to} {} {}", d.mailbox, d.uid))?;
    }
    Ok(())
}
