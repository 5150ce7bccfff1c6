//! The Bayes models as the scorer reads them. Every message asks about a
//! few hundred tokens, most of which the last messages asked about too, so
//! the answers are kept in memory for as long as the model they came from
//! is unchanged. A model changes only by training, and every training adds
//! one to its totals: the totals, read with every lookup, tell whether the
//! kept answers are still the model's.
//!
//! A long-lived scorer (the server, a folder scored at once) holds the
//! server's model whole instead, and catches up with other processes'
//! training at most [`RESIDENT_FRESH`] late, reading only changed tokens:
//! no lookup at all for most messages.

/// Maps keyed by token: foldhash (seeded per process) instead of SipHash,
/// which was a tenth of scoring's time.
type HashMap<K, V> = std::collections::HashMap<K, V, foldhash::fast::RandomState>;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use spam::bayes::Counts;
use store::MailStore;
use tokio::sync::RwLock;

use crate::SERVER_MODEL;

/// Tokens kept per model; past this, that model's answers start over.
const MAX_TOKENS: usize = 1 << 20;
/// Models kept (the server's and users' own); past this, all start over.
const MAX_MODELS: usize = 256;
/// How stale a resident server model may be: training shows in scores
/// this much later at most.
pub const RESIDENT_FRESH: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct ModelCache {
    models: Mutex<HashMap<i64, Kept>>,
    /// The server's model, whole, when this scorer lives long enough.
    resident: Option<RwLock<Resident>>,
}

/// The whole server model and when it was last brought up to date.
#[derive(Default)]
struct Resident {
    totals: (u64, u64),
    tokens: HashMap<String, (u64, u64)>,
    checked: Option<Instant>,
}

/// One model's totals and its counts of the tokens asked about.
type Tokens = ((u64, u64), Vec<(u64, u64)>);

/// What is kept of one model: its totals then (None: nothing kept) and
/// each asked token's counts, if kept.
type Cached = (Option<(u64, u64)>, Vec<Option<(u64, u64)>>);

/// What one model answered, at the totals it had then.
struct Kept {
    totals: (u64, u64),
    tokens: HashMap<String, (u64, u64)>,
}

impl ModelCache {
    /// A cache that holds the server's model whole.
    pub fn resident() -> ModelCache {
        ModelCache {
            resident: Some(RwLock::new(Resident::default())),
            ..ModelCache::default()
        }
    }

    /// The models of `scopes` added together: messages trained, and each
    /// token's counts, in the order of `tokens`.
    pub async fn counts(
        &self,
        store: &dyn MailStore,
        scopes: &[i64],
        tokens: &[String],
    ) -> store::Result<(Counts, Vec<Counts>)> {
        let mut fresh = Vec::with_capacity(scopes.len());
        let mut looked_up: Vec<i64> = Vec::with_capacity(scopes.len());
        for &s in scopes {
            match &self.resident {
                Some(resident) if s == SERVER_MODEL => {
                    fresh.push(Self::held(resident, store, tokens).await?)
                }
                _ => looked_up.push(s),
            }
        }
        if !looked_up.is_empty() {
            fresh.extend(self.looked_up(store, &looked_up, tokens).await?);
        }
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

    /// Counts from the resident model, brought up to date first when it
    /// was last checked more than [`RESIDENT_FRESH`] ago.
    async fn held(
        resident: &RwLock<Resident>,
        store: &dyn MailStore,
        tokens: &[String],
    ) -> store::Result<Tokens> {
        let stale = |r: &Resident| r.checked.is_none_or(|c| c.elapsed() > RESIDENT_FRESH);
        if stale(&*resident.read().await) {
            let mut r = resident.write().await;
            if stale(&r) {
                let seen = r.totals.0 + r.totals.1;
                let mut changes = store.bayes_changes(SERVER_MODEL, seen).await?;
                if changes.totals.0 + changes.totals.1 < seen {
                    // Fewer trained than before: another model altogether.
                    changes = store.bayes_changes(SERVER_MODEL, 0).await?;
                    r.tokens.clear();
                }
                r.totals = changes.totals;
                r.tokens.extend(changes.tokens);
                r.checked = Some(Instant::now());
            }
        }
        let r = resident.read().await;
        let counts = tokens
            .iter()
            .map(|t| r.tokens.get(t).copied().unwrap_or((0, 0)))
            .collect();
        Ok((r.totals, counts))
    }

    /// Counts of models looked up token by token, with the answers kept
    /// while each model's totals stay the same.
    async fn looked_up(
        &self,
        store: &dyn MailStore,
        scopes: &[i64],
        tokens: &[String],
    ) -> store::Result<Vec<Tokens>> {
        // What is kept, per scope: its totals and each token's counts.
        let kept: Vec<Cached> = {
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
        let mut fresh: Vec<Tokens> = Vec::with_capacity(scopes.len());
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
        Ok(fresh)
    }

    fn keep(&self, scopes: &[i64], tokens: &[String], fresh: &[Tokens]) {
        let mut models = self.lock();
        if models.len() + scopes.len() > MAX_MODELS {
            models.clear();
        }
        for (s, (totals, counts)) in scopes.iter().zip(fresh) {
            let k = models.entry(*s).or_insert_with(|| Kept {
                totals: *totals,
                tokens: HashMap::default(),
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
