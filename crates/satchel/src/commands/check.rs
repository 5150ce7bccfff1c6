//! `satchel check [--repair]`: verifies the store and says what it found
//! in plain words; with `--repair`, fixes what can be fixed without losing
//! mail. Each backend checks itself (`SqliteStore::check`,
//! `PgStore::check`); this says what it found.

use clap::Args;
use store::CheckReport;

#[derive(Args)]
pub struct CheckArgs {
    /// Raise counters that fell behind and move orphan body files into
    /// lost+found/ in the data folder (nothing is deleted).
    #[arg(long)]
    pub repair: bool,
}

/// `bodies` names what the backend keeps bodies in ("body files", "bodies").
pub fn run(args: CheckArgs, report: CheckReport, bodies: &str) -> anyhow::Result<()> {
    for f in &report.findings {
        let mark = if f.repaired { "repaired" } else { "problem" };
        super::say(&format!("{mark}: {}", f.problem))?;
    }
    let left = report.unrepaired();
    super::say(&format!(
        "checked {} mailboxes, {} messages, {} {bodies}: {}",
        report.mailboxes,
        report.messages,
        report.blobs,
        match (report.findings.len(), left) {
            (0, _) => "no problems".to_string(),
            (n, 0) => format!("{}, all repaired", problems(n)),
            (n, l) if args.repair => format!("{}, {l} could not be repaired", problems(n)),
            (n, _) => format!(
                "{}; `satchel check --repair` fixes what it can",
                problems(n)
            ),
        }
    ))?;
    if left > 0 {
        anyhow::bail!("the store has {} left (listed above)", problems(left));
    }
    Ok(())
}

fn problems(n: usize) -> String {
    if n == 1 {
        "1 problem".to_string()
    } else {
        format!("{n} problems")
    }
}
