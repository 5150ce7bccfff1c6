//! `satchel alias add|remove|list`: addresses that deliver to an account
//! (and that the account may send as); `@domain` is the domain's
//! catch-all.

use clap::Subcommand;
use store::MailStore;

#[derive(Subcommand)]
pub enum AliasCommand {
    /// Makes ALIAS (an address, or @domain for a catch-all) deliver to
    /// the account ACCOUNT.
    Add { alias: String, account: String },
    /// Removes the alias.
    Remove { alias: String },
    /// One `ALIAS ACCOUNT` line per alias.
    List,
}

pub async fn run(
    cmd: AliasCommand,
    store: &dyn MailStore,
    domains: &[String],
) -> anyhow::Result<()> {
    match cmd {
        AliasCommand::Add { alias, account } => {
            let domain = alias.rsplit_once('@').map_or("", |(_, d)| d).to_lowercase();
            if !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain))
                && !store.has_domain(&domain).await?
            {
                anyhow::bail!(
                    "{domain} is not a local domain: add it to `domains` in the config first"
                );
            }
            store.add_alias(&alias, &account).await?;
            super::say(&format!(
                "{} {}",
                alias.to_lowercase(),
                account.to_lowercase()
            ))
        }
        AliasCommand::Remove { alias } => {
            store.remove_alias(&alias).await?;
            super::say(&format!("removed {}", alias.to_lowercase()))
        }
        AliasCommand::List => {
            for (alias, account) in store.aliases().await? {
                super::say(&format!("{alias} {account}"))?;
            }
            Ok(())
        }
    }
}
