//! A model trained on a small corpus this test makes itself tells new spam
//! from new ham.

use std::collections::HashMap;

use spam::bayes::{Counts, probability};
use spam::tokens::tokens;

const SPAMMY: &[&str] = &[
    "viagra",
    "winner",
    "lottery",
    "prize",
    "casino",
    "bitcoin",
    "urgent",
    "million",
    "inheritance",
    "pills",
    "discount",
    "unsubscribe",
    "bonus",
    "jackpot",
    "claim",
];
const HAMMY: &[&str] = &[
    "meeting", "agenda", "report", "budget", "deploy", "review", "lunch", "schedule", "release",
    "patch", "sprint", "minutes", "invoice", "project", "team",
];
const COMMON: &[&str] = &[
    "the", "and", "you", "for", "this", "with", "your", "please", "today", "thanks",
];

struct Rng(u64);
impl Rng {
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        from[(self.0 % from.len() as u64) as usize]
    }
}

fn message(rng: &mut Rng, words: &[&str], n: usize) -> Vec<u8> {
    let subject: Vec<&str> = (0..3).map(|_| rng.pick(words)).collect();
    let body: Vec<&str> = (0..n)
        .map(|i| {
            if i % 3 == 0 {
                rng.pick(COMMON)
            } else {
                rng.pick(words)
            }
        })
        .collect();
    format!(
        "From: x@example.test\r\nSubject: {}\r\n\r\n{}\r\n",
        subject.join(" "),
        body.join(" ")
    )
    .into_bytes()
}

#[test]
fn a_trained_model_separates_spam_from_ham() {
    let mut rng = Rng(0x1234_5678);
    let mut counts: HashMap<String, Counts> = HashMap::new();
    let mut totals = Counts::default();
    for i in 0..60 {
        let spam = i % 2 == 0;
        let m = message(&mut rng, if spam { SPAMMY } else { HAMMY }, 40);
        for t in tokens(&m) {
            let c = counts.entry(t).or_default();
            if spam { c.spam += 1 } else { c.ham += 1 }
        }
        if spam {
            totals.spam += 1
        } else {
            totals.ham += 1
        }
    }
    let score = |m: &[u8]| {
        let t = tokens(m);
        let c: Vec<Counts> = t
            .iter()
            .map(|t| counts.get(t).copied().unwrap_or_default())
            .collect();
        probability(totals, &t, &c).unwrap()
    };
    for _ in 0..10 {
        assert!(score(&message(&mut rng, SPAMMY, 30)) > 0.95);
        assert!(score(&message(&mut rng, HAMMY, 30)) < 0.05);
    }
    assert_eq!(spam::bayes_reason(0.9995), Some(("BAYES_999", 110)));
    assert_eq!(spam::bayes_reason(0.995), Some(("BAYES_99", 105)));
    assert_eq!(spam::bayes_reason(0.96), Some(("BAYES_95", 100)));
    assert_eq!(spam::bayes_reason(0.85), Some(("BAYES_80", 75)));
    // Unsure: what Possible Junk is for.
    assert_eq!(spam::bayes_reason(0.5), Some(("BAYES_UNSURE", 60)));
    assert_eq!(spam::bayes_reason(0.1), Some(("BAYES_20", -10)));
    assert_eq!(spam::bayes_reason(0.0001), Some(("BAYES_00", -40)));
}
