//! `satchel`: the one binary. Parses the command line, loads the config,
//! opens the store and hands over to a command.

mod commands;
mod config;
mod formats;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use store::{MailStore, PgStore, SqliteStore};

use crate::config::{Backend, Config, LogFormat};

#[derive(Parser)]
#[command(name = "satchel", version, about = "Satchel mail server")]
struct Cli {
    /// Configuration file (TOML); without it, development defaults.
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory; overrides `data_dir` of the config.
    #[arg(long, global = true, value_name = "DIR")]
    data: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Runs the server: every door the config lists.
    Serve,
    /// Manages accounts.
    #[command(subcommand)]
    User(commands::user::UserCommand),
    /// Delivers one message from standard input to local accounts.
    Deliver(commands::deliver::DeliverArgs),
    /// Imports an mbox file or a Maildir into a mailbox.
    Import(commands::transfer::ImportArgs),
    /// Exports a mailbox as an mbox file or a Maildir.
    Export(commands::transfer::ExportArgs),
    /// Scores messages and trains the spam filter.
    #[command(subcommand)]
    Spam(commands::spam::SpamCommand),
    /// An account's Sieve filter.
    #[command(subcommand)]
    Filter(commands::filter::FilterCommand),
    /// Addresses and catch-alls that deliver to an account.
    #[command(subcommand)]
    Alias(commands::alias::AliasCommand),
    /// The outbound queue.
    #[command(subcommand)]
    Queue(commands::queue::QueueCommand),
    /// The DKIM keys outgoing mail is signed with.
    #[command(subcommand)]
    Dkim(commands::dkim::DkimCommand),
    /// The junk report: what arrived in Junk and Possible Junk, mailed
    /// with release links.
    #[command(subcommand)]
    JunkReport(commands::junk_report::JunkReportCommand),
    /// Verifies the store (index against bodies, counters).
    Check(commands::check::CheckArgs),
    /// Copies the embedded store into a PostgreSQL database.
    Migrate(commands::migrate::MigrateArgs),
}

fn main() -> ExitCode {
    return_large_blocks();
    let mut cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => {
            // --help and --version: clap's own output, exit 0.
            let _ = e.print();
            return ExitCode::SUCCESS;
        }
        Err(e) if e.kind() == clap::error::ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            // `satchel queue` alone: say what it can do, in one line.
            eprintln!("{}", missing_subcommand());
            return ExitCode::from(2);
        }
        Err(e) => {
            // One line, as for every other error: clap's message up to its
            // usage block, joined; the usage is one --help away.
            let text = e.render().to_string();
            let message: Vec<&str> = text
                .lines()
                .take_while(|l| !l.trim().is_empty())
                .map(str::trim)
                .collect();
            let message = message.join(" ");
            eprintln!(
                "satchel: {} (see satchel --help)",
                message.trim_start_matches("error: ")
            );
            return ExitCode::from(2);
        }
    };
    // The config first: it says how to log.
    let mut config = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("satchel: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(dir) = cli.data.take() {
        config.data_dir = dir;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        // rustls warns of every client that sends an IP address as SNI
        // (fetchmail and others do): noise in an admin's log, not a fault.
        tracing_subscriber::EnvFilter::new(match cli.command {
            Command::Serve => "info,rustls=error",
            _ => "warn,rustls=error",
        })
    });
    use std::io::IsTerminal;
    let log = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match config.log.format {
        // One JSON object a line: timestamp, level, target, fields.
        LogFormat::Json => log.json().init(),
        // Colour only for a person at a terminal, not in log files.
        LogFormat::Text => log.with_ansi(std::io::stderr().is_terminal()).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("satchel: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli, config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("satchel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli, config: Config) -> anyhow::Result<()> {
    if let (Command::Serve, Some(path)) = (&cli.command, &cli.config) {
        config
            .listen
            .check_some_door()
            .with_context(|| format!("{}: nothing to serve", path.display()))?;
    }
    let command = match cli.command {
        // The check is each backend's own, below the trait.
        Command::Check(args) => {
            let (report, bodies) = match config.storage.backend {
                Backend::Embedded => {
                    let store = SqliteStore::open(&config.data_dir).await.map_err(|e| {
                        anyhow::anyhow!(
                            "cannot open the store in {}: {e}",
                            config.data_dir.display()
                        )
                    })?;
                    (store.check(args.repair).await?, "body files")
                }
                Backend::Postgres => (
                    open_postgres(&config).await?.check(args.repair).await?,
                    "bodies",
                ),
            };
            return commands::check::run(args, report, bodies);
        }
        // From the embedded store in the data folder, whatever the config's
        // backend (it may already name the target).
        Command::Migrate(args) => return commands::migrate::run(args, &config.data_dir).await,
        other => other,
    };
    let store = open_store(&config).await?;
    match command {
        Command::Serve => commands::serve::run(&config, store).await,
        Command::User(cmd) => commands::user::run(cmd, store.as_ref(), &config.domains).await,
        Command::Deliver(args) => commands::deliver::run(args, &config, store).await,
        Command::Import(args) => commands::transfer::import(args, store.as_ref()).await,
        Command::Export(args) => commands::transfer::export(args, store.as_ref()).await,
        Command::Spam(cmd) => commands::spam::run(cmd, &config, store).await,
        Command::Filter(cmd) => commands::filter::run(cmd, store.as_ref()).await,
        Command::Alias(cmd) => commands::alias::run(cmd, store.as_ref(), &config.domains).await,
        Command::Queue(cmd) => commands::queue::run(cmd, store.as_ref()).await,
        Command::Dkim(cmd) => commands::dkim::run(cmd, store.as_ref(), &config.domains).await,
        Command::JunkReport(cmd) => commands::junk_report::run(cmd, &config, store.as_ref()).await,
        // Taken above, before any store is opened.
        Command::Check(_) | Command::Migrate(_) => Ok(()),
    }
}

async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn MailStore>> {
    match config.storage.backend {
        Backend::Embedded => {
            let store = SqliteStore::open(&config.data_dir).await.map_err(|e| {
                anyhow::anyhow!(
                    "cannot open the store in {}: {e}",
                    config.data_dir.display()
                )
            })?;
            Ok(Arc::new(store))
        }
        Backend::Postgres => Ok(Arc::new(open_postgres(config).await?)),
    }
}

/// The PostgreSQL store of `[storage] url`.
async fn open_postgres(config: &Config) -> anyhow::Result<PgStore> {
    // The data folder still holds what is the node's own (its self-signed
    // TLS pair, say): the server user's alone.
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    let dir = &config.data_dir;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .and_then(|()| std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)))
        .with_context(|| format!("cannot make the data folder {}", dir.display()))?;
    // Checked when the configuration was read.
    let url = config.storage.url.as_deref().unwrap_or_default();
    let store = PgStore::open(url)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the PostgreSQL store: {e}"))?;
    match config.storage.body_cache_mb {
        0 => Ok(store),
        mb => {
            let cache = dir.join("body-cache");
            store
                .with_disk_cache(&cache, mb.saturating_mul(1 << 20))
                .map_err(|e| {
                    anyhow::anyhow!("cannot keep a body cache in {}: {e}", cache.display())
                })
        }
    }
}

/// Every login hashes with Argon2id, which takes a 19 MiB block. glibc
/// raises its mmap threshold after such a block is freed and from then on
/// serves the next ones from per-thread arenas that keep the memory: a
/// burst of logins left the server at 750 MB resident. A fixed threshold
/// keeps large blocks mmapped, so they go back to the system when freed.
fn return_large_blocks() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator tunable; it is called before
    // any thread exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 1 << 20);
    }
}

/// The line for a command given without the subcommand it needs: the
/// subcommands it has, and where its help is.
fn missing_subcommand() -> String {
    use clap::CommandFactory;
    let root = Cli::command();
    let mut command = &root;
    let mut path = vec!["satchel".to_string()];
    for arg in std::env::args().skip(1).filter(|a| !a.starts_with('-')) {
        if let Some(sub) = command.find_subcommand(&arg) {
            command = sub;
            path.push(arg);
        }
    }
    let names: Vec<&str> = command
        .get_subcommands()
        .map(|c| c.get_name())
        .filter(|n| *n != "help")
        .collect();
    let command = path[1..].join(" ");
    format!(
        "satchel: {command} needs one of: {} (see satchel {command} --help)",
        names.join(", ")
    )
}
