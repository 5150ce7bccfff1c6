//! `satchel check`: verifies an embedded store (SQLite's own checks, the
//! index against the body files, each mailbox's counters) and with
//! `repair` fixes what can be fixed without losing mail: counters are
//! raised past what the index holds, and orphan body files are moved aside
//! into `lost+found/`, never deleted.

use std::path::PathBuf;

// Body files younger than ORPHAN_AGE are left out of the orphan search, as
// the sweep leaves them: a running server may not have committed their row.
use super::engine::{all, exec, one};
use super::mailboxes::insert_mailbox;
use super::{ORPHAN_AGE, SqliteStore, UNREFERENCED, string_json};
use crate::blob::BlobStore;
use crate::names::normalize_mailbox_name;
use crate::types::{AccountId, BlobHash, DEFAULT_MAILBOXES, MailboxId};
use crate::{Error, Messages, Result};

/// What a check found.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub mailboxes: usize,
    pub messages: usize,
    pub blobs: usize,
    pub findings: Vec<Finding>,
}

/// One problem, in plain words, and whether the check repaired it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub problem: String,
    pub repaired: bool,
}

impl CheckReport {
    /// Problems still there after the check.
    pub fn unrepaired(&self) -> usize {
        self.findings.iter().filter(|f| !f.repaired).count()
    }

    fn found(&mut self, problem: String, repaired: bool) {
        self.findings.push(Finding { problem, repaired });
    }
}

/// A mailbox's counters against what its rows hold.
struct Counters {
    id: i64,
    name: String,
    account: String,
    uidnext: i64,
    highest: i64,
    messages: i64,
    top_uid: i64,
    top_modseq: i64,
}

impl SqliteStore {
    /// Checks the store; with `repair`, fixes what is safe to fix. Runs
    /// alone among this process's writers, so it sees committed rows only.
    pub async fn check(&self, repair: bool) -> Result<CheckReport> {
        let mut report = CheckReport::default();
        self.check_sqlite(&mut report).await?;
        self.check_tree(&mut report, repair).await?;
        self.check_counters(&mut report, repair).await?;
        self.check_bodies(&mut report, repair).await?;
        Ok(report)
    }

    /// SQLite's page-level check and the foreign keys.
    async fn check_sqlite(&self, report: &mut CheckReport) -> Result<()> {
        let (integrity, broken) = self
            .db
            .read(|c| {
                let integrity: Vec<String> = all(c, "PRAGMA integrity_check", [], |r| r.get(0))?;
                let broken: Vec<(String, String)> = all(c, "PRAGMA foreign_key_check", [], |r| {
                    Ok((r.get(0)?, r.get(2)?))
                })?;
                Ok((integrity, broken))
            })
            .await?;
        if integrity != ["ok"] {
            for line in integrity.iter().take(20) {
                report.found(format!("the index database is damaged: {line}"), false);
            }
        }
        for (table, parent) in broken.iter().take(20) {
            report.found(
                format!("a row of {table} refers to a missing row of {parent}"),
                false,
            );
        }
        Ok(())
    }

    /// The mailbox tree: every account has the default mailboxes mail is
    /// filed into (INBOX, Junk, Possible Junk, Sent, Drafts, Trash;
    /// `--repair` makes a missing one, empty), and every name is one the
    /// store would accept (else clients cannot name it to move its mail
    /// out; reported, since renaming it would surprise its owner).
    async fn check_tree(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let rows: Vec<(AccountId, String, Option<String>)> = self
            .db
            .read(|c| {
                all(
                    c,
                    "SELECT a.id, a.address, b.name FROM accounts a \
                     LEFT JOIN mailboxes b ON b.account_id = a.id ORDER BY a.id",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await?;
        let mut by_account: Vec<(AccountId, String, Vec<String>)> = Vec::new();
        for (id, address, name) in rows {
            if by_account.last().is_none_or(|(last, ..)| *last != id) {
                by_account.push((id, address, Vec::new()));
            }
            if let (Some(name), Some(entry)) = (name, by_account.last_mut()) {
                entry.2.push(name);
            }
        }
        for (id, address, names) in by_account {
            for name in &names {
                if normalize_mailbox_name(name).ok().as_deref() != Some(name.as_str()) {
                    report.found(
                        format!(
                            "{address}: the mailbox name {name:?} is not one Satchel accepts; \
                             rename it with the sqlite3 tool or move its mail out"
                        ),
                        false,
                    );
                }
            }
            for (name, special_use) in DEFAULT_MAILBOXES {
                if names.iter().any(|n| n == name) {
                    continue;
                }
                let fixed = repair && {
                    let (name, special_use) = (name.to_string(), *special_use);
                    self.db
                        .write_alone(move |c| insert_mailbox(c, id, &name, special_use).map(|_| ()))
                        .await?;
                    true
                };
                report.found(
                    format!(
                        "{address} has no mailbox {name:?}, one of the defaults mail is filed into{}",
                        if fixed { " (made, empty)" } else { "" }
                    ),
                    fixed,
                );
            }
        }
        Ok(())
    }

    /// UIDNEXT above every UID (kept or expunged), HIGHESTMODSEQ at or
    /// above every MODSEQ: a client must never see a UID reused or a
    /// change hidden behind an old MODSEQ.
    async fn check_counters(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let rows = self
            .db
            .read(|c| {
                all(
                    c,
                    "SELECT m.id, m.name, a.address, m.uidnext, m.highestmodseq, \
                     (SELECT COUNT(*) FROM messages WHERE mailbox_id = m.id) AS n, \
                     MAX(COALESCE((SELECT MAX(uid) FROM messages WHERE mailbox_id = m.id), 0), \
                         COALESCE((SELECT MAX(uid) FROM expunged WHERE mailbox_id = m.id), 0)) AS top_uid, \
                     MAX(COALESCE((SELECT MAX(modseq) FROM messages WHERE mailbox_id = m.id), 0), \
                         COALESCE((SELECT MAX(modseq) FROM expunged WHERE mailbox_id = m.id), 0)) AS top_modseq \
                     FROM mailboxes m JOIN accounts a ON a.id = m.account_id ORDER BY a.address, m.name",
                    [],
                    |r| {
                        Ok(Counters {
                            id: r.get(0)?,
                            name: r.get(1)?,
                            account: r.get(2)?,
                            uidnext: r.get(3)?,
                            highest: r.get(4)?,
                            messages: r.get(5)?,
                            top_uid: r.get(6)?,
                            top_modseq: r.get(7)?,
                        })
                    },
                )
            })
            .await?;
        report.mailboxes = rows.len();
        for Counters {
            id,
            name,
            account,
            uidnext,
            highest,
            messages,
            top_uid,
            top_modseq,
        } in rows
        {
            report.messages += messages as usize;
            if top_uid >= uidnext {
                let fixed = repair && self.raise(id, "uidnext", top_uid + 1).await?;
                report.found(
                    format!(
                        "{account} {name:?}: UIDNEXT is {uidnext} but UID {top_uid} is taken \
                         (raised to {})",
                        top_uid + 1
                    ),
                    fixed,
                );
            }
            if top_modseq > highest {
                let fixed = repair && self.raise(id, "highestmodseq", top_modseq).await?;
                report.found(
                    format!(
                        "{account} {name:?}: HIGHESTMODSEQ is {highest} but a change has \
                         MODSEQ {top_modseq} (raised to it)"
                    ),
                    fixed,
                );
            }
        }
        Ok(())
    }

    /// Raises a mailbox counter to at least `to`; true once done.
    async fn raise(&self, mailbox: i64, column: &str, to: i64) -> Result<bool> {
        let sql = match column {
            "uidnext" => "UPDATE mailboxes SET uidnext = MAX(uidnext, ?1) WHERE id = ?2",
            _ => "UPDATE mailboxes SET highestmodseq = MAX(highestmodseq, ?1) WHERE id = ?2",
        };
        self.db
            .write_alone(move |c| exec(c, sql, [to, mailbox]))
            .await?;
        Ok(true)
    }

    /// Every body the index names is there and has the content its name
    /// (its SHA-256) says; every body file older than an hour is named by
    /// some row.
    async fn check_bodies(&self, report: &mut CheckReport, repair: bool) -> Result<()> {
        let referenced: Vec<(String, String)> = self
            .db
            .read(|c| {
                all(
                    c,
                    "SELECT m.blob AS blob, a.address || ' \"' || b.name || '\" UID ' || m.uid AS what \
                     FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id \
                     JOIN accounts a ON a.id = b.account_id \
                     UNION ALL SELECT blob, 'a training event' FROM training \
                     UNION ALL SELECT blob, 'queued message ' || qid FROM queue",
                    [],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
            })
            .await?;
        let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
        for (blob, what) in referenced {
            names.entry(blob).or_insert(what);
        }
        report.blobs = names.len();
        let blobs = self.blobs.clone();
        let wanted: Vec<(String, String)> = names.into_iter().collect();
        let (bad, files) = tokio::task::spawn_blocking(move || {
            // (problem, the hash when the file is missing)
            let bad: Vec<(String, Option<String>)> = wanted
                .iter()
                .filter_map(|(hash, what)| {
                    let hash_name = BlobHash(hash.clone());
                    match blobs.read_file(&hash_name) {
                        Err(_) => Some((
                            format!(
                                "{what}: its body file {hash} is missing; restore it from a backup, or let \
                                 --repair remove its messages (listed in lost+found/missing-bodies.txt)"
                            ),
                            Some(hash.clone()),
                        )),
                        Ok(bytes) if BlobStore::hash_of(&bytes).0 != *hash => Some((
                            format!(
                                "{what}: its body file {hash} is damaged (its content no longer matches \
                                 its name); restore it from a backup, or remove the message"
                            ),
                            None,
                        )),
                        Ok(_) => None,
                    }
                })
                .collect();
            (bad, blobs.older_than(ORPHAN_AGE))
        })
        .await
        .map_err(|e| Error::Corrupt(format!("the body check failed: {e}")))?;
        for (problem, missing) in bad {
            // A damaged body is left as it is for whoever can restore it.
            // A missing one's messages are gone already; every client that
            // fetches them fails, so --repair removes them and lists them.
            let fixed = match missing {
                Some(hash) if repair => self.remove_bodiless(&hash).await?,
                _ => false,
            };
            report.found(problem, fixed);
        }
        self.check_orphans(report, files, repair).await
    }

    /// Body files no row names: moved into `lost+found/` with `repair`.
    async fn check_orphans(
        &self,
        report: &mut CheckReport,
        files: Vec<BlobHash>,
        repair: bool,
    ) -> Result<()> {
        for chunk in files.chunks(500) {
            let list: Vec<String> = chunk.iter().map(|h| h.0.clone()).collect();
            // In a write transaction: a running server (another process)
            // puts a body file in place only inside its own, so none can
            // appear, or gain a row, between this look and the move.
            let (blobs, aside) = (self.blobs.clone(), self.lost_and_found());
            let orphans: Vec<(String, bool)> = self
                .db
                .write_alone(move |c| {
                    let orphans: Vec<String> =
                        all(c, UNREFERENCED, [string_json(&list)], |r| r.get(0))?;
                    Ok(orphans
                        .into_iter()
                        .map(|hash| {
                            let moved = repair && move_aside(&blobs, &aside, &hash).is_ok();
                            (hash, moved)
                        })
                        .collect())
                })
                .await?;
            for (hash, fixed) in orphans {
                let whither = if fixed {
                    format!(
                        " (moved to {})",
                        self.lost_and_found().join(&hash).display()
                    )
                } else {
                    String::new()
                };
                report.found(
                    format!("the body file {hash} belongs to no message{whither}"),
                    fixed,
                );
            }
        }
        Ok(())
    }

    /// Removes the messages (and training events) whose body file `hash`
    /// is missing, listing each in `lost+found/missing-bodies.txt`; false
    /// when something else still names it (a queued message).
    async fn remove_bodiless(&self, hash: &str) -> Result<bool> {
        let key = hash.to_string();
        let rows: Vec<(MailboxId, u32, String)> = self
            .db
            .read(move |c| {
                all(
                    c,
                    "SELECT m.mailbox_id, m.uid, a.address || ' \"' || b.name || '\" UID ' || m.uid \
                     FROM messages m JOIN mailboxes b ON b.id = m.mailbox_id \
                     JOIN accounts a ON a.id = b.account_id WHERE m.blob = ?1",
                    [&key],
                    |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
                )
            })
            .await?;
        let list = self.lost_and_found().join("missing-bodies.txt");
        let lines: String = rows
            .iter()
            .map(|(_, _, what)| {
                format!("{what}: body {hash} was missing; the message was removed\n")
            })
            .collect();
        std::fs::create_dir_all(self.lost_and_found())
            .and_then(|()| {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&list)?
                    .write_all(lines.as_bytes())
            })
            .map_err(|source| Error::Io { path: list, source })?;
        for (mailbox, uid, _) in &rows {
            self.expunge(*mailbox, &[*uid], false).await?;
        }
        let key = hash.to_string();
        let queued = self
            .db
            .write_alone(move |c| {
                exec(c, "DELETE FROM training WHERE blob = ?1", [&key])?;
                Ok(one(c, "SELECT 1 FROM queue WHERE blob = ?1", [&key], |_| Ok(()))?.is_some())
            })
            .await?;
        Ok(!queued)
    }

    fn lost_and_found(&self) -> PathBuf {
        self.blobs.root().with_file_name("lost+found")
    }
}

fn move_aside(blobs: &BlobStore, dir: &std::path::Path, hash: &str) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    std::fs::rename(blobs.path(&BlobHash(hash.to_string())), dir.join(hash))
}
