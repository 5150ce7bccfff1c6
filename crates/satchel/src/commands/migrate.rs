//! `satchel migrate --to postgres://...`: copies the embedded store of the
//! data folder into a PostgreSQL database (store::migrate), showing how
//! far it is, then checks that every table's rows and every message's
//! place, flags and body came over. Run it with the server stopped; run it
//! again after an interruption: what was copied stays, once.

use std::io::{IsTerminal, Write};

use anyhow::Context;
use clap::Args;
use store::PgStore;

#[derive(Args)]
pub struct MigrateArgs {
    /// The PostgreSQL database to copy into, as `[storage] url` names it
    /// (postgres://user:password@host/db).
    #[arg(long)]
    to: String,
}

pub async fn run(args: MigrateArgs, data_dir: &std::path::Path) -> anyhow::Result<()> {
    let target = store::without_password(&args.to);
    let to = PgStore::open(&args.to)
        .await
        .with_context(|| format!("cannot open the PostgreSQL store at {target}"))?;
    let live = std::io::stderr().is_terminal();
    let mut shown = String::new();
    let mut progress = |what: &str, done: u64, of: u64| {
        let line = format!("copying {what}: {done} of {of}");
        if live {
            eprint!("\r\x1b[K{line}");
            let _ = std::io::stderr().flush();
        } else if done == of && shown != line {
            eprintln!("{line}");
        }
        shown = line;
    };
    let done = store::migrate::migrate(data_dir, &to, &mut progress)
        .await
        .with_context(|| {
            format!(
                "copying {} into {target} failed; run it again to go on",
                data_dir.display()
            )
        })?;
    if live {
        eprintln!();
    }
    let mut short = Vec::new();
    for (table, embedded, postgres) in &done.tables {
        if postgres < embedded {
            short.push(format!("{table}: {postgres} of {embedded} rows"));
        }
    }
    let (a, b) = (
        store::migrate::embedded_digest(data_dir)?,
        store::migrate::postgres_digest(&to).await?,
    );
    let messages = done
        .tables
        .iter()
        .find(|(t, ..)| *t == "messages")
        .map_or(0, |(_, n, _)| *n);
    let accounts = done
        .tables
        .iter()
        .find(|(t, ..)| *t == "accounts")
        .map_or(0, |(_, n, _)| *n);
    if !short.is_empty() {
        anyhow::bail!(
            "{target} lacks rows after the copy ({}); it may hold another store's data: \
             copy into an empty database",
            short.join(", ")
        );
    }
    if a != b {
        anyhow::bail!(
            "the messages in {target} differ from the embedded store's (digest {b} against {a}); \
             was the server running during the copy? Stop it and run the copy again"
        );
    }
    super::say(&format!(
        "copied {accounts} accounts and {messages} messages ({} bodies new) into {target}; \
         every table's rows and every message's UID, MODSEQ, flags and body checked",
        done.bodies
    ))?;
    Ok(())
}
