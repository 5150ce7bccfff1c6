//! Robinson's token probabilities combined with Fisher's chi-square method
//! (as in SpamBayes): the probability that a message is spam, from how often
//! each of its tokens was seen in spam and in ham.

use crate::tokens::{Word, pair_words, word_of};

/// Counts of one token: in how many spam and ham messages it was seen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub spam: u64,
    pub ham: u64,
}

/// Below this many trained messages of either kind, Bayes says nothing.
pub const MIN_TRAINED: u64 = 20;
/// Strength of the prior (Robinson's s) and its value (x).
const S: f64 = 1.0;
const X: f64 = 0.5;
/// Tokens closer than this to 0.5 are ignored; at most this many are used.
const MIN_DEVIATION: f64 = 0.1;
const MAX_DISCRIMINATORS: usize = 150;

/// The spam probability of a message whose `tokens` have `counts`, given
/// `totals` trained messages; `None` while the model knows too little, or
/// knows nothing telling about these tokens.
///
/// Each piece of evidence counts once (SpamBayes' tiling): the strongest
/// clues are taken first, and a pair of neighbouring words is not taken
/// beside either of its words, nor a word beside a pair that holds it, so
/// that a phrase and its two words do not vote three times.
pub fn probability(totals: Counts, tokens: &[String], counts: &[Counts]) -> Option<f64> {
    if totals.spam < MIN_TRAINED || totals.ham < MIN_TRAINED {
        return None;
    }
    let mut clues: Vec<(f64, &str)> = counts
        .iter()
        .zip(tokens)
        .filter(|(c, _)| c.spam + c.ham > 0)
        .map(|(c, t)| {
            let spam_ratio = c.spam as f64 / totals.spam as f64;
            let ham_ratio = c.ham as f64 / totals.ham as f64;
            let p = spam_ratio / (spam_ratio + ham_ratio);
            let n = (c.spam + c.ham) as f64;
            (
                ((S * X + n * p) / (S + n)).clamp(0.0001, 0.9999),
                t.as_str(),
            )
        })
        .filter(|(f, _)| (f - 0.5).abs() >= MIN_DEVIATION)
        .collect();
    // No token the model knows anything telling about: no evidence, which
    // is not the same as evidence both ways.
    if clues.is_empty() {
        return None;
    }
    // Strongest first; ties by token, so the same message scores the same
    // (the tokens are distinct, so this order is total and an unstable
    // sort gives it).
    clues.sort_unstable_by(|a, b| {
        (b.0 - 0.5)
            .abs()
            .total_cmp(&(a.0 - 0.5).abs())
            .then_with(|| a.1.cmp(b.1))
    });
    // Words already counted, borrowed from the tokens: no allocation per clue.
    let mut used: std::collections::HashSet<Word<'_>, foldhash::fast::RandomState> =
        Default::default();
    let mut f = Vec::with_capacity(MAX_DISCRIMINATORS);
    for (p, token) in clues {
        if f.len() == MAX_DISCRIMINATORS {
            break;
        }
        match pair_words(token) {
            Some((a, b)) => {
                if used.contains(&a) || used.contains(&b) {
                    continue;
                }
                used.insert(a);
                used.insert(b);
            }
            None => {
                if !used.insert(word_of(token)) {
                    continue;
                }
            }
        }
        f.push(p);
    }
    let n = f.len();
    let ln_ham: f64 = f.iter().map(|p| p.ln()).sum();
    let ln_spam: f64 = f.iter().map(|p| (1.0 - p).ln()).sum();
    let h = chi2_complement(-2.0 * ln_ham, 2 * n);
    let s = chi2_complement(-2.0 * ln_spam, 2 * n);
    Some(((1.0 + h - s) / 2.0).clamp(0.0, 1.0))
}

/// P(chi-square with `df` degrees of freedom > `x2`), `df` even.
fn chi2_complement(x2: f64, df: usize) -> f64 {
    let m = x2 / 2.0;
    let mut term = (-m).exp();
    let mut sum = term;
    for i in 1..df / 2 {
        term *= m / i as f64;
        sum += term;
    }
    sum.min(1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cold_start_says_nothing() {
        assert_eq!(probability(Counts { spam: 5, ham: 100 }, &[], &[]), None);
    }

    #[test]
    fn spammy_and_hammy_tokens() {
        let totals = Counts {
            spam: 100,
            ham: 100,
        };
        let words: Vec<String> = (0..10).map(|i| format!("w{i}")).collect();
        let spammy = vec![Counts { spam: 60, ham: 1 }; 10];
        let hammy = vec![Counts { spam: 1, ham: 60 }; 10];
        assert!(probability(totals, &words, &spammy).unwrap() > 0.99);
        assert!(probability(totals, &words, &hammy).unwrap() < 0.01);
        let unknown = vec![Counts::default(); 10];
        assert_eq!(probability(totals, &words, &unknown), None);
        assert!((chi2_complement(0.0, 4) - 1.0).abs() < 1e-9);
    }

    #[test]
    fn a_phrase_and_its_words_count_once() {
        let totals = Counts {
            spam: 100,
            ham: 100,
        };
        let strong = Counts { spam: 60, ham: 1 };
        let weak_ham = Counts { spam: 1, ham: 30 };
        // "cheap pills" and its two words, all spammy, against three
        // independent hammy words: the phrase counts once.
        let tokens: Vec<String> = [
            "cheap pills",
            "cheap",
            "pills",
            "meeting",
            "agenda",
            "minutes",
        ]
        .map(String::from)
        .to_vec();
        let counts = [strong, strong, strong, weak_ham, weak_ham, weak_ham];
        let tiled = probability(totals, &tokens, &counts).unwrap();
        let apart: Vec<String> = ["one", "two", "three", "meeting", "agenda", "minutes"]
            .map(String::from)
            .to_vec();
        let untiled = probability(totals, &apart, &counts).unwrap();
        assert!(tiled < untiled, "{tiled} vs {untiled}");
        assert_eq!(
            pair_words("subject:cheap pills"),
            Some((("subject:", "cheap"), ("subject:", "pills")))
        );
        assert_eq!(pair_words("x-mailer:outlook express"), None);
        assert_eq!(pair_words("cheap"), None);
        assert_eq!(word_of("subject:cheap"), ("subject:", "cheap"));
    }
}
