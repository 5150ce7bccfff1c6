//! `satchel-bench`: drives a mail server the way clients do, many at once,
//! for a fixed time, and reports operations per second and latency
//! percentiles. Every answer is checked: a wrong reply counts as an error,
//! never as a fast operation. Used by `bench/compare.sh` against Satchel
//! and the reference Dovecot in turn.

mod idle;
mod imap;
mod pop3;
mod smtp;
mod stats;
mod submit;
mod web;
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
    /// More ports of the same service (other nodes of one store): client N
    /// connects to the (N mod ports)th of --port and these.
    #[arg(long = "also-port")]
    also_ports: Vec<u16>,
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

#[derive(Subcommand, Clone)]
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
    /// Connections (--clients) sending messages to the users in turn,
    /// --port being the SMTP port; then waits until IMAP shows them all
    /// filed, and reports that rate too.
    Smtp {
        /// IMAP port on the same host, to count what was filed.
        #[arg(long)]
        imap_port: u16,
        /// Recipients: `%d` is replaced by 1..=USERS.
        #[arg(long, default_value = "user%d@example.test")]
        rcpt: String,
    },
    /// Connections (--clients) on a submission port (--port), each logging
    /// in once (AUTH PLAIN) and sending to remote addresses, which the
    /// server must relay to the sink this process runs on --sink-port;
    /// then waits until the sink holds every accepted message, and reports
    /// that rate too.
    Submit {
        #[arg(long)]
        sink_port: u16,
        /// MAIL FROM and From: (`%d`: the client's user number).
        #[arg(long, default_value = "user%d@example.test")]
        sender: String,
        /// Recipients: `%d` is replaced by 1..=50.
        #[arg(long, default_value = "dest%d@remote.test")]
        rcpt: String,
    },
    /// Webmail clients (--port is HTTP), each logging in once through the
    /// login form, then asking for INBOX's first list page, or for message
    /// pages, until time is up.
    Web {
        #[arg(long, value_enum)]
        app: web::App,
        #[arg(long, value_enum)]
        page: web::Page,
        /// Messages in each INBOX (message pages ask for UIDs 1..=this).
        #[arg(long, default_value_t = 10_000)]
        messages: u32,
    },
    /// --clients connections logged in with IDLE on INBOX (--port is
    /// IMAP): the server's memory per connection, and with --smtp-port how
    /// fast one message per user reaches every connection.
    Idle {
        /// The server's main process id: its process tree's memory is read.
        #[arg(long)]
        memory_of: Option<u32>,
        #[arg(long)]
        smtp_port: Option<u16>,
        #[arg(long, default_value = "user%d@example.test")]
        rcpt: String,
        /// Logins in flight at once.
        #[arg(long, default_value_t = 32)]
        parallel: usize,
    },
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
    let addr = format!("{}:{}", cli.host, cli.port);
    if let Mode::Idle {
        memory_of,
        smtp_port,
        rcpt,
        parallel,
    } = &cli.mode
    {
        let line = idle::run(idle::Plan {
            addr,
            user: cli.user.clone(),
            password: cli.password.clone(),
            users: cli.users,
            connections: cli.clients,
            parallel: *parallel,
            memory_of: *memory_of,
            smtp: smtp_port.map(|p| (format!("{}:{p}", cli.host), rcpt.clone())),
        })
        .await?;
        println!("{line}");
        return Ok(());
    }
    // SMTP: count what is in the mailboxes before, to know when all that
    // was accepted is there.
    let mut counter = None;
    if let Mode::Smtp { imap_port, .. } = &cli.mode {
        let imap = format!("{}:{imap_port}", cli.host);
        let mut c = smtp::Counter::open(&imap, &cli.user, cli.users, &cli.password).await?;
        let before = c.total().await?;
        counter = Some((c, before));
    }
    let sink = match &cli.mode {
        Mode::Submit { sink_port, .. } => Some(submit::Sink::start(*sink_port).await?),
        _ => None,
    };
    let accepted = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs(cli.seconds);
    let stats = Arc::new(stats::Stats::default());
    let mut tasks = Vec::new();
    let ports: Vec<u16> = std::iter::once(cli.port)
        .chain(cli.also_ports.iter().copied())
        .collect();
    for n in 0..cli.clients {
        let number = (n % cli.users.max(1) + 1).to_string();
        let target = Target {
            addr: format!("{}:{}", cli.host, ports[n % ports.len()]),
            user: cli.user.replace("%d", &number),
            password: cli.password.clone(),
        };
        let stats = stats.clone();
        let accepted = accepted.clone();
        let mode = cli.mode.clone();
        let users = cli.users;
        tasks.push(tokio::spawn(async move {
            match mode {
                Mode::Imap { keep_open } => imap::client(target, keep_open, deadline, &stats).await,
                Mode::Pop3 => pop3::client(target, deadline, &stats).await,
                Mode::Smtp { rcpt, .. } => {
                    let plan = smtp::Plan {
                        addr: target.addr,
                        rcpt,
                        users,
                        client: n,
                    };
                    smtp::client(plan, deadline, &stats, &accepted).await
                }
                Mode::Submit { sender, rcpt, .. } => {
                    let plan = submit::Plan {
                        addr: target.addr,
                        login: target.user,
                        password: target.password,
                        sender: sender.replace("%d", &number),
                        rcpt,
                        client: n,
                    };
                    submit::client(plan, deadline, &stats, &accepted).await
                }
                Mode::Web {
                    app,
                    page,
                    messages,
                } => {
                    let plan = web::Plan {
                        target,
                        app,
                        page,
                        messages,
                        client: n,
                    };
                    web::client(plan, deadline, &stats).await
                }
                Mode::Idle { .. } => {}
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let started = deadline - Duration::from_secs(cli.seconds);
    let sent_for = Instant::now().duration_since(started);
    let mut line = stats.report(sent_for);
    if let Some(sink) = sink {
        let sent = accepted.load(std::sync::atomic::Ordering::Relaxed);
        let lag = sink.wait_for(sent).await?;
        line.push_str(&format!(
            " delivered/s={:.1} delivery_lag_ms={}",
            sent as f64 / (sent_for + lag).as_secs_f64(),
            lag.as_millis()
        ));
    }
    if let Some((mut c, before)) = counter {
        let sent = accepted.load(std::sync::atomic::Ordering::Relaxed);
        let lag = c.wait_for(before + sent).await?;
        line.push_str(&format!(
            " filed/s={:.1} filing_lag_ms={}",
            sent as f64 / (sent_for + lag).as_secs_f64(),
            lag.as_millis()
        ));
    }
    println!("{line}");
    if cli.by_kind {
        eprint!("{}", stats.breakdown());
    }
    Ok(())
}
