//! The embedded store's [`crate::Upkeep`]. Housekeeping: maintenance and the blob collector.

use super::*;

#[async_trait]
impl Upkeep for SqliteStore {
    async fn maintenance(&self) -> Result<()> {
        self.collect_garbage().await?;
        let swept = self.sweep_orphans(ORPHAN_AGE).await?;
        if swept > 0 {
            tracing::info!("removed {swept} orphaned blob files");
        }
        self.blobs.clean_temp();
        Ok(())
    }

    fn collect_in_background(&self) {
        let wake = Arc::new(tokio::sync::Notify::new());
        if self.collector.set(wake.clone()).is_err() {
            return;
        }
        let store = self.clone();
        tokio::spawn(async move {
            loop {
                wake.notified().await;
                // Expunges in the meantime are taken in the same pass.
                tokio::time::sleep(COLLECT_DELAY).await;
                if let Err(e) = store.collect_garbage().await {
                    tracing::warn!("blob collection failed (retried at the next expunge): {e}");
                }
            }
        });
    }
}
