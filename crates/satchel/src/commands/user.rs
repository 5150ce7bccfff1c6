//! `satchel user add|list|passwd|remove`.

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
            // With `domains` in the config, only those are local: an account
            // elsewhere would make its domain local behind the admin's back.
            // Without any (the development defaults), accounts' domains are.
            let domain = address.rsplit_once('@').map_or("", |(_, d)| d);
            if !domains.is_empty() && !domains.iter().any(|d| d.eq_ignore_ascii_case(domain)) {
                anyhow::bail!(
                    "{domain:?} is not one of the local domains ({}): add it to `domains` in the config first",
                    domains.join(", ")
                );
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
