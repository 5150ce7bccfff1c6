//! `satchel filter set` and `satchel filter get`: an account's Sieve
//! script, the same one ManageSieve edits.

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Context, bail};
use clap::Subcommand;
use store::MailStore;

/// The name `filter set` gives the script it stores and activates.
pub const SCRIPT_NAME: &str = "satchel";

#[derive(Subcommand)]
pub enum FilterCommand {
    /// Checks FILE as a Sieve script and makes it ADDRESS's active script
    /// (stored as "satchel"); a script with errors is refused, with its
    /// line and column.
    Set { address: String, file: PathBuf },
    /// Prints ADDRESS's active script.
    Get { address: String },
}

pub async fn run(cmd: FilterCommand, store: &dyn MailStore) -> anyhow::Result<()> {
    match cmd {
        FilterCommand::Set { address, file } => {
            let account = super::account_id(store, &address).await?;
            let bytes =
                std::fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?;
            if bytes.len() > sieve::MAX_SCRIPT_SIZE {
                bail!(
                    "{} is larger than {} bytes, the largest script Satchel takes",
                    file.display(),
                    sieve::MAX_SCRIPT_SIZE
                );
            }
            let text = String::from_utf8(bytes)
                .map_err(|_| anyhow::anyhow!("{} is not UTF-8 text", file.display()))?;
            sieve::Script::compile(&text)
                .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was changed", file.display()))?;
            store.put_sieve_script(account, SCRIPT_NAME, &text).await?;
            store
                .activate_sieve_script(account, Some(SCRIPT_NAME))
                .await?;
            Ok(())
        }
        FilterCommand::Get { address } => {
            let account = super::account_id(store, &address).await?;
            match store.active_sieve_script(account).await? {
                Some((_, text)) => {
                    let mut out = std::io::stdout().lock();
                    out.write_all(text.as_bytes())
                        .and_then(|()| out.flush())
                        .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))
                }
                None => bail!(
                    "{address} has no active filter; `satchel filter set {address} FILE` sets one"
                ),
            }
        }
    }
}
