//! The Bayes models as the scorer reads them. Every message asks about a
//! few hundred tokens, most of which the last messages asked about too, so
//! the answers are kept in memory for as long as the model they came from
//! is unchanged. A model changes only by training, and every training adds
//! one to its totals: the totals, read with every lookup, tell whether the
//! kept answers are still the model's.

use std::collections::HashMap;
use std::sync::Mutex;

use spam::bayes::Counts;
use store::MailStore;

/// Tokens kept per model; past this, that model's answers start over.
const MAX_TOKENS: usize = 1 << 20;
/// Models kept (the server's and users' own); past this, all start over.
const MAX_MODELS: usize = 256;

#[derive(Default)]
pub struct ModelCache {
    models: Mutex<HashMap<i64, Kept>>,
}

/// What one model answered, at the totals it had then.
struct Kept {
    totals: (u64, u64),
    tokens: HashMap<String, (u64, u64)>,
}

impl ModelCache {
    /// The models of `scopes` added together: messages trained, and each
    /// token's counts, in the order of `tokens`.
    pub async fn counts(
        &self,
        store: &dyn MailStore,
        scopes: &[i64],
        tokens: &[String],
    ) -> store::Result<(Counts, Vec<Counts>)> {
        // What is kept, per scope: its totals and each token's counts.
        let kept: Vec<(Option<(u64, u64)>, Vec<Option<(u64, u64)>>)> = {
            let models = self.lock();
            scopes
                .iter()
                .map(|s| match models.get(s) {
                    Some(k) => (
                        Some(k.totals),
                        tokens.iter().map(|t| k.tokens.get(t).copied()).collect(),
                    ),
                    None => (None, vec![None; tokens.len()]),
                })
                .collect()
        };
        let missing: Vec<usize> = (0..tokens.len())
            .filter(|&i| kept.iter().any(|(_, c)| c[i].is_none()))
            .collect();
        let asked: Vec<String> = missing.iter().map(|&i| tokens[i].clone()).collect();
        let answers = store.bayes_counts(scopes, &asked).await?;

        // Per scope: the totals now, and every token's counts.
        let mut fresh: Vec<((u64, u64), Vec<(u64, u64)>)> = Vec::with_capacity(scopes.len());
        for ((s, (was, cached)), answer) in scopes.iter().zip(kept).zip(&answers) {
            let mut counts: Vec<(u64, u64)> = cached.iter().map(|c| c.unwrap_or((0, 0))).collect();
            for (j, &i) in missing.iter().enumerate() {
                counts[i] = answer.counts[j];
            }
            let some_kept = missing.len() < tokens.len();
            if was != Some(answer.totals) && some_kept {
                // Trained since: what was kept is stale; ask for it all.
                let again = store.bayes_counts(&[*s], tokens).await?;
                if let Some(a) = again.into_iter().next() {
                    fresh.push((a.totals, a.counts));
                    continue;
                }
            }
            fresh.push((answer.totals, counts));
        }
        self.keep(scopes, tokens, &fresh);

        let mut totals = Counts::default();
        let mut sums = vec![Counts::default(); tokens.len()];
        for (t, counts) in &fresh {
            totals.spam += t.0;
            totals.ham += t.1;
            for (sum, c) in sums.iter_mut().zip(counts) {
                sum.spam += c.0;
                sum.ham += c.1;
            }
        }
        Ok((totals, sums))
    }

    fn keep(&self, scopes: &[i64], tokens: &[String], fresh: &[((u64, u64), Vec<(u64, u64)>)]) {
        let mut models = self.lock();
        if models.len() + scopes.len() > MAX_MODELS {
            models.clear();
        }
        for (s, (totals, counts)) in scopes.iter().zip(fresh) {
            let k = models.entry(*s).or_insert_with(|| Kept {
                totals: *totals,
                tokens: HashMap::new(),
            });
            if k.totals != *totals || k.tokens.len() + tokens.len() > MAX_TOKENS {
                k.totals = *totals;
                k.tokens.clear();
            }
            for (t, c) in tokens.iter().zip(counts) {
                k.tokens.insert(t.clone(), *c);
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<i64, Kept>> {
        // A panic elsewhere cannot leave the map half-updated in a way that
        // matters: at worst some answers are asked for again.
        self.models.lock().unwrap_or_else(|p| p.into_inner())
    }
}
