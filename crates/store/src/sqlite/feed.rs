//! The embedded store's [`crate::Feed`]. The change feed: subscribers and the watcher of other processes.

use super::*;

impl Feed for SqliteStore {
    fn subscribe(&self) -> broadcast::Receiver<Change> {
        self.feed.subscribe()
    }

    fn watch_other_processes(&self) {
        if self.watching.swap(true, Ordering::SeqCst) {
            return;
        }
        tokio::spawn(watch(self.db.clone(), self.feed.clone(), self.origin));
    }
}

/// Relays rows other processes add to `changes` onto the broadcast feed, and
/// trims old rows.
async fn watch(db: Engine, feed: broadcast::Sender<Change>, origin: i64) {
    let start = db
        .read(|c| {
            Ok(
                one(c, "SELECT COALESCE(MAX(seq), 0) FROM changes", [], |r| {
                    r.get(0)
                })?
                .unwrap_or(0),
            )
        })
        .await;
    let mut last: i64 = match start {
        Ok(m) => m,
        Err(e) => {
            tracing::error!("change watcher could not start: {e}");
            return;
        }
    };
    let mut ticks: u64 = 0;
    let mut interval = tokio::time::interval(WATCH_INTERVAL);
    loop {
        interval.tick().await;
        let after = last;
        let rows = db
            .read(move |c| {
                all(
                    c,
                    "SELECT seq, origin, account_id, mailbox_id, modseq FROM changes \
                     WHERE seq > ?1 ORDER BY seq",
                    [after],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            Change {
                                account_id: r.get(2)?,
                                mailbox_id: r.get(3)?,
                                modseq: r.get::<_, i64>(4)? as u64,
                            },
                        ))
                    },
                )
            })
            .await;
        match rows {
            Ok(rows) => {
                for (seq, from, change) in rows {
                    last = seq;
                    if from != origin {
                        let _ = feed.send(change);
                    }
                }
            }
            Err(e) => tracing::warn!("change watcher: {e}"),
        }
        ticks += 1;
        if ticks.is_multiple_of(200) {
            let _ = db
                .write(|c| {
                    exec(
                        c,
                        "DELETE FROM changes WHERE at < ?1",
                        [unix_now() - CHANGE_TTL_SECS],
                    )
                })
                .await;
        }
    }
}
