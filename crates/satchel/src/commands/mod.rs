//! One module per subcommand.

pub mod deliver;
pub mod serve;
pub mod transfer;
pub mod user;

use std::io::BufRead;

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
