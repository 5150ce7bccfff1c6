//! `satchel spam score` and `satchel spam train`, and the trainer `serve`
//! runs to learn from users filing mail in and out of Junk.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use pipeline::{SERVER_MODEL, SpamScorer, StoreScorer};
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
        #[arg(value_name = "PATH")]
        path: Option<PathBuf>,
    },
    /// Trains the classifier from spam and ham (mbox, Maildir or a folder of .eml files).
    Train {
        /// Train this account's own model too.
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
        #[arg(long, value_name = "PATH")]
        spam: Option<PathBuf>,
        #[arg(long, value_name = "PATH")]
        ham: Option<PathBuf>,
    },
}

pub async fn run(
    cmd: SpamCommand,
    config: &Config,
    store: Arc<dyn MailStore>,
) -> anyhow::Result<()> {
    match cmd {
        SpamCommand::Score { path: Some(path) } => {
            let scorer = StoreScorer::new(store);
            let thresholds = config.spam.thresholds();
            for raw in messages(&path)? {
                let verdict = scorer.score(&raw?, None).await;
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
            Ok(())
        }
        SpamCommand::Score { path: None } => {
            let mut raw = Vec::new();
            std::io::stdin()
                .lock()
                .take(MAX_MESSAGE_SIZE + 1)
                .read_to_end(&mut raw)
                .context("cannot read the message from standard input")?;
            if raw.is_empty() {
                bail!("the message on standard input is empty");
            }
            let verdict = StoreScorer::new(store).score(&raw, None).await;
            let name = verdict_name(config.spam.thresholds().mailbox(verdict.score));
            say(&format!("{} {name}", verdict.score))?;
            for r in &verdict.reasons {
                say(&format!("{} {}", r.name, r.score))?;
            }
            Ok(())
        }
        SpamCommand::Train { account, spam, ham } => {
            if spam.is_none() && ham.is_none() {
                bail!("give --spam PATH, --ham PATH or both");
            }
            let scope = match account {
                Some(a) => Some(
                    store
                        .account(&a)
                        .await?
                        .with_context(|| {
                            format!("no account {a}; `satchel user list` shows the accounts")
                        })?
                        .id,
                ),
                None => None,
            };
            for (path, is_spam) in [(spam, true), (ham, false)] {
                let Some(path) = path else { continue };
                let mut n = 0;
                for raw in messages(&path)? {
                    let tokens = spam::tokens::tokens(&raw?);
                    store.bayes_train(SERVER_MODEL, &tokens, is_spam).await?;
                    if let Some(scope) = scope {
                        store.bayes_train(scope, &tokens, is_spam).await?;
                    }
                    n += 1;
                }
                say(&format!(
                    "trained {n} {} messages",
                    if is_spam { "spam" } else { "ham" }
                ))?;
            }
            Ok(())
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

/// Every message in an mbox file, a Maildir, or a folder of message files.
fn messages(path: &Path) -> anyhow::Result<Box<dyn Iterator<Item = anyhow::Result<Vec<u8>>>>> {
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
            if e.file_type().is_ok_and(|t| t.is_file())
                && e.metadata().is_ok_and(|m| m.len() <= MAX_MESSAGE_SIZE)
            {
                files.push(e.path());
            }
        }
    }
    files.sort();
    Ok(Box::new(files.into_iter().map(|p| {
        std::fs::read(&p).with_context(|| format!("cannot read {}", p.display()))
    })))
}

/// Learns from users' moves in and out of Junk (the IMAP training events):
/// the server's model and the user's own.
pub async fn trainer(store: Arc<dyn MailStore>) {
    let mut every = tokio::time::interval(Duration::from_secs(5));
    loop {
        every.tick().await;
        let events = match store.take_training(100).await {
            Ok(e) => e,
            Err(e) => {
                tracing::warn!("spam trainer: {e}");
                continue;
            }
        };
        for event in events {
            // The message may be gone already (expunged and collected).
            let Ok(raw) = store.read_blob(&event.blob).await else {
                continue;
            };
            let tokens = spam::tokens::tokens(&raw);
            for scope in [SERVER_MODEL, event.account] {
                if let Err(e) = store.bayes_train(scope, &tokens, event.spam).await {
                    tracing::warn!("spam trainer: {e}");
                }
            }
        }
    }
}
