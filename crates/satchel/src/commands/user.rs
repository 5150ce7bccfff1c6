//! `satchel user add|list|passwd|remove|admin|sent-copy`.

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
    }
    Ok(())
}
