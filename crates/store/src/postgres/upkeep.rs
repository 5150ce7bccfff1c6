//! [`crate::Upkeep`] on PostgreSQL: the body collector and the pruning of
//! expunge records.
//!
//! Bodies are rows of `blobs`; every row that holds one (`messages`,
//! `training`, `queue`) refers to it by foreign key. The collector takes
//! the hashes writers noted in `blob_gc` and deletes the bodies nothing
//! refers to. Two races are closed by the database, not by timing. A
//! writer's note is a row of its own (never merged into an earlier note
//! of the same hash), invisible to the collector until the writer's
//! commit, when its rows are gone too; so the collector never judges a
//! hash by a note whose writer has not finished. And a writer that shares
//! an existing body holds its `blobs` row with the KEY SHARE lock of its
//! rows' foreign keys, so the collector's delete waits and then fails
//! its foreign-key check instead of taking a body just put back to use.
//! Neither needs a lock that writers of one body would queue on.

use async_trait::async_trait;

use super::*;

/// Bodies checked per collector transaction.
const GC_BATCH: i64 = 500;

#[async_trait]
impl Upkeep for PgStore {
    async fn maintenance(&self) -> Result<()> {
        self.collect_garbage().await.map(|_| ())
    }

    fn collect_in_background(&self) {
        // Expunges collect what they freed before they answer; there is no
        // file system to sweep, so nothing runs in the background.
    }

    async fn prune_expunged(&self, before: i64, keep: u32) -> Result<usize> {
        let c = self.client().await?;
        // One statement: the doomed records, each mailbox's floor raised to
        // the highest MODSEQ it forgets, and the records deleted (a WITH's
        // UPDATE runs whole whether or not the query reads it).
        let n: i64 = c
            .query_one(
                "WITH doomed AS ( \
                   SELECT mailbox_id, uid, modseq FROM ( \
                     SELECT mailbox_id, uid, modseq, at, ROW_NUMBER() OVER ( \
                       PARTITION BY mailbox_id ORDER BY modseq DESC, uid DESC) AS n \
                     FROM expunged) AS ranked \
                   WHERE at < $1 OR n > $2), \
                 floors AS ( \
                   UPDATE mailboxes m SET vanished_floor = GREATEST(m.vanished_floor, d.top) \
                   FROM (SELECT mailbox_id, MAX(modseq) AS top FROM doomed GROUP BY mailbox_id) d \
                   WHERE m.id = d.mailbox_id), \
                 gone AS ( \
                   DELETE FROM expunged e USING doomed d \
                   WHERE e.mailbox_id = d.mailbox_id AND e.uid = d.uid RETURNING 1) \
                 SELECT count(*) FROM gone",
                &[&before, &(keep as i64)],
            )
            .await?
            .get(0);
        Ok(n.max(0) as usize)
    }

    fn body_reads(&self) -> u64 {
        self.body_reads.load(Ordering::Relaxed)
    }

    async fn disk_use(&self) -> Result<(u64, u64)> {
        // The bodies' table with its TOAST and index; everything else
        // this database holds is the index.
        let c = self.client().await?;
        let r = c
            .query_one(
                "SELECT pg_database_size(current_database()), \
                 pg_total_relation_size('blobs')",
                &[],
            )
            .await?;
        let (all, bodies): (i64, i64) = (r.try_get(0)?, r.try_get(1)?);
        Ok(((all - bodies).max(0) as u64, bodies.max(0) as u64))
    }
}

impl PgStore {
    /// Deletes the bodies noted in `blob_gc` that no row refers to any
    /// more; how many went.
    pub(super) async fn collect_garbage(&self) -> Result<usize> {
        let mut removed = 0;
        loop {
            let mut c = self.client().await?;
            let mut tx = c.transaction().await?;
            let batch: Vec<String> = all(
                &tx,
                "DELETE FROM blob_gc WHERE id IN (SELECT id FROM blob_gc ORDER BY id LIMIT $1 \
                 FOR UPDATE SKIP LOCKED) RETURNING hash",
                &[&GC_BATCH],
            )
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect::<std::collections::BTreeSet<String>>()
            .into_iter()
            .collect();
            if batch.is_empty() {
                return Ok(removed);
            }
            // A writer sharing one of these bodies right now makes the
            // batch's delete fail its foreign-key check: then each is
            // tried on its own and that one stays.
            let whole = tx.transaction().await?;
            match exec(&whole, DELETE_UNREFERENCED, &[&batch]).await {
                Ok(n) => {
                    whole.commit().await?;
                    removed += n as usize;
                }
                Err(_) => {
                    whole.rollback().await?;
                    for hash in &batch {
                        let single = tx.transaction().await?;
                        match exec(&single, DELETE_UNREFERENCED, &[&vec![hash.as_str()]]).await {
                            Ok(n) => {
                                single.commit().await?;
                                removed += n as usize;
                            }
                            Err(_) => single.rollback().await?,
                        }
                    }
                }
            }
            tx.commit().await?;
        }
    }
}

/// Deletes the bodies of `$1` nothing refers to.
const DELETE_UNREFERENCED: &str = "DELETE FROM blobs b WHERE b.hash = ANY($1) \
     AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob = b.hash) \
     AND NOT EXISTS (SELECT 1 FROM training t WHERE t.blob = b.hash) \
     AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob = b.hash)";
