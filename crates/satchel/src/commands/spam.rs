//! `satchel spam score` and `satchel spam train`, and the trainer `serve`
//! runs to learn from users filing mail in and out of Junk.

use std::io::Read;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::Subcommand;
use pipeline::{SERVER_MODEL, SpamFacts, SpamScorer, StoreScorer};
use store::{MAX_MESSAGE_SIZE, MailStore};

use super::corpus::Corpus;
use super::{account_id, say};
use crate::config::Config;

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
        /// Score as if it came over SMTP from this client address: SPF,
        /// DKIM, DMARC and the DNS blocklists as the MX door checks them
        /// (the score SMTP gave it, given the message as it was sent).
        #[arg(long, value_name = "IP")]
        ip: Option<std::net::IpAddr>,
        /// The client's EHLO name, with --ip (default: its address literal).
        #[arg(long, value_name = "NAME", requires = "ip")]
        helo: Option<String>,
        /// The envelope sender (MAIL FROM): SPF checks it, block lists match it.
        #[arg(long, value_name = "ADDRESS")]
        from: Option<String>,
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
    /// The score and reasons a filed copy got when it arrived: `SCORE
    /// VERDICT`, then one `REASON SCORE` line each (as `spam score`).
    Explain {
        address: String,
        mailbox: String,
        uid: u32,
    },
    /// The model's size (the server's, or with --account that account's
    /// own), what it was trained on, and the last messages users taught it
    /// by moving them in or out of Junk.
    Stats {
        #[arg(long, value_name = "ADDRESS")]
        account: Option<String>,
    },
}

/// How `spam score` judges: the scorer alone, or with --ip the pipeline
/// as SMTP runs it (sender checks and blocklists first).
enum Judge {
    Scorer {
        scorer: StoreScorer,
        mail_from: Option<String>,
    },
    Smtp {
        pipeline: Box<pipeline::Pipeline>,
        trace: pipeline::Trace,
    },
}

impl Judge {
    fn new(
        config: &Config,
        store: Arc<dyn MailStore>,
        many: bool,
        ip: Option<std::net::IpAddr>,
        helo: Option<String>,
        from: Option<String>,
    ) -> anyhow::Result<Judge> {
        // Many messages: worth holding the server's model in memory.
        let scorer = match many {
            true => StoreScorer::resident(store.clone()),
            false => StoreScorer::new(store.clone()),
        };
        let Some(peer) = ip else {
            return Ok(Judge::Scorer {
                scorer,
                mail_from: from,
            });
        };
        let dns = pipeline::Dns::from_env().map_err(|e| {
            anyhow::anyhow!("--ip needs DNS for the SPF, DKIM, DMARC and blocklist checks: {e}")
        })?;
        let pipeline = pipeline::Pipeline::new(store, &config.hostname, &config.domains)
            .with_spam(Box::new(scorer), config.spam.thresholds())
            .with_sender_checks(pipeline::SenderChecks::new(Arc::new(dns)))
            .with_dnsbl(&config.spam.dnsbl);
        Ok(Judge::Smtp {
            pipeline: Box::new(pipeline),
            trace: pipeline::Trace {
                mail_from: from.unwrap_or_default(),
                origin: pipeline::Origin::Smtp {
                    helo: helo.unwrap_or_else(|| format!("[{peer}]")),
                    peer,
                    protocol: "ESMTP",
                },
            },
        })
    }

    async fn score(
        &self,
        raw: &[u8],
        accounts: &[store::AccountId],
    ) -> anyhow::Result<Vec<spam::Verdict>> {
        Ok(match self {
            Judge::Scorer { scorer, mail_from } => {
                let facts = SpamFacts {
                    mail_from: mail_from.as_deref(),
                    ..SpamFacts::default()
                };
                scorer.score(raw, &facts, accounts).await
            }
            Judge::Smtp { pipeline, trace } => pipeline.score(raw, trace, accounts).await?,
        })
    }
}

/// Messages trained in one write by `spam train`.
const TRAIN_BATCH: usize = 500;

pub async fn run(
    cmd: SpamCommand,
    config: &Config,
    store: Arc<dyn MailStore>,
) -> anyhow::Result<()> {
    match cmd {
        SpamCommand::Score {
            account,
            ip,
            helo,
            from,
            path,
        } => {
            let accounts: Vec<store::AccountId> = match account {
                Some(a) => vec![account_id(&*store, &a).await?],
                None => Vec::new(),
            };
            let judge = Judge::new(config, store, path.is_some(), ip, helo, from)?;
            let thresholds = config.spam.thresholds();
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
                // As the folder mode and every door: never a cut message.
                if raw.len() as u64 > MAX_MESSAGE_SIZE {
                    bail!(
                        "the message on standard input is larger than {MAX_MESSAGE_SIZE} bytes, \
                         the largest Satchel takes; it was not scored"
                    );
                }
                let verdict = first(judge.score(&raw, &accounts).await?)?;
                let name = verdict_name(thresholds.mailbox(verdict.score));
                say(&format!("{} {name}", verdict.score))?;
                for r in &verdict.reasons {
                    say(&format!("{} {}", r.name, r.score))?;
                }
                return Ok(());
            };
            let mut corpus = Corpus::open(&path)?;
            while let Some(raw) = corpus.next_message() {
                let verdict = first(judge.score(&raw?, &accounts).await?)?;
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
            if corpus.skipped() > 0 {
                eprintln!("skipped {}: {}", corpus.skipped(), corpus.skipped_reasons());
            }
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
            // Both paths are opened first: a wrong one fails before
            // anything is trained.
            let mut sources = Vec::new();
            for (path, is_spam) in [(spam, true), (ham, false)] {
                if let Some(path) = path {
                    sources.push((Corpus::open(&path)?, path, is_spam));
                }
            }
            let (mut trained, mut skipped, mut reasons) = ([0usize; 2], 0, Vec::new());
            for (mut corpus, path, is_spam) in sources {
                let mut n = 0;
                // One durable write per batch, not per message.
                let mut batch = Vec::with_capacity(TRAIN_BATCH);
                while let Some(raw) = corpus.next_message() {
                    batch.push(spam::tokens::tokens(&raw?));
                    n += 1;
                    if batch.len() == TRAIN_BATCH {
                        store.bayes_train_many(scope, &batch, is_spam).await?;
                        batch.clear();
                    }
                }
                store.bayes_train_many(scope, &batch, is_spam).await?;
                if n == 0 {
                    let why = match corpus.skipped() {
                        0 => String::new(),
                        _ => format!(" (skipped: {})", corpus.skipped_reasons()),
                    };
                    bail!(
                        "{} holds no message to train on{why}; give an mbox file, a Maildir \
                         or a folder of message files",
                        path.display()
                    );
                }
                trained[usize::from(is_spam)] += n;
                skipped += corpus.skipped();
                if corpus.skipped() > 0 {
                    reasons.push(corpus.skipped_reasons());
                }
            }
            let mut line = format!("trained {} spam, {} ham", trained[1], trained[0]);
            if skipped > 0 {
                line.push_str(&format!(" ({skipped} skipped: {})", reasons.join("; ")));
            }
            say(&line)
        }
        SpamCommand::Allow { address, sender } => {
            list(&*store, &address, &sender, Some(true)).await
        }
        SpamCommand::Block { address, sender } => {
            list(&*store, &address, &sender, Some(false)).await
        }
        SpamCommand::Unlist { address, sender } => list(&*store, &address, &sender, None).await,
        SpamCommand::Explain {
            address,
            mailbox,
            uid,
        } => {
            let id = account_id(&*store, &address).await?;
            let Some(found) = store.mailbox(id, &mailbox).await? else {
                bail!(
                    "{address} has no mailbox {mailbox:?}; `satchel spam explain ADDRESS MAILBOX UID`"
                );
            };
            if store.details(found.id, &[uid]).await?.is_empty() {
                bail!("{address} {mailbox:?} has no message with UID {uid}");
            }
            let Some(note) = store.spam_note(found.id, uid).await? else {
                bail!(
                    "{address} {mailbox:?} UID {uid} was not scored (stored by IMAP APPEND, an \
                     import or the server itself)"
                );
            };
            let thresholds = config.spam.thresholds();
            say(&format!(
                "{} {}",
                note.score,
                verdict_name(thresholds.mailbox(note.score))
            ))?;
            for item in note.reasons.split_whitespace() {
                // NAME(score) as the index keeps it.
                let (name, score) = item
                    .strip_suffix(')')
                    .and_then(|i| i.split_once('('))
                    .unwrap_or((item, ""));
                say(&format!("{name} {score}"))?;
            }
            Ok(())
        }
        SpamCommand::Stats { account } => {
            let (scope, who, filter) = match &account {
                Some(a) => {
                    let id = account_id(&*store, a).await?;
                    (id.scope(), format!("{a}'s own model"), Some(id))
                }
                None => (SERVER_MODEL, "the server's model".to_string(), None),
            };
            let m = store.model_summary_of(scope).await?;
            say(&format!(
                "{who}: trained on {} spam and {} ham, {} tokens",
                m.spam, m.ham, m.tokens
            ))?;
            let log = store.training_log(filter, 20).await?;
            if log.is_empty() {
                return say("no message taught by a move in or out of Junk yet");
            }
            say("last taught by moves in or out of Junk:")?;
            for e in log {
                let when = time::OffsetDateTime::from_unix_timestamp(e.at)
                    .map(|t| {
                        format!(
                            "{:04}-{:02}-{:02} {:02}:{:02}",
                            t.year(),
                            u8::from(t.month()),
                            t.day(),
                            t.hour(),
                            t.minute()
                        )
                    })
                    .unwrap_or_default();
                let kind = if e.spam { "spam" } else { "ham " };
                say(&format!("{when} UTC {kind} {} {:?}", e.account, e.subject))?;
            }
            Ok(())
        }
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

/// The contract's verdict words for the mailboxes scores pick.
fn verdict_name(mailbox: &str) -> &'static str {
    match mailbox {
        "Junk" => "junk",
        "Possible Junk" => "possible-junk",
        _ => "inbox",
    }
}
