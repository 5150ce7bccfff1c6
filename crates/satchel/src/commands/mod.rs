//! One module per subcommand.

pub mod alias;
pub mod check;
mod corpus;
pub mod deliver;
pub mod dkim;
pub mod filter;
pub mod junk_report;
pub mod migrate;
pub mod queue;
pub mod serve;
pub mod spam;
pub mod transfer;
pub mod user;

use std::io::{BufRead, Write};

use anyhow::Context;
use store::MailStore;

/// The account with this address, or an error that says how to list them.
pub async fn find_account(store: &dyn MailStore, address: &str) -> anyhow::Result<store::Account> {
    store
        .account(address)
        .await?
        .with_context(|| format!("no account {address}; `satchel user list` shows the accounts"))
}

/// The id of the account with this address (see [`find_account`]).
pub async fn account_id(store: &dyn MailStore, address: &str) -> anyhow::Result<store::AccountId> {
    Ok(find_account(store, address).await?.id)
}

/// Prints one line to standard output, flushed; a closed output is an
/// error to report, not a panic.
pub fn say(line: &str) -> anyhow::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| anyhow::anyhow!("cannot write to standard output: {e}"))
}

/// Reads the password from the first line of standard input.
pub fn password_from_stdin() -> anyhow::Result<String> {
    let mut line = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut line)
        .map_err(|e| anyhow::anyhow!("cannot read the password from standard input: {e}"))?;
    let password = line.trim_end_matches(['\n', '\r']);
    if password.is_empty() {
        anyhow::bail!("the password on standard input is empty; give it as the first line");
    }
    Ok(password.to_string())
}
