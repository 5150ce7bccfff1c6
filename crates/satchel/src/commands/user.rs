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
}

pub async fn run(cmd: UserCommand, store: &dyn MailStore) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Add { address, admin, .. } => {
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
    }
    Ok(())
}
