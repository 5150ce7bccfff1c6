//! `satchel deliver`: one message from standard input into local mailboxes.

use std::io::Read;

use anyhow::{Context, bail};
use clap::Args;
use std::sync::Arc;

use pipeline::{Origin, Pipeline, Recipient, Trace};
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
    let (before, global) = config.sieve.load()?;
    let pipeline = Pipeline::new(store.clone(), &config.hostname, &config.domains)
        .with_spam(
            Box::new(pipeline::StoreScorer::new(store.clone())),
            thresholds,
        )
        .with_sieve(before, global)
        .with_postmaster(config.postmaster.clone());
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

    // The same stages as mail over SMTP, trace fields included (the
    // envelope sender becomes Return-Path): one transaction for every
    // recipient.
    let recipients: Vec<(String, Account)> = recipients
        .into_iter()
        .map(|(to, a)| (to.to_string(), a))
        .collect();
    let trace = Trace {
        mail_from: args.from.clone(),
        origin: Origin::Local,
    };
    let done = pipeline.deliver(&raw, &recipients, &trace).await?;
    // Printed only once the message is durable: these lines are the receipt,
    // one per stored copy. Two addresses of one account (an alias, a
    // +detail) got one copy, reported for the first of them; a filter may
    // have made more copies, or none (then the line says "discarded").
    for (to, account) in &recipients {
        let mine: Vec<_> = done
            .iter()
            .filter(|d| d.account == account.address)
            .collect();
        if recipients
            .iter()
            .find(|(_, a)| a.id == account.id)
            .map(|(t, _)| t)
            != Some(to)
        {
            continue;
        }
        if mine.is_empty() {
            say(&format!("{to} - discarded"))?;
        }
        for d in mine {
            say(&format!("{to} {} {}", d.mailbox, d.uid))?;
        }
    }
    // Copies a filter redirected to other local accounts.
    for d in done
        .iter()
        .filter(|d| !recipients.iter().any(|(_, a)| a.address == d.account))
    {
        say(&format!("{} {} {}", d.account, d.mailbox, d.uid))?;
    }
    Ok(())
}
