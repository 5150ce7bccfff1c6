//! [`crate::SpamData`] on PostgreSQL: Bayes counts, training events,
//! lists and correspondents.

use super::traces::without_nul;
use super::*;
use crate::names::normalize_sender_pattern;

/// Training events `training_log` keeps, of all accounts together.
const TRAINING_LOG_KEPT: i64 = 1000;

#[async_trait::async_trait]
impl SpamData for PgStore {
    async fn bayes_counts(&self, scopes: &[i64], tokens: &[String]) -> Result<Vec<ModelCounts>> {
        let c = self.client().await?;
        // One statement, so one snapshot: the totals (position -1), then
        // each found token with its position in `tokens`.
        let rows = all(
            &c,
            "SELECT -1::BIGINT, scope, spam, ham FROM bayes_totals WHERE scope = ANY($1) \
             UNION ALL \
             SELECT t.n - 1, b.scope, b.spam, b.ham \
             FROM unnest($2::TEXT[]) WITH ORDINALITY AS t(token, n) \
             JOIN bayes_tokens b ON b.token = t.token AND b.scope = ANY($1)",
            &[&scopes, &tokens],
        )
        .await?;
        let mut out: Vec<ModelCounts> = scopes
            .iter()
            .map(|_| ModelCounts {
                totals: (0, 0),
                counts: vec![(0, 0); tokens.len()],
            })
            .collect();
        for r in &rows {
            let at: i64 = r.try_get(0)?;
            let scope: i64 = r.try_get(1)?;
            let counts = (
                r.try_get::<_, i64>(2)?.max(0) as u64,
                r.try_get::<_, i64>(3)?.max(0) as u64,
            );
            for (i, _) in scopes.iter().enumerate().filter(|(_, s)| **s == scope) {
                if at < 0 {
                    out[i].totals = counts;
                } else if let Some(c) = out[i].counts.get_mut(at as usize) {
                    *c = counts;
                }
            }
        }
        Ok(out)
    }

    async fn bayes_changes(&self, scope: i64, since: u64) -> Result<ModelChanges> {
        let since = since.min(i64::MAX as u64) as i64;
        let mut c = self.client().await?;
        // The totals and the tokens from one snapshot.
        let tx = c
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await?;
        let totals = match one(
            &tx,
            "SELECT spam, ham FROM bayes_totals WHERE scope = $1",
            &[&scope],
        )
        .await?
        {
            Some(r) => (
                r.try_get::<_, i64>(0)?.max(0) as u64,
                r.try_get::<_, i64>(1)?.max(0) as u64,
            ),
            None => (0, 0),
        };
        // All of a model: by its key, not through the `gen` index.
        let rows = if since == 0 {
            all(
                &tx,
                "SELECT token, spam, ham FROM bayes_tokens WHERE scope = $1",
                &[&scope],
            )
            .await?
        } else {
            all(
                &tx,
                "SELECT token, spam, ham FROM bayes_tokens WHERE scope = $1 AND gen > $2",
                &[&scope, &since],
            )
            .await?
        };
        tx.commit().await?;
        let tokens = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get::<_, String>(0)?,
                    (
                        r.try_get::<_, i64>(1)?.max(0) as u64,
                        r.try_get::<_, i64>(2)?.max(0) as u64,
                    ),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(ModelChanges { totals, tokens })
    }

    async fn bayes_train(&self, scope: i64, tokens: &[String], spam: bool) -> Result<()> {
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        train_in_tx(&tx, scope, &[tokens], spam).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn bayes_train_many(
        &self,
        scope: i64,
        messages: &[Vec<String>],
        spam: bool,
    ) -> Result<()> {
        let lists: Vec<&[String]> = messages.iter().map(Vec::as_slice).collect();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        train_in_tx(&tx, scope, &lists, spam).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pending_training(&self, limit: usize) -> Result<Vec<TrainingEvent>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT id, account_id, blob, spam FROM training ORDER BY id LIMIT $1",
            &[&(limit.min(i64::MAX as usize) as i64)],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TrainingEvent {
                id: r.try_get(0)?,
                account: AccountId(r.try_get(1)?),
                blob: BlobHash(r.try_get(2)?),
                spam: r.try_get(3)?,
            })
        })
        .collect()
    }

    async fn finish_training(
        &self,
        event: &TrainingEvent,
        scopes: &[i64],
        tokens: Option<&[String]>,
        subject: &str,
    ) -> Result<()> {
        let subject: String = without_nul(subject).chars().take(200).collect();
        // Models are locked in one order by every trainer: two nodes
        // teaching the same models never deadlock.
        let mut scopes = scopes.to_vec();
        scopes.sort_unstable();
        let mut c = self.client().await?;
        let tx = c.transaction().await?;
        // Another trainer (another node) got it first: its delete holds the
        // row until it commits, and then this one finds nothing.
        if exec(&tx, "DELETE FROM training WHERE id = $1", &[&event.id]).await? == 0 {
            return Ok(());
        }
        if let Some(tokens) = tokens {
            for &scope in &scopes {
                train_in_tx(&tx, scope, &[tokens], event.spam).await?;
            }
            exec(
                &tx,
                "INSERT INTO training_log (account_id, spam, subject, at) VALUES ($1, $2, $3, $4)",
                &[&event.account.0, &event.spam, &subject, &unix_now()],
            )
            .await?;
            exec(
                &tx,
                "DELETE FROM training_log WHERE id <= (SELECT max(id) FROM training_log) - $1",
                &[&TRAINING_LOG_KEPT],
            )
            .await?;
        }
        // The body may have been waiting for this row to go.
        exec(
            &tx,
            "INSERT INTO blob_gc (hash) VALUES ($1) \
            ",
            &[&event.blob.0],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn model_summary(&self) -> Result<ModelSummary> {
        self.model_summary_of(0).await
    }

    async fn training_log(
        &self,
        account: Option<AccountId>,
        limit: usize,
    ) -> Result<Vec<TrainingLogEntry>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT l.at, a.address, l.spam, l.subject FROM training_log l \
             JOIN accounts a ON a.id = l.account_id \
             WHERE $1::BIGINT IS NULL OR l.account_id = $1 ORDER BY l.id DESC LIMIT $2",
            &[
                &account.map(|a| a.0),
                &(limit.min(i64::MAX as usize) as i64),
            ],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(TrainingLogEntry {
                at: r.try_get(0)?,
                account: r.try_get(1)?,
                spam: r.try_get(2)?,
                subject: r.try_get(3)?,
            })
        })
        .collect()
    }

    async fn model_summary_of(&self, scope: i64) -> Result<ModelSummary> {
        let c = self.client().await?;
        // One statement: the count and the totals from one snapshot.
        let r = c
            .query_one(
                "SELECT (SELECT count(*) FROM bayes_tokens WHERE scope = $1), \
                 coalesce(t.spam, 0), coalesce(t.ham, 0) \
                 FROM (SELECT 1) AS one LEFT JOIN bayes_totals t ON t.scope = $1",
                &[&scope],
            )
            .await?;
        Ok(ModelSummary {
            tokens: r.try_get::<_, i64>(0)?.max(0) as u64,
            spam: r.try_get::<_, i64>(1)?.max(0) as u64,
            ham: r.try_get::<_, i64>(2)?.max(0) as u64,
        })
    }

    async fn spam_lists(&self, account: AccountId) -> Result<Vec<ListedSender>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT pattern, allow FROM spam_lists WHERE account_id = $1 ORDER BY pattern",
            &[&account.0],
        )
        .await?
        .iter()
        .map(|r| {
            Ok(ListedSender {
                pattern: r.try_get(0)?,
                allow: r.try_get(1)?,
            })
        })
        .collect()
    }

    async fn set_spam_list(
        &self,
        account: AccountId,
        pattern: &str,
        allow: Option<bool>,
    ) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        let c = self.client().await?;
        match allow {
            Some(allow) => {
                exec(
                    &c,
                    "INSERT INTO spam_lists (account_id, pattern, allow) VALUES ($1, $2, $3) \
                 ON CONFLICT (account_id, pattern) DO UPDATE SET allow = EXCLUDED.allow",
                    &[&account.0, &pattern, &allow],
                )
                .await?
            }
            None => {
                exec(
                    &c,
                    "DELETE FROM spam_lists WHERE account_id = $1 AND pattern = $2",
                    &[&account.0, &pattern],
                )
                .await?
            }
        };
        Ok(())
    }

    async fn image_senders(&self, account: AccountId) -> Result<Vec<String>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT pattern FROM image_senders WHERE account_id = $1 ORDER BY pattern",
            &[&account.0],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }

    async fn set_image_sender(&self, account: AccountId, pattern: &str, on: bool) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        let sql = if on {
            "INSERT INTO image_senders (account_id, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING"
        } else {
            "DELETE FROM image_senders WHERE account_id = $1 AND pattern = $2"
        };
        let c = self.client().await?;
        exec(&c, sql, &[&account.0, &pattern]).await?;
        Ok(())
    }

    async fn record_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
        let c = self.client().await?;
        // An address named twice counts twice, as one row per address (an
        // upsert may touch a row once); in address order, so that two
        // nodes recording for one account lock rows in the same order.
        exec(
            &c,
            "INSERT INTO correspondents (account_id, address, sent, last_sent) \
             SELECT $1, a, count(*), $3 FROM unnest($2::TEXT[]) AS a GROUP BY a ORDER BY a \
             ON CONFLICT (account_id, address) DO UPDATE \
             SET sent = correspondents.sent + EXCLUDED.sent, last_sent = EXCLUDED.last_sent",
            &[&account.0, &addresses, &unix_now()],
        )
        .await?;
        Ok(())
    }

    async fn sent_to(&self, account: AccountId, address: &str) -> Result<u64> {
        let address = address.to_lowercase();
        let c = self.client().await?;
        let n: Option<i64> = match one(
            &c,
            "SELECT sent FROM correspondents WHERE account_id = $1 AND address = $2",
            &[&account.0, &address],
        )
        .await?
        {
            Some(r) => Some(r.try_get(0)?),
            None => None,
        };
        Ok(n.unwrap_or(0) as u64)
    }

    async fn correspondents(&self, account: AccountId, limit: usize) -> Result<Vec<String>> {
        let c = self.client().await?;
        all(
            &c,
            "SELECT address FROM correspondents WHERE account_id = $1 \
             ORDER BY sent DESC, last_sent DESC, address LIMIT $2",
            &[&account.0, &(limit.min(i64::MAX as usize) as i64)],
        )
        .await?
        .iter()
        .map(|r| Ok(r.try_get(0)?))
        .collect()
    }
}

/// Adds messages' tokens to the model of `scope`, as if taught one after
/// the other: the totals count each message, a token counts once per
/// message it is in (twice if listed twice), and its `gen` is the model's
/// count of messages after the last message that has it. Two statements
/// however many messages; the totals row is locked first, so trainers of
/// one model take turns.
async fn train_in_tx(
    c: &impl GenericClient,
    scope: i64,
    messages: &[&[String]],
    spam: bool,
) -> Result<()> {
    if messages.is_empty() {
        return Ok(());
    }
    let n = messages.len() as i64;
    let (s, h) = if spam { (1i64, 0i64) } else { (0, 1) };
    let generation: i64 = c
        .query_one(
            "INSERT INTO bayes_totals (scope, spam, ham) VALUES ($1, $2, $3) \
             ON CONFLICT (scope) DO UPDATE \
             SET spam = bayes_totals.spam + EXCLUDED.spam, ham = bayes_totals.ham + EXCLUDED.ham \
             RETURNING spam + ham",
            &[&scope, &(s * n), &(h * n)],
        )
        .await?
        .try_get(0)?;
    let mut tokens: Vec<&str> = Vec::new();
    let mut gens: Vec<i64> = Vec::new();
    for (k, message) in messages.iter().enumerate() {
        let g = generation - n + 1 + k as i64;
        for t in message.iter() {
            tokens.push(t);
            gens.push(g);
        }
    }
    if tokens.is_empty() {
        return Ok(());
    }
    exec(
        c,
        "INSERT INTO bayes_tokens (scope, token, spam, ham, gen) \
         SELECT $1, t, count(*) * $3, count(*) * $4, max(g) \
         FROM unnest($2::TEXT[], $5::BIGINT[]) AS u(t, g) GROUP BY t \
         ON CONFLICT (scope, token) DO UPDATE SET spam = bayes_tokens.spam + EXCLUDED.spam, \
         ham = bayes_tokens.ham + EXCLUDED.ham, gen = EXCLUDED.gen",
        &[&scope, &tokens, &s, &h, &gens],
    )
    .await?;
    Ok(())
}
