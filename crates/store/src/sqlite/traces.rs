//! The embedded store's [`crate::Traces`]: the message trace.

use super::*;

/// The most entries one search answers.
const MAX_RESULTS: usize = 500;

#[async_trait]
impl Traces for SqliteStore {
    async fn record_trace(&self, entry: &TraceEntry) -> Result<()> {
        let e = entry.clone();
        let recipients = serde_json::to_string(&e.recipients)
            .map_err(|err| Error::Corrupt(format!("cannot write a trace entry: {err}")))?;
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO trace (at, direction, door, client, mail_from, message_id, subject, \
                     auth, qid, recipients) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                    params![
                        e.at,
                        e.direction,
                        e.door,
                        e.client,
                        e.mail_from,
                        e.message_id,
                        e.subject,
                        e.auth,
                        e.qid,
                        recipients
                    ],
                )?;
                Ok(())
            })
            .await
    }

    async fn search_trace(&self, query: &str, since: i64, limit: usize) -> Result<Vec<TraceEntry>> {
        // A Message-ID is kept without its brackets; one pasted with them
        // finds it too. LIKE's own characters in the query are literal.
        let q = query
            .trim()
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_lowercase();
        let pattern = format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        let limit = limit.min(MAX_RESULTS) as i64;
        self.db
            .read(move |c| {
                let rows = all(
                    c,
                    "SELECT at, direction, door, client, mail_from, message_id, subject, auth, qid, \
                     recipients FROM trace WHERE at >= ?1 AND (?2 = '%%' OR lower(mail_from) LIKE ?2 \
                     ESCAPE '\\' OR lower(message_id) LIKE ?2 ESCAPE '\\' OR lower(subject) LIKE ?2 \
                     ESCAPE '\\' OR lower(recipients) LIKE ?2 ESCAPE '\\') ORDER BY at DESC, id DESC LIMIT ?3",
                    params![since, pattern, limit],
                    |r| {
                        let recipients: String = r.get(9)?;
                        Ok(TraceEntry {
                            at: r.get(0)?,
                            direction: r.get(1)?,
                            door: r.get(2)?,
                            client: r.get(3)?,
                            mail_from: r.get(4)?,
                            message_id: r.get(5)?,
                            subject: r.get(6)?,
                            auth: r.get(7)?,
                            qid: r.get(8)?,
                            recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                            answers: Vec::new(),
                        })
                    },
                )?;
                let mut out = Vec::with_capacity(rows.len());
                for mut e in rows {
                    if !e.qid.is_empty() {
                        e.answers = all(
                            c,
                            "SELECT at, rcpt, outcome, answer FROM trace_answers WHERE qid = ?1 \
                             ORDER BY at, rowid",
                            [&e.qid],
                            |r| {
                                Ok(TraceAnswer {
                                    at: r.get(0)?,
                                    rcpt: r.get(1)?,
                                    outcome: r.get(2)?,
                                    answer: r.get(3)?,
                                })
                            },
                        )?;
                    }
                    out.push(e);
                }
                Ok(out)
            })
            .await
    }

    async fn prune_trace(&self, before: i64) -> Result<usize> {
        self.db
            .write(move |c| {
                let n = exec(c, "DELETE FROM trace WHERE at < ?1", [before])?;
                exec(c, "DELETE FROM trace_answers WHERE at < ?1", [before])?;
                Ok(n)
            })
            .await
    }
}
