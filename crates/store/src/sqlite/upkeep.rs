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

    async fn prune_expunged(&self, before: i64, keep: u32) -> Result<usize> {
        self.db
            .write(move |c| {
                // The doomed rows first, with the MODSEQ each mailbox's
                // floor rises to; then both changes in this transaction.
                exec(
                    c,
                    "CREATE TEMP TABLE IF NOT EXISTS doomed \
                     (mailbox_id INTEGER, uid INTEGER, modseq INTEGER)",
                    [],
                )?;
                exec(c, "DELETE FROM temp.doomed", [])?;
                exec(
                    c,
                    "INSERT INTO temp.doomed SELECT mailbox_id, uid, modseq FROM ( \
                       SELECT mailbox_id, uid, modseq, at, ROW_NUMBER() OVER ( \
                         PARTITION BY mailbox_id ORDER BY modseq DESC, uid DESC) AS n \
                       FROM expunged) \
                     WHERE at < ?1 OR n > ?2",
                    params![before, keep],
                )?;
                exec(
                    c,
                    "UPDATE mailboxes SET vanished_floor = MAX(vanished_floor, \
                       (SELECT MAX(modseq) FROM temp.doomed d WHERE d.mailbox_id = mailboxes.id)) \
                     WHERE id IN (SELECT mailbox_id FROM temp.doomed)",
                    [],
                )?;
                let n = exec(
                    c,
                    "DELETE FROM expunged WHERE (mailbox_id, uid) IN \
                     (SELECT mailbox_id, uid FROM temp.doomed)",
                    [],
                )?;
                exec(c, "DELETE FROM temp.doomed", [])?;
                Ok(n)
            })
            .await
    }

    fn body_reads(&self) -> u64 {
        self.body_reads.load(Ordering::Relaxed)
    }

    async fn disk_use(&self) -> Result<(u64, u64)> {
        let blobs = self.blobs.root().to_path_buf();
        tokio::task::spawn_blocking(move || {
            let dir = blobs.parent().unwrap_or(&blobs).to_path_buf();
            let index: u64 = ["index.sqlite", "index.sqlite-wal", "index.sqlite-shm"]
                .iter()
                .filter_map(|f| std::fs::metadata(dir.join(f)).ok())
                .map(|m| m.len())
                .sum();
            (index, folder_bytes(&blobs))
        })
        .await
        .map_err(|e| Error::Corrupt(format!("the disk measure failed: {e}")))
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

/// The bytes of the files under `dir`.
fn folder_bytes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}
