//! `satchel serve`: opens the store, starts the doors, runs until SIGINT or
//! SIGTERM.

use std::sync::Arc;

use store::MailStore;
use tokio::signal::unix::{SignalKind, signal};

use crate::config::Config;

/// How often the store's housekeeping runs (and once at start).
const MAINTENANCE_INTERVAL: std::time::Duration = std::time::Duration::from_secs(6 * 3600);

pub async fn run(config: &Config, store: Arc<dyn MailStore>) -> anyhow::Result<()> {
    store.watch_other_processes();
    let housekeeper = store.clone();
    tokio::spawn(async move {
        let mut every = tokio::time::interval(MAINTENANCE_INTERVAL);
        loop {
            every.tick().await;
            if let Err(e) = housekeeper.maintenance().await {
                tracing::warn!("store maintenance failed: {e}");
            }
        }
    });
    super::say(&format!(
        "store embedded {} (hostname {})",
        config.data_dir.display(),
        config.hostname
    ))?;
    // The doors start here as their crates land; each prints `DOOR ADDRESS`.
    let mut term = signal(SignalKind::terminate())?;
    tokio::select! {
        r = tokio::signal::ctrl_c() => r?,
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
    Ok(())
}
