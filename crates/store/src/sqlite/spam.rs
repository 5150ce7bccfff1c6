//! The embedded store's [`crate::SpamData`]. What the spam filter keeps: Bayes counts, training events, lists and correspondents.

use super::*;

/// Training events `training_log` keeps, of all accounts together.
const TRAINING_LOG_KEPT: i64 = 1000;

#[async_trait]
impl SpamData for SqliteStore {
    async fn bayes_counts(&self, scopes: &[i64], tokens: &[String]) -> Result<Vec<ModelCounts>> {
        let scope_json = format!(
            "[{}]",
            scopes
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(",")
        );
        let token_json = string_json(tokens);
        // One statement and one row, so one read snapshot: JSON arrays of
        // [scope, spam, ham] totals and of [token position, scope, spam, ham].
        let (totals, found) = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT \
                     (SELECT json_group_array(json_array(scope, spam, ham)) FROM bayes_totals \
                      WHERE scope IN (SELECT value FROM json_each(?1))), \
                     (SELECT json_group_array(json_array(t.key, b.scope, b.spam, b.ham)) \
                      FROM json_each(?2) t, json_each(?1) s \
                      CROSS JOIN bayes_tokens b ON b.scope = s.value AND b.token = t.value)",
                    params![scope_json, token_json],
                    |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
                )?
                .ok_or_else(|| Error::Corrupt("the Bayes lookup gave no row".into()))
            })
            .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes lookup: {e}"));
        let totals: Vec<(i64, i64, i64)> = serde_json::from_str(&totals).map_err(corrupt)?;
        let found: Vec<(usize, i64, i64, i64)> = serde_json::from_str(&found).map_err(corrupt)?;
        let mut out: Vec<ModelCounts> = scopes
            .iter()
            .map(|_| ModelCounts {
                totals: (0, 0),
                counts: vec![(0, 0); tokens.len()],
            })
            .collect();
        for (scope, spam, ham) in totals {
            for (i, _) in scopes.iter().enumerate().filter(|(_, s)| **s == scope) {
                out[i].totals = (spam as u64, ham as u64);
            }
        }
        for (at, scope, spam, ham) in found {
            for (i, _) in scopes.iter().enumerate().filter(|(_, s)| **s == scope) {
                if let Some(c) = out[i].counts.get_mut(at) {
                    *c = (spam as u64, ham as u64);
                }
            }
        }
        Ok(out)
    }

    async fn bayes_changes(&self, scope: i64, since: u64) -> Result<ModelChanges> {
        // All of a model: read in key order, not through the `gen` index
        // (which would cost a key lookup per token).
        let sql = if since == 0 {
            "SELECT \
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = ?1), \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = ?1 AND ?2 = 0)"
        } else {
            "SELECT \
             (SELECT json_array(spam, ham) FROM bayes_totals WHERE scope = ?1), \
             (SELECT json_group_array(json_array(token, spam, ham)) FROM bayes_tokens \
              WHERE scope = ?1 AND gen > ?2)"
        };
        let (totals, tokens) = self
            .db
            .read(move |c| {
                one(c, sql, params![scope, since as i64], |r| {
                    Ok((r.get::<_, Option<String>>(0)?, r.get::<_, String>(1)?))
                })?
                .ok_or_else(|| Error::Corrupt("the Bayes model gave no row".into()))
            })
            .await?;
        let corrupt = |e: serde_json::Error| Error::Corrupt(format!("Bayes model: {e}"));
        let totals: (u64, u64) = match totals {
            Some(t) => serde_json::from_str(&t).map_err(corrupt)?,
            None => (0, 0),
        };
        let tokens: Vec<(String, u64, u64)> = serde_json::from_str(&tokens).map_err(corrupt)?;
        Ok(ModelChanges {
            totals,
            tokens: tokens.into_iter().map(|(t, s, h)| (t, (s, h))).collect(),
        })
    }

    async fn bayes_train(&self, scope: i64, tokens: &[String], spam: bool) -> Result<()> {
        let tokens = string_json(tokens);
        self.db
            .write(move |c| train_in_tx(c, scope, &tokens, spam))
            .await
    }

    async fn bayes_train_many(
        &self,
        scope: i64,
        messages: &[Vec<String>],
        spam: bool,
    ) -> Result<()> {
        let lists: Vec<String> = messages.iter().map(|t| string_json(t)).collect();
        self.db
            .write(move |c| {
                lists
                    .iter()
                    .try_for_each(|tokens| train_in_tx(c, scope, tokens, spam))
            })
            .await
    }

    async fn pending_training(&self, limit: usize) -> Result<Vec<TrainingEvent>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT id, account_id, blob, spam FROM training ORDER BY id LIMIT ?1",
                    [limit as i64],
                    |r| {
                        Ok(TrainingEvent {
                            id: r.get(0)?,
                            account: r.get(1)?,
                            blob: BlobHash(r.get(2)?),
                            spam: r.get(3)?,
                        })
                    },
                )
            })
            .await
    }

    async fn finish_training(
        &self,
        event: &TrainingEvent,
        scopes: &[i64],
        tokens: Option<&[String]>,
        subject: &str,
    ) -> Result<()> {
        let (id, spam, blob) = (event.id, event.spam, event.blob.0.clone());
        let (account, subject) = (event.account, subject.chars().take(200).collect::<String>());
        let scopes = scopes.to_vec();
        let tokens = tokens.map(string_json);
        self.db
            .write(move |c| {
                // Another trainer (a second process on the same store) got it first.
                if exec(c, "DELETE FROM training WHERE id = ?1", [id])? == 0 {
                    return Ok(());
                }
                if let Some(tokens) = &tokens {
                    for &scope in &scopes {
                        train_in_tx(c, scope, tokens, spam)?;
                    }
                    exec(
                        c,
                        "INSERT INTO training_log (account_id, spam, subject, at) \
                         VALUES (?1, ?2, ?3, ?4)",
                        params![account, spam, subject, unix_now()],
                    )?;
                    exec(
                        c,
                        "DELETE FROM training_log WHERE id <= \
                         (SELECT max(id) FROM training_log) - ?1",
                        [TRAINING_LOG_KEPT],
                    )?;
                }
                // The blob may have been waiting for this row to go.
                exec(
                    c,
                    "INSERT OR IGNORE INTO blob_gc (hash) VALUES (?1)",
                    [blob],
                )?;
                Ok(())
            })
            .await
    }

    async fn model_summary(&self) -> Result<ModelSummary> {
        self.model_summary_of(0).await
    }

    async fn training_log(
        &self,
        account: Option<AccountId>,
        limit: usize,
    ) -> Result<Vec<TrainingLogEntry>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT l.at, a.address, l.spam, l.subject FROM training_log l \
                     JOIN accounts a ON a.id = l.account_id \
                     WHERE ?1 IS NULL OR l.account_id = ?1 ORDER BY l.id DESC LIMIT ?2",
                    params![account, limit as i64],
                    |r| {
                        Ok(TrainingLogEntry {
                            at: r.get(0)?,
                            account: r.get(1)?,
                            spam: r.get(2)?,
                            subject: r.get(3)?,
                        })
                    },
                )
            })
            .await
    }

    async fn model_summary_of(&self, scope: i64) -> Result<ModelSummary> {
        self.db
            .read(move |c| {
                let tokens: i64 = one(
                    c,
                    "SELECT count(*) FROM bayes_tokens WHERE scope = ?1",
                    [scope],
                    |r| r.get(0),
                )?
                .unwrap_or(0);
                let (spam, ham): (i64, i64) = one(
                    c,
                    "SELECT spam, ham FROM bayes_totals WHERE scope = ?1",
                    [scope],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )?
                .unwrap_or((0, 0));
                Ok(ModelSummary {
                    tokens: tokens.max(0) as u64,
                    spam: spam.max(0) as u64,
                    ham: ham.max(0) as u64,
                })
            })
            .await
    }

    async fn spam_lists(&self, account: AccountId) -> Result<Vec<ListedSender>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT pattern, allow FROM spam_lists WHERE account_id = ?1 ORDER BY pattern",
                    [account],
                    |r| {
                        Ok(ListedSender {
                            pattern: r.get(0)?,
                            allow: r.get(1)?,
                        })
                    },
                )
            })
            .await
    }

    async fn set_spam_list(
        &self,
        account: AccountId,
        pattern: &str,
        allow: Option<bool>,
    ) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        self.db
            .write(move |c| {
                match allow {
                    Some(allow) => exec(
                        c,
                        "INSERT INTO spam_lists (account_id, pattern, allow) VALUES (?1, ?2, ?3) \
                         ON CONFLICT (account_id, pattern) DO UPDATE SET allow = ?3",
                        params![account, pattern, allow],
                    )?,
                    None => exec(
                        c,
                        "DELETE FROM spam_lists WHERE account_id = ?1 AND pattern = ?2",
                        params![account, pattern],
                    )?,
                };
                Ok(())
            })
            .await
    }

    async fn image_senders(&self, account: AccountId) -> Result<Vec<String>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT pattern FROM image_senders WHERE account_id = ?1 ORDER BY pattern",
                    [account],
                    |r| r.get(0),
                )
            })
            .await
    }

    async fn set_image_sender(&self, account: AccountId, pattern: &str, on: bool) -> Result<()> {
        let pattern = normalize_sender_pattern(pattern)?;
        self.db
            .write(move |c| {
                let sql = if on {
                    "INSERT INTO image_senders (account_id, pattern) VALUES (?1, ?2) \
                     ON CONFLICT DO NOTHING"
                } else {
                    "DELETE FROM image_senders WHERE account_id = ?1 AND pattern = ?2"
                };
                exec(c, sql, params![account, pattern])?;
                Ok(())
            })
            .await
    }

    async fn record_correspondents(&self, account: AccountId, addresses: &[String]) -> Result<()> {
        if addresses.is_empty() {
            return Ok(());
        }
        let addresses: Vec<String> = addresses.iter().map(|a| a.to_lowercase()).collect();
        let list = string_json(&addresses);
        self.db
            .write(move |c| {
                exec(
                    c,
                    "INSERT INTO correspondents (account_id, address, sent, last_sent) \
                     SELECT ?1, value, 1, ?3 FROM json_each(?2) WHERE true \
                     ON CONFLICT (account_id, address) DO UPDATE SET sent = sent + 1, last_sent = ?3",
                    params![account, list, unix_now()],
                )?;
                Ok(())
            })
            .await
    }

    async fn sent_to(&self, account: AccountId, address: &str) -> Result<u64> {
        let address = address.to_lowercase();
        let n: Option<i64> = self
            .db
            .read(move |c| {
                one(
                    c,
                    "SELECT sent FROM correspondents WHERE account_id = ?1 AND address = ?2",
                    params![account, address],
                    |r| r.get(0),
                )
            })
            .await?;
        Ok(n.unwrap_or(0) as u64)
    }

    async fn correspondents(&self, account: AccountId, limit: usize) -> Result<Vec<String>> {
        self.db
            .read(move |c| {
                all(
                    c,
                    "SELECT address FROM correspondents WHERE account_id = ?1 \
                     ORDER BY sent DESC, last_sent DESC, address LIMIT ?2",
                    params![account, limit as i64],
                    |r| r.get(0),
                )
            })
            .await
    }
}

/// Adds one message's tokens (a JSON array) to the model of `scope`.
fn train_in_tx(c: &Connection, scope: i64, tokens: &str, spam: bool) -> Result<()> {
    let (s, h) = if spam { (1i64, 0i64) } else { (0, 1) };
    let generation: i64 = one(
        c,
        "INSERT INTO bayes_totals (scope, spam, ham) VALUES (?1, ?2, ?3) \
         ON CONFLICT (scope) DO UPDATE SET spam = spam + ?2, ham = ham + ?3 \
         RETURNING spam + ham",
        params![scope, s, h],
        |r| r.get(0),
    )?
    .ok_or_else(|| Error::Corrupt("training gave no generation".into()))?;
    exec(
        c,
        "INSERT INTO bayes_tokens (scope, token, spam, ham, gen) \
         SELECT ?1, value, ?3, ?4, ?5 FROM json_each(?2) WHERE true \
         ON CONFLICT (scope, token) DO UPDATE SET spam = spam + ?3, ham = ham + ?4, gen = ?5",
        params![scope, tokens, s, h, generation],
    )?;
    Ok(())
}
