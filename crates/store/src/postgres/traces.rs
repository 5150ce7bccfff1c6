//! [`crate::Traces`] on PostgreSQL: the message trace.

use std::borrow::Cow;
use std::collections::HashMap;

use super::*;

/// The most entries one search answers.
const MAX_RESULTS: usize = 500;

#[async_trait::async_trait]
impl Traces for PgStore {
    async fn record_trace(&self, entry: &TraceEntry) -> Result<()> {
        let recipients = serde_json::to_string(&entry.recipients)
            .map_err(|err| Error::Corrupt(format!("cannot write a trace entry: {err}")))?;
        let c = self.client().await?;
        exec(
            &c,
            "INSERT INTO trace (at, direction, door, client, mail_from, message_id, subject, \
             auth, qid, recipients) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
            &[
                &entry.at,
                &without_nul(&entry.direction),
                &without_nul(&entry.door),
                &without_nul(&entry.client),
                &without_nul(&entry.mail_from),
                &without_nul(&entry.message_id),
                &without_nul(&entry.subject),
                &without_nul(&entry.auth),
                &without_nul(&entry.qid),
                &recipients,
            ],
        )
        .await?;
        Ok(())
    }

    async fn search_trace(&self, query: &str, since: i64, limit: usize) -> Result<Vec<TraceEntry>> {
        // A Message-ID is kept without its brackets; one pasted with them
        // finds it too. Compared as text (strpos), so no character of the
        // query acts as a pattern; both sides lowered by lower(), alike.
        let q = query.trim().trim_start_matches('<').trim_end_matches('>');
        let limit = limit.min(MAX_RESULTS) as i64;
        let mut c = self.client().await?;
        // The entries and their answers from one snapshot.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let rows = all(
            &tx,
            "SELECT at, direction, door, client, mail_from, message_id, subject, auth, qid, \
             recipients FROM trace WHERE at >= $1 AND ($2 = '' \
             OR strpos(lower(mail_from), lower($2)) > 0 \
             OR strpos(lower(message_id), lower($2)) > 0 \
             OR strpos(lower(subject), lower($2)) > 0 \
             OR strpos(lower(recipients), lower($2)) > 0) \
             ORDER BY at DESC, id DESC LIMIT $3",
            &[&since, &q, &limit],
        )
        .await?;
        let mut entries = rows
            .iter()
            .map(|r| {
                let recipients: String = r.try_get(9)?;
                Ok(TraceEntry {
                    at: r.try_get(0)?,
                    direction: r.try_get(1)?,
                    door: r.try_get(2)?,
                    client: r.try_get(3)?,
                    mail_from: r.try_get(4)?,
                    message_id: r.try_get(5)?,
                    subject: r.try_get(6)?,
                    auth: r.try_get(7)?,
                    qid: r.try_get(8)?,
                    recipients: serde_json::from_str(&recipients).unwrap_or_default(),
                    answers: Vec::new(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut qids: Vec<&str> = entries
            .iter()
            .map(|e| e.qid.as_str())
            .filter(|q| !q.is_empty())
            .collect();
        qids.sort_unstable();
        qids.dedup();
        // Every entry's answers in one read, each entry's in the order
        // they were written.
        let mut answers: HashMap<String, Vec<TraceAnswer>> = HashMap::new();
        if !qids.is_empty() {
            for r in all(
                &tx,
                "SELECT qid, at, rcpt, outcome, answer FROM trace_answers WHERE qid = ANY($1) \
                 ORDER BY qid, at, id",
                &[&qids],
            )
            .await?
            {
                answers.entry(r.try_get(0)?).or_default().push(TraceAnswer {
                    at: r.try_get(1)?,
                    rcpt: r.try_get(2)?,
                    outcome: r.try_get(3)?,
                    answer: r.try_get(4)?,
                });
            }
        }
        tx.commit().await?;
        for e in &mut entries {
            if let Some(a) = answers.get(&e.qid) {
                e.answers = a.clone();
            }
        }
        Ok(entries)
    }

    async fn prune_trace(&self, before: i64) -> Result<usize> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        let n = exec(&tx, "DELETE FROM trace WHERE at < $1", &[&before]).await?;
        exec(&tx, "DELETE FROM trace_answers WHERE at < $1", &[&before]).await?;
        tx.commit().await?;
        Ok(n as usize)
    }
}

/// Text without NUL characters, which PostgreSQL's TEXT cannot hold (a
/// subject or a remote answer may carry one; SQLite kept it).
pub(super) fn without_nul(s: &str) -> Cow<'_, str> {
    if s.contains('\0') {
        Cow::Owned(s.replace('\0', ""))
    } else {
        Cow::Borrowed(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_left_out() {
        assert_eq!(without_nul("a\0b"), "ab");
        assert!(matches!(without_nul("ab"), Cow::Borrowed("ab")));
    }
}
