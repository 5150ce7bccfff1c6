//! `satchel serve`: opens the store, starts the doors, runs until SIGINT or
//! SIGTERM.

use std::sync::Arc;

use store::MailStore;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;

pub async fn run(config: &Config, store: Arc<dyn MailStore>) -> anyhow::Result<()> {
    store.watch_other_processes();
    println!(
        "store embedded {} (hostname {})",
        config.data_dir.display(),
        config.hostname
    );
    // The doors start here as their crates land; each prints `DOOR ADDRESS`.
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}
