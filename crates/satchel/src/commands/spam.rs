//! `satchel spam score` and `satchel spam train`, and the trainer `serve`
//! runs to learn from users filing mail in and out of Junk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use pipeline::{SERVER_MODEL, SpamFacts, SpamScorer, StoreScorer};
use store::{MAX_MESSAGE_SIZE, MailStore};

use super::say;
use crate::config::Config;
use crate::formats::mbox;

#[derive(Subcommand)]
pub enum SpamCommand {
    /// Scores one message from standard input: `SCORE VERDICT`, then the
    /// reasons. With PATH (mbox, Maildir or a folder of .eml files), scores
    /// every message in it: one `SCORE VERDICT REASON...` line each.
    Score {
        /// Score as this account would: its own model, lists and
        /// correspondents on top of the server's.
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
    /// Trains the classifier from spam and ham (mbox, Maildir or a folder
    /// of .eml files): the server's model, or with --account that
    /// account's own.
    Train {
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
        #[arg(long, value_name = "PATH")]
        spam: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        ham: Option<PathBuf>,
    },
    /// Mail from SENDER (an address, or @domain for a whole domain and its
    /// subdomains) never goes to Junk for ADDRESS, unless its From is
    /// forged.
    Allow { address: String, sender: String },
    /// Mail from SENDER (From or envelope sender) always goes to Junk for ADDRESS.
    Block { address: String, sender: String },
    /// Takes SENDER off ADDRESS's allow or block list.
    Unlist { address: String, sender: String },
    /// ADDRESS's allow and block list: `allow PATTERN` / `block PATTERN` lines.
    Lists { address: String },
}

pub async fn run(
    cmd: SpamCommand,
    config: &Config,
    store: Arc<dyn MailStore>,
) -> anyhow::Result<()> {
    match cmd {
        SpamCommand::Score { account, path } => {
            let accounts: Vec<store::AccountId> = match account {
                Some(a) => vec![account_id(&*store, &a).await?],
                None => Vec::new(),
            };
            // Many messages: worth holding the server's model in memory.
            let scorer = match path {
                Some(_) => StoreScorer::resident(store),
                None => StoreScorer::new(store),
            };
            let thresholds = config.spam.thresholds();
            let facts = SpamFacts::default();
            let Some(path) = path else {
                let mut raw = Vec::new();
                std::io::stdin()
                    .lock()
                    .take(MAX_MESSAGE_SIZE + 1)
                    .read_to_end(&mut raw)
                    .context("cannot read the message from standard input")?;
                if raw.is_empty() {
                    bail!("the message on standard input is empty");
                }
                let verdict = first(scorer.score(&raw, &facts, &accounts).await)?;
                let name = verdict_name(thresholds.mailbox(verdict.score));
                say(&format!("{} {name}", verdict.score))?;
                for r in &verdict.reasons {
                    say(&format!("{} {}", r.name, r.score))?;
                }
                return Ok(());
            };
            let mut skipped = Skipped::default();
            for raw in messages(&path, &mut skipped)? {
                let verdict = first(scorer.score(&raw?, &facts, &accounts).await)?;
                let mut line = format!(
                    "{} {}",
                    verdict.score,
                    verdict_name(thresholds.mailbox(verdict.score))
                );
                for r in &verdict.reasons {
                    line.push_str(&format!(" {}({})", r.name, r.score));
                }
                say(&line)?;
            }
            skipped.report();
            Ok(())
        }
        SpamCommand::Train { account, spam, ham } => {
            if spam.is_none() && ham.is_none() {
                bail!("give --spam PATH, --ham PATH or both");
            }
            let scope = match account {
                Some(a) => account_id(&*store, &a).await?.scope(),
                None => SERVER_MODEL,
            };
            for (path, is_spam) in [(spam, true), (ham, false)] {
                let Some(path) = path else { continue };
                let mut n = 0;
                let mut skipped = Skipped::default();
                for raw in messages(&path, &mut skipped)? {
                    let tokens = spam::tokens::tokens(&raw?);
                    store.bayes_train(scope, &tokens, is_spam).await?;
                    n += 1;
                }
                say(&format!(
                    "trained {n} {} messages",
                    if is_spam { "spam" } else { "ham" }
                ))?;
                skipped.report();
            }
            Ok(())
        }
        SpamCommand::Allow { address, sender } => {
            list(&*store, &address, &sender, Some(true)).await
        }
        SpamCommand::Block { address, sender } => {
            list(&*store, &address, &sender, Some(false)).await
        }
        SpamCommand::Unlist { address, sender } => list(&*store, &address, &sender, None).await,
        SpamCommand::Lists { address } => {
            let id = account_id(&*store, &address).await?;
            for entry in store.spam_lists(id).await? {
                let kind = if entry.allow { "allow" } else { "block" };
                say(&format!("{kind} {}", entry.pattern))?;
            }
            Ok(())
        }
    }
}

async fn account_id(store: &dyn MailStore, address: &str) -> anyhow::Result<store::AccountId> {
    Ok(super::find_account(store, address).await?.id)
}

async fn list(
    store: &dyn MailStore,
    address: &str,
    sender: &str,
    allow: Option<bool>,
) -> anyhow::Result<()> {
    let id = account_id(store, address).await?;
    store.set_spam_list(id, sender, allow).await?;
    Ok(())
}

fn first(verdicts: Vec<spam::Verdict>) -> anyhow::Result<spam::Verdict> {
    verdicts
        .into_iter()
        .next()
        .context("the spam scorer gave no verdict")
}

/// Files of a folder left out for being larger than any message may be.
#[derive(Default)]
struct Skipped(Vec<PathBuf>);

impl Skipped {
    /// Says on standard error which files were left out, if any.
    fn report(&self) {
        if let Some(first) = self.0.first() {
            eprintln!(
                "skipped {} file(s) larger than {} bytes, the largest message Satchel takes (first: {})",
                self.0.len(),
                MAX_MESSAGE_SIZE,
                first.display()
            );
        }
    }
}

/// The contract's verdict words for the mailboxes scores pick.
fn verdict_name(mailbox: &str) -> &'static str {
    match mailbox {
        "Junk" => "junk",
        "Possible Junk" => "possible-junk",
        _ => "inbox",
    }
}

/// Every message in an mbox file, a Maildir, or a folder of message files;
/// files too large to be a message are noted in `skipped`.
fn messages(
    path: &Path,
    skipped: &mut Skipped,
) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<Vec<u8>>>>> {
    let meta =
        std::fs::metadata(path).with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_file() {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
        let reader = mbox::Reader::new(std::io::BufReader::new(file), MAX_MESSAGE_SIZE as usize);
        let shown = path.display().to_string();
        return Ok(Box::new(reader.map(move |r| {
            r.map(|item| item.raw)
                .with_context(|| format!("cannot read {shown}"))
        })));
    }
    let mut files = Vec::new();
    let dirs = if path.join("cur").is_dir() || path.join("new").is_dir() {
        vec![path.join("cur"), path.join("new")]
    } else {
        vec![path.to_path_buf()]
    };
    for dir in dirs {
        let Ok(list) = std::fs::read_dir(&dir) else {
            continue;
        };
        for e in list.flatten() {
            if !e.file_type().is_ok_and(|t| t.is_file()) {
                continue;
            }
            if e.metadata().is_ok_and(|m| m.len() > MAX_MESSAGE_SIZE) {
                skipped.0.push(e.path());
            } else {
                files.push(e.path());
            }
        }
    }
    files.sort();
    Ok(Box::new(files.into_iter().map(|p| {
        std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
    })))
}
