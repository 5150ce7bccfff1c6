//! `satchel dkim show|rotate DOMAIN`: the DKIM keys the server signs with
//! (made on a domain's first message, or here), as the DNS records to
//! publish.

use anyhow::bail;
use clap::Subcommand;
use pipeline::dkim::{self, PUBLISH_RETIRED_SECS};
use store::{DkimKey, MailStore};

#[derive(Subcommand)]
pub enum DkimCommand {
    /// Prints the TXT records to publish for the domain's keys, as zone
    /// file lines (making the keys if the domain has none yet).
    Show { domain: String },
    /// Makes a new key pair that signs from now on; the old keys stay
    /// in `show` for a week, so mail they signed still verifies.
    Rotate { domain: String },
}

pub async fn run(
    cmd: DkimCommand,
    store: &dyn MailStore,
    domains: &[String],
) -> anyhow::Result<()> {
    let domain = match &cmd {
        DkimCommand::Show { domain } | DkimCommand::Rotate { domain } => domain.to_lowercase(),
    };
    if !domains.iter().any(|d| d.eq_ignore_ascii_case(&domain))
        && !store.has_domain(&domain).await?
    {
        bail!("{domain} is not a local domain: add it to `domains` in the config first");
    }
    let keys = match cmd {
        DkimCommand::Show { .. } => dkim::domain_keys(store, &domain).await?,
        DkimCommand::Rotate { .. } => dkim::rotate(store, &domain).await?,
    };
    print_records(&domain, &keys)
}

fn print_records(domain: &str, keys: &[DkimKey]) -> anyhow::Result<()> {
    let now = store::unix_now();
    super::say(&format!(
        "; DKIM for {domain}: publish each record; every message is signed with both keys."
    ))?;
    for key in keys.iter().filter(|k| k.retired.is_none()) {
        super::say(&dkim::txt_record(key).zone_line())?;
    }
    let retired: Vec<&DkimKey> = keys
        .iter()
        .filter(|k| k.retired.is_some_and(|at| now - at < PUBLISH_RETIRED_SECS))
        .collect();
    if !retired.is_empty() {
        super::say(
            "; Retired by a rotation: no longer signing; keep them published for a week after it.",
        )?;
        for key in retired {
            super::say(&dkim::txt_record(key).zone_line())?;
        }
    }
    Ok(())
}
