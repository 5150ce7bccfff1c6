//! `satchel user add|list|passwd|remove|quota|admin|sent-copy`.

use clap::Subcommand;
use store::MailStore;

use super::{password_from_stdin, say};

#[derive(Subcommand)]
pub enum UserCommand {
    /// Creates an account with the default mailboxes.
    Add {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        /// Give the account the web admin role.
        #[arg(long)]
        admin: bool,
    },
    /// Lists the accounts, one address a line.
    List,
    /// Sets a new password.
    Passwd {
        address: String,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
    },
    /// Removes the account and all its mail.
    Remove { address: String },
    /// The account's quota: --storage SIZE (like 500M or 2G) and
    /// --messages N, --none to clear both; with neither, what it uses.
    Quota {
        address: String,
        #[arg(long, value_name = "SIZE")]
        storage: Option<String>,
        #[arg(long, value_name = "N")]
        messages: Option<u64>,
        #[arg(long, conflicts_with_all = ["storage", "messages"])]
        none: bool,
    },
    /// Gives the account the admin role (the web's admin pages), or with
    /// --off takes it away.
    Admin {
        address: String,
        #[arg(long)]
        off: bool,
    },
    /// Whether what the account submits gets a Sent copy: always,
    /// unless-appended (unless its client APPENDs one itself), never, or
    /// default (the server's `[submission] sent_copy`).
    SentCopy { address: String, rule: String },
    /// The account has moved to another server: IMAP logins are referred
    /// to URL (an imap:// URL naming that server, RFC 2221), or with
    /// --none served here again.
    Referral {
        address: String,
        #[arg(required_unless_present = "none")]
        url: Option<String>,
        #[arg(long, conflicts_with = "url")]
        none: bool,
    },
}

pub async fn run(
    cmd: UserCommand,
    store: &dyn MailStore,
    domains: &[String],
) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { address, admin, .. } => {
            if let Some(why) = store::names::outside_local_domains(&address, domains) {
                anyhow::bail!(why);
            }
            let password = password_from_stdin()?;
            let account = store.create_account(&address, &password, admin).await?;
            say(&account.address)?;
        }
        UserCommand::List => {
            for account in store.list_accounts().await? {
                say(&account.address)?;
            }
        }
        UserCommand::Passwd { address, .. } => {
            let password = password_from_stdin()?;
            store.set_password(&address, &password).await?;
        }
        UserCommand::Remove { address } => store.remove_account(&address).await?,
        UserCommand::Quota {
            address,
            storage,
            messages,
            none,
        } => {
            let account = store.account(&address).await?.ok_or_else(|| {
                anyhow::anyhow!("no account {address}; `satchel user list` shows them")
            })?;
            if none || storage.is_some() || messages.is_some() {
                let bytes = match (&storage, none) {
                    (_, true) => 0,
                    (Some(s), _) => store::names::parse_size(s).ok_or_else(|| {
                        anyhow::anyhow!("--storage {s:?}: give a size such as 500M, 2G or 100K")
                    })?,
                    (None, _) => account.quota_bytes.max(0) as u64,
                };
                let count = if none {
                    0
                } else {
                    messages.unwrap_or(account.quota_messages.max(0) as u64)
                };
                store.set_quota(&account.address, bytes, count).await?;
            }
            let u = store.usage(account.id).await?;
            let limit = |n: u64, unit: &str| {
                if n == 0 {
                    "no limit".to_string()
                } else {
                    format!("{n}{unit}")
                }
            };
            say(&format!(
                "{}: {} messages, {} bytes; quota {} bytes, {} messages",
                account.address,
                u.messages,
                u.bytes,
                limit(u.quota_bytes, ""),
                limit(u.quota_messages, "")
            ))?;
        }
        UserCommand::Admin { address, off } => {
            store.set_admin(&address, !off).await?;
            let role = if off {
                "no longer an admin"
            } else {
                "an admin"
            };
            say(&format!("{} is {role}", address.to_lowercase()))?;
        }
        UserCommand::SentCopy { address, rule } => {
            let parsed = match rule.as_str() {
                "default" => None,
                name => Some(store::SentCopy::parse(name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "{name:?} is not a Sent-copy rule: give always, unless-appended, never or default"
                    )
                })?),
            };
            store.set_sent_copy(&address, parsed).await?;
            say(&format!("{} {rule}", address.to_lowercase()))?;
        }
        UserCommand::Referral { address, url, .. } => {
            if let Some(url) = &url {
                referral_ok(url)?;
            }
            store.set_referral(&address, url.as_deref()).await?;
            match url {
                Some(url) => say(&format!(
                    "{}: IMAP logins are referred to {url}",
                    address.to_lowercase()
                ))?,
                None => say(&format!("{}: served here", address.to_lowercase()))?,
            }
        }
    }
    Ok(())
}

/// A referral is an imap:// URL (RFC 2221 2, RFC 5092) that fits in a
/// response code: no spaces, brackets or controls.
fn referral_ok(url: &str) -> anyhow::Result<()> {
    let scheme = url
        .get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("imap://"));
    let host = url.get(7..).unwrap_or_default();
    if !scheme || host.is_empty() || host.starts_with('/') {
        anyhow::bail!("{url:?} is not an IMAP URL: give imap://host/ (or imap://user@host/)");
    }
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == ']' || c == '[')
    {
        anyhow::bail!("{url:?} holds spaces, brackets or control characters: escape them with %XX");
    }
    Ok(())
}
