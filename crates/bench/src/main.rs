//! `satchel-bench`: drives a mail server the way clients do, many at once,
//! for a fixed time, and reports operations per second and latency
//! percentiles. Every answer is checked: a wrong reply counts as an error,
//! never as a fast operation. Used by `bench/compare.sh` against Satchel
//! and the reference Dovecot in turn.

mod imap;
mod pop3;
mod stats;
mod wire;

use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "satchel-bench", version, about)]
struct Cli {
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    #[arg(long)]
    port: u16,
    /// Login names: `%d` is replaced by 1..=USERS (user%d, user%d@example.test).
    #[arg(long, default_value = "user%d")]
    user: String,
    #[arg(long, default_value_t = 50)]
    users: usize,
    #[arg(long, default_value = "pass")]
    password: String,
    /// Clients at once; client N logs in as user (N mod USERS) + 1.
    #[arg(long, default_value_t = 10)]
    clients: usize,
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    /// Also print, on stderr, each kind of operation's count, latency and
    /// share of the clients' waiting time.
    #[arg(long)]
    by_kind: bool,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Subcommand, Clone, Copy)]
enum Mode {
    /// A mail client's mix: list headers, open a message (BODYSTRUCTURE,
    /// body), mark it read, append one and expunge it again.
    Imap {
        /// Log in once and repeat the mix (otherwise a login per mix).
        #[arg(long)]
        keep_open: bool,
    },
    /// Log in, UIDL, RETR every message, QUIT.
    Pop3,
}

/// Where one run connects and as whom.
#[derive(Clone)]
pub struct Target {
    pub addr: String,
    pub user: String,
    pub password: String,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(run(cli))
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(cli.seconds);
    let stats = Arc::new(stats::Stats::default());
    let mut tasks = Vec::new();
    for n in 0..cli.clients {
        let target = Target {
            addr: format!("{}:{}", cli.host, cli.port),
            user: cli
                .user
                .replace("%d", &(n % cli.users.max(1) + 1).to_string()),
            password: cli.password.clone(),
        };
        let stats = stats.clone();
        let mode = cli.mode;
        tasks.push(tokio::spawn(async move {
            match mode {
                Mode::Imap { keep_open } => imap::client(target, keep_open, deadline, &stats).await,
                Mode::Pop3 => pop3::client(target, deadline, &stats).await,
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let started = deadline - Duration::from_secs(cli.seconds);
    println!("{}", stats.report(Instant::now().duration_since(started)));
    if cli.by_kind {
        eprint!("{}", stats.breakdown());
    }
    Ok(())
}
