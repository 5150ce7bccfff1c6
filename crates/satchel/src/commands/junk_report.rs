//! `satchel junk-report send [ADDRESS]`: the junk reports now, as the
//! daily run inside `serve` makes them.

use clap::Subcommand;
use store::MailStore;

use super::say;
use crate::config::Config;

#[derive(Subcommand)]
pub enum JunkReportCommand {
    /// Sends the reports now: to every account that has them on (by
    /// default POP3-only users), or to ADDRESS whatever its setting. Prints
    /// each address with the messages its report listed.
    Send { address: Option<String> },
    /// Whether ADDRESS gets the reports: on, off, or default (on when it
    /// reads mail over POP3 only).
    Set { address: String, choice: String },
}

pub async fn run(
    cmd: JunkReportCommand,
    config: &Config,
    store: &dyn MailStore,
) -> anyhow::Result<()> {
    match cmd {
        JunkReportCommand::Send { address } => {
            let links = quarantine::Links::open(store).await?;
            let now = time::OffsetDateTime::now_utc().unix_timestamp();
            let sent =
                quarantine::send_reports(store, &links, &settings(config), address.as_deref(), now)
                    .await?;
            for (address, listed) in sent {
                match listed {
                    Some(n) => say(&format!(
                        "{address}: sent, {n} message{}",
                        if n == 1 { "" } else { "s" }
                    ))?,
                    None => say(&format!("{address}: nothing arrived, nothing sent"))?,
                }
            }
            Ok(())
        }
        JunkReportCommand::Set { address, choice } => {
            let on = match choice.as_str() {
                "on" => Some(true),
                "off" => Some(false),
                "default" => None,
                other => anyhow::bail!("{other:?}: give on, off or default"),
            };
            store.set_junk_report(&address, on).await?;
            say(&format!("{} {choice}", address.to_lowercase()))
        }
    }
}

/// What the reports say and link to, from the config.
pub fn settings(config: &Config) -> quarantine::ReportSettings {
    quarantine::ReportSettings {
        base_url: config.web_url(),
        link_days: i64::from(config.junk_report.link_days),
        retention_days: config.junk_report.retention_days,
    }
}
