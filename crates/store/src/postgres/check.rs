//! `satchel check` on PostgreSQL: what the database's own constraints do
//! not already hold. Foreign keys keep every message, training event and
//! queued message's body in place, so what is left to look at is each
//! mailbox's counters, the default mailboxes, each body against its name
//! (its SHA-256, computed by the database), and bodies nothing refers to
//! that the collector was never told of. `repair` raises counters, makes
//! missing default mailboxes and hands unreferenced bodies to the
//! collector; a damaged body is reported, never touched.

use super::mailboxes::insert_mailbox;
use super::*;
use crate::names::normalize_mailbox_name;
use crate::{CheckReport, Finding};

impl PgStore {
    /// Checks the store; with `repair`, fixes what is safe to fix.
    pub async fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        self.check_tree(&mut report, repair).await?;
        self.check_counters(&mut report, repair).await?;
        self.check_bodies(&mut report, repair).await?;
        Ok(report)
    }

    /// Every account has the default mailboxes mail is filed into, and
    /// every name is one the store would accept.
    async fn check_tree(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT a.id, a.address, b.name FROM accounts a \
             LEFT JOIN mailboxes b ON b.account_id = a.id ORDER BY a.id",
            &[],
        )
        .await?;
        let mut by_account: Vec<(i64, String, Vec<String>)> = Vec::new();
        for r in &rows {
            let id: i64 = r.try_get(0)?;
            if by_account.last().is_none_or(|(last, ..)| *last != id) {
                by_account.push((id, r.try_get(1)?, Vec::new()));
            }
            if let (Some(name), Some(entry)) =
                (r.try_get::<_, Option<String>>(2)?, by_account.last_mut())
            {
                entry.2.push(name);
            }
        }
        for (id, address, names) in by_account {
            for name in &names {
                if normalize_mailbox_name(name).ok().as_deref() != Some(name.as_str()) {
                    found(
                        report,
                        format!(
                            "{address}: the mailbox name {name:?} is not one Satchel accepts; \
                             rename it with psql or move its mail out"
                        ),
                        false,
                    );
                }
            }
            for (name, special_use) in DEFAULT_MAILBOXES {
                if names.iter().any(|n| n == name) {
                    continue;
                }
                if repair {
                    insert_mailbox(&c, AccountId(id), name, *special_use).await?;
                }
                found(
                    report,
                    format!(
                        "{address} has no mailbox {name:?}, one of the defaults mail is filed into{}",
                        if repair { " (made, empty)" } else { "" }
                    ),
                    repair,
                );
            }
        }
        Ok(())
    }

    /// UIDNEXT above every UID (kept or expunged), HIGHESTMODSEQ at or
    /// above every MODSEQ.
    async fn check_counters(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let c = self.client().await?;
        let rows = all(
            &c,
            "SELECT m.id, m.name, a.address, m.uidnext, m.highestmodseq, \
             (SELECT COUNT(*) FROM messages WHERE mailbox_id = m.id), \
             GREATEST(COALESCE((SELECT MAX(uid) FROM messages WHERE mailbox_id = m.id), 0), \
                      COALESCE((SELECT MAX(uid) FROM expunged WHERE mailbox_id = m.id), 0)), \
             GREATEST(COALESCE((SELECT MAX(modseq) FROM messages WHERE mailbox_id = m.id), 0), \
                      COALESCE((SELECT MAX(modseq) FROM expunged WHERE mailbox_id = m.id), 0)) \
             FROM mailboxes m JOIN accounts a ON a.id = m.account_id ORDER BY a.address, m.name",
            &[],
        )
        .await?;
        report.mailboxes = rows.len();
        for r in rows {
            let (id, name, account): (i64, String, String) =
                (r.try_get(0)?, r.try_get(1)?, r.try_get(2)?);
            let (uidnext, highest, messages, top_uid, top_modseq): (i64, i64, i64, i64, i64) = (
                r.try_get(3)?,
                r.try_get(4)?,
                r.try_get(5)?,
                r.try_get(6)?,
                r.try_get(7)?,
            );
            report.messages += messages.max(0) as usize;
            if top_uid >= uidnext {
                if repair {
                    exec(
                        &c,
                        "UPDATE mailboxes SET uidnext = GREATEST(uidnext, $1) WHERE id = $2",
                        &[&(top_uid + 1), &id],
                    )
                    .await?;
                }
                found(
                    report,
                    format!(
                        "{account} {name:?}: UIDNEXT is {uidnext} but UID {top_uid} is taken \
                         (raised to {})",
                        top_uid + 1
                    ),
                    repair,
                );
            }
            if top_modseq > highest {
                if repair {
                    exec(
                        &c,
                        "UPDATE mailboxes SET highestmodseq = GREATEST(highestmodseq, $1) \
                         WHERE id = $2",
                        &[&top_modseq, &id],
                    )
                    .await?;
                }
                found(
                    report,
                    format!(
                        "{account} {name:?}: HIGHESTMODSEQ is {highest} but a change has \
                         MODSEQ {top_modseq} (raised to it)"
                    ),
                    repair,
                );
            }
        }
        Ok(())
    }

    /// Each body matches its name; bodies nothing refers to are waiting
    /// for the collector.
    async fn check_bodies(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let c = self.client().await?;
        report.blobs = c
            .query_one("SELECT count(*) FROM blobs", &[])
            .await?
            .try_get::<_, i64>(0)?
            .max(0) as usize;
        let damaged = all(
            &c,
            "SELECT hash FROM blobs WHERE encode(sha256(body), 'hex') <> hash LIMIT 20",
            &[],
        )
        .await?;
        for r in damaged {
            let hash: String = r.try_get(0)?;
            found(
                report,
                format!(
                    "the body {hash} is damaged (its content no longer matches its name); \
                     restore it from a backup, or remove its messages"
                ),
                false,
            );
        }
        let unreferenced: i64 = c
            .query_one(
                "SELECT count(*) FROM blobs b WHERE NOT EXISTS (SELECT 1 FROM blob_gc g \
                 WHERE g.hash = b.hash) \
                 AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob = b.hash) \
                 AND NOT EXISTS (SELECT 1 FROM training t WHERE t.blob = b.hash) \
                 AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob = b.hash)",
                &[],
            )
            .await?
            .try_get(0)?;
        if unreferenced > 0 {
            if repair {
                exec(
                    &c,
                    "INSERT INTO blob_gc (hash) SELECT hash FROM blobs b \
                     WHERE NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob = b.hash) \
                     AND NOT EXISTS (SELECT 1 FROM training t WHERE t.blob = b.hash) \
                     AND NOT EXISTS (SELECT 1 FROM queue q WHERE q.blob = b.hash) \
                    ",
                    &[],
                )
                .await?;
                drop(c);
                self.collect_garbage().await?;
            }
            found(
                report,
                format!(
                    "{unreferenced} bodies are kept that no message, training event or queued \
                     message refers to{}",
                    if repair { " (removed)" } else { "" }
                ),
                repair,
            );
        }
        Ok(())
    }
}

fn found(report: &mut CheckReport, problem: String, repaired: bool) {
    report.findings.push(Finding { problem, repaired });
}
