//! Stage 4, the spam verdict: what the pipeline tells the scorer, the
//! scorer (rules, the server's and the user's Bayes models, allow/block
//! lists, correspondents) and the thresholds that name a mailbox.

use std::sync::Arc;

use store::{AccountId, MailStore};

use crate::model;

/// What the pipeline knows of a message besides its bytes, for its score.
#[derive(Debug, Clone, Default)]
pub struct SpamFacts<'a> {
    /// The `Authentication-Results:` value, for mail that came over SMTP.
    pub auth_results: Option<&'a str>,
    /// The envelope sender, matched against block lists too.
    pub mail_from: Option<&'a str>,
    /// The From domain is one of ours (the forged local sender check).
    pub local_from: bool,
    /// On how many configured DNS blocklists the client's address is.
    pub dnsbl_listed: usize,
}

/// Scores a message on Xeams' scale: additive, `>= possible_junk` is
/// Possible Junk, `>= junk` is Junk, negative for trusted senders.
#[async_trait::async_trait]
pub trait SpamScorer: Send + Sync {
    /// One verdict per account of `accounts`, each with that user's own
    /// model, lists and correspondents; with no accounts, one verdict: the
    /// server's view alone.
    async fn score(
        &self,
        message: &[u8],
        facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict>;
}

/// The server's scorer: the rules, the server's Bayes model added to each
/// user's own (trained by `satchel spam train` and by users moving mail in
/// and out of Junk), and what each user said of the sender.
pub struct StoreScorer {
    store: Arc<dyn MailStore>,
    models: model::ModelCache,
}

impl StoreScorer {
    /// For a message or two: the models are looked up token by token.
    pub fn new(store: Arc<dyn MailStore>) -> StoreScorer {
        StoreScorer {
            store,
            models: model::ModelCache::default(),
        }
    }

    /// For many messages (the server, a folder): holds the server's model
    /// in memory, loaded with the first message and kept up to date with
    /// training at most [`RESIDENT_FRESH`] late.
    pub fn resident(store: Arc<dyn MailStore>) -> StoreScorer {
        StoreScorer {
            store,
            models: model::ModelCache::resident(),
        }
    }

    /// The Bayes reason from the models of `scopes`, added together.
    async fn bayes(&self, scopes: &[i64], tokens: &[String], verdict: &mut spam::Verdict) {
        match self.models.counts(&*self.store, scopes, tokens).await {
            Ok((totals, counts)) => {
                if let Some((name, score)) =
                    spam::bayes::probability(totals, tokens, &counts).and_then(spam::bayes_reason)
                {
                    verdict.add(name, score);
                }
            }
            // Mail still flows, judged by the rules alone.
            Err(e) => tracing::warn!("spam: cannot read the Bayes model: {e}"),
        }
    }

    /// What `account` said of the sender (From, or the envelope sender for
    /// a block).
    async fn standing(
        &self,
        account: AccountId,
        from: Option<&str>,
        mail_from: Option<&str>,
    ) -> Result<spam::personal::Standing, store::Error> {
        let lists = self.store.spam_lists(account).await?;
        let entries = lists.iter().map(|l| (l.pattern.as_str(), l.allow));
        let by_from = from.and_then(|f| spam::personal::listed(entries.clone(), f));
        let by_envelope = mail_from
            .filter(|m| !m.is_empty())
            .and_then(|m| spam::personal::listed(entries, m));
        // A block on either address holds; an allow needs the From.
        let listed = match (by_from, by_envelope) {
            (_, Some(false)) => Some(false),
            (f, _) => f,
        };
        let sent_to = match from {
            Some(f) => self.store.sent_to(account, f).await?,
            None => 0,
        };
        Ok(spam::personal::Standing { listed, sent_to })
    }
}

/// The server-wide Bayes model's scope in the store.
pub const SERVER_MODEL: i64 = 0;

#[async_trait::async_trait]
impl SpamScorer for StoreScorer {
    async fn score(
        &self,
        message: &[u8],
        facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict> {
        let mut shared = spam::Verdict::default();
        spam::rules::check(message, facts.auth_results, &mut shared);
        if facts.local_from
            && let Some(ar) = facts.auth_results
        {
            spam::rules::forged_local_sender(ar, &mut shared);
        }
        spam::rules::dnsbl(facts.dnsbl_listed, &mut shared);
        let tokens = spam::tokens::tokens(message);
        if accounts.is_empty() {
            self.bayes(&[SERVER_MODEL], &tokens, &mut shared).await;
            return vec![shared];
        }
        let from = spam::rules::from_address(message);
        let mut out = Vec::with_capacity(accounts.len());
        for &account in accounts {
            let mut verdict = shared.clone();
            self.bayes(&[SERVER_MODEL, account.scope()], &tokens, &mut verdict)
                .await;
            match self
                .standing(account, from.as_deref(), facts.mail_from)
                .await
            {
                Ok(standing) => spam::personal::check(&standing, facts.auth_results, &mut verdict),
                Err(e) => tracing::warn!("spam: cannot read account {account}'s lists: {e}"),
            }
            out.push(verdict);
        }
        out
    }
}

/// Scores nothing (every message 0: INBOX); for a pipeline without a store
/// model, such as tests of other parts.
pub struct Unscored;

#[async_trait::async_trait]
impl SpamScorer for Unscored {
    async fn score(
        &self,
        _message: &[u8],
        _facts: &SpamFacts<'_>,
        accounts: &[AccountId],
    ) -> Vec<spam::Verdict> {
        vec![spam::Verdict::default(); accounts.len().max(1)]
    }
}

/// Where scores file mail (contract `[spam]`).
#[derive(Debug, Clone, Copy)]
pub struct Thresholds {
    pub possible_junk: i64,
    pub junk: i64,
}

impl Default for Thresholds {
    fn default() -> Thresholds {
        Thresholds {
            possible_junk: 60,
            junk: 100,
        }
    }
}

impl Thresholds {
    /// The default mailbox for a score.
    pub fn mailbox(&self, score: i64) -> &'static str {
        if score >= self.junk {
            "Junk"
        } else if score >= self.possible_junk {
            "Possible Junk"
        } else {
            "INBOX"
        }
    }

    /// The verdict a score is, as the server's figures count it.
    pub fn verdict(&self, score: i64) -> stats::Verdict {
        if score >= self.junk {
            stats::Verdict::Junk
        } else if score >= self.possible_junk {
            stats::Verdict::PossibleJunk
        } else {
            stats::Verdict::Inbox
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_file_by_score() {
        let t = Thresholds::default();
        assert_eq!(t.mailbox(-20), "INBOX");
        assert_eq!(t.mailbox(59), "INBOX");
        assert_eq!(t.mailbox(60), "Possible Junk");
        assert_eq!(t.mailbox(99), "Possible Junk");
        assert_eq!(t.mailbox(100), "Junk");
    }
}
