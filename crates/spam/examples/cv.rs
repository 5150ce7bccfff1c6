//! The spam filter's cross-validation (bench/spam/cv.py runs it): k-fold
//! on the training part of the benchmark corpus only (messages whose
//! SHA-256 starts with 0-b; the held-out c-f part is never read here), with
//! the production scorer's own pieces: the rules, the tokens, the Bayes
//! combination and its bands, and the contract's thresholds (60 Possible
//! Junk, 100 Junk). Each fold's model is trained in memory on the other
//! folds, as `satchel spam train` would train the store.
//!
//!     cargo run --release -p spam --example cv -- CORPUS_DATA_DIR [FOLDS]

use std::collections::HashMap;
use std::path::Path;

use sha2::{Digest, Sha256};
use spam::bayes::Counts;

const GROUPS: [&str; 5] = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"];
const POSSIBLE_JUNK: i64 = 60;
const JUNK: i64 = 100;

struct Message {
    group: usize,
    spam: bool,
    tokens: Vec<String>,
    rules: i64,
    /// The rules that fired, for CV_RULES.
    fired: Vec<&'static str>,
    /// Its file, for CV_ERRORS.
    name: String,
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let Some(dir) = args.get(1) else {
        eprintln!("usage: cv CORPUS_DATA_DIR [FOLDS]");
        std::process::exit(2);
    };
    let folds: usize = args.get(2).and_then(|f| f.parse().ok()).unwrap_or(5);
    let started = std::time::Instant::now();
    let messages = load(Path::new(dir));
    let loaded = started.elapsed();
    // [group][junk, possible, inbox]
    let mut table = [[0usize; 3]; GROUPS.len()];
    // CV_HIST=1: [ham, spam][tenth of the Bayes probability; 10: none]
    let mut hist = [[0usize; 11]; 2];
    for fold in 0..folds {
        let mut totals = Counts::default();
        let mut model: HashMap<&str, Counts> = HashMap::new();
        for (i, m) in messages.iter().enumerate() {
            if i % folds == fold {
                continue;
            }
            if m.spam {
                totals.spam += 1;
            } else {
                totals.ham += 1;
            }
            for t in &m.tokens {
                let c = model.entry(t.as_str()).or_default();
                if m.spam {
                    c.spam += 1;
                } else {
                    c.ham += 1;
                }
            }
        }
        for (i, m) in messages.iter().enumerate() {
            if i % folds != fold {
                continue;
            }
            let counts: Vec<Counts> = m
                .tokens
                .iter()
                .map(|t| model.get(t.as_str()).copied().unwrap_or_default())
                .collect();
            let p = spam::bayes::probability(totals, &m.tokens, &counts);
            let bayes = p.and_then(spam::bayes_reason).map_or(0, |(_, score)| score);
            let score = m.rules + bayes;
            let column = if score >= JUNK {
                0
            } else if score >= POSSIBLE_JUNK {
                1
            } else {
                2
            };
            table[m.group][column] += 1;
            if std::env::var_os("CV_HIST").is_some() {
                let band = p.map_or(10, |p| ((p * 10.0) as usize).min(9));
                hist[usize::from(m.spam)][band] += 1;
            }
            // CV_ERRORS=1: each mistake, to see which part decided it.
            let wrong = if m.spam { column != 0 } else { column != 2 };
            if wrong && std::env::var_os("CV_ERRORS").is_some() {
                println!(
                    "{} score {score}: rules {} bayes {bayes} (p={:.3}) {}",
                    GROUPS[m.group],
                    m.rules,
                    p.unwrap_or(f64::NAN),
                    m.name
                );
            }
        }
    }
    report(&table, messages.len(), folds, loaded);
    // CV_RULES=1: how often each rule fires on ham and on spam (a rule that
    // fires on ham more than on spam is reweighted or removed).
    if std::env::var_os("CV_RULES").is_some() {
        let mut fires: std::collections::BTreeMap<&str, [usize; 2]> = Default::default();
        for m in &messages {
            for name in &m.fired {
                fires.entry(name).or_default()[usize::from(m.spam)] += 1;
            }
        }
        let (ham, spam) =
            messages.iter().fold(
                (0, 0),
                |(h, s), m| if m.spam { (h, s + 1) } else { (h + 1, s) },
            );
        println!("rule: fires on ham (of {ham}) / spam (of {spam})");
        for (name, [h, s]) in fires {
            println!("{name}: {h} / {s}");
        }
    }
    if std::env::var_os("CV_HIST").is_some() {
        println!("p band: ham / spam");
        for (b, (ham, spam)) in hist[0].iter().zip(&hist[1]).take(10).enumerate() {
            let from = b as f64 / 10.0;
            println!("{from:.1}-{:.1}: {ham} / {spam}", from + 0.1);
        }
    }
}

/// The training part's messages, tokenized and checked by the rules once.
fn load(dir: &Path) -> Vec<Message> {
    let mut out = Vec::new();
    for (group, name) in GROUPS.iter().enumerate() {
        let list = match std::fs::read_dir(dir.join(name)) {
            Ok(list) => list,
            Err(e) => {
                eprintln!("cannot read {}: {e}", dir.join(name).display());
                std::process::exit(1);
            }
        };
        let mut files: Vec<_> = list
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "txt"))
            .collect();
        files.sort();
        for path in files {
            let Ok(mut raw) = std::fs::read(&path) else {
                continue;
            };
            if raw.starts_with(b"From ") {
                let cut = raw
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(raw.len(), |i| i + 1);
                raw.drain(..cut);
            }
            let digest = hex(&Sha256::digest(&raw));
            // The held-out part (c-f) is the benchmark's, never read here.
            if !matches!(digest.as_bytes()[0], b'0'..=b'9' | b'a' | b'b') {
                continue;
            }
            let mut verdict = spam::Verdict::default();
            spam::rules::check(&raw, None, &mut verdict);
            out.push((
                digest,
                Message {
                    group,
                    spam: name.starts_with("spam"),
                    tokens: {
                        let mut t = spam::tokens::tokens(&raw);
                        if std::env::var_os("RULE_TOKENS").is_some() {
                            t.extend(verdict.reasons.iter().map(|r| format!("rule:{}", r.name)));
                        }
                        t
                    },
                    rules: verdict.score,
                    fired: verdict.reasons.iter().map(|r| r.name).collect(),
                    name: path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default(),
                },
            ));
        }
    }
    // Folds by hash order: the same folds on every run and machine.
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.into_iter().map(|(_, m)| m).collect()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn report(table: &[[usize; 3]; 5], total: usize, folds: usize, loaded: std::time::Duration) {
    println!(
        "{folds}-fold cross-validation on the training part: {total} messages (tokenized in {loaded:.1?})"
    );
    println!();
    println!("| group | messages | junk | possible-junk | inbox |");
    println!("| --- | --- | --- | --- | --- |");
    for (g, row) in table.iter().enumerate() {
        let n: usize = row.iter().sum();
        let pct = |x: usize| 100.0 * x as f64 / n.max(1) as f64;
        println!(
            "| {} | {n} | {} ({:.1}%) | {} ({:.1}%) | {} ({:.1}%) |",
            GROUPS[g],
            row[0],
            pct(row[0]),
            row[1],
            pct(row[1]),
            row[2],
            pct(row[2])
        );
    }
    let spam: [usize; 3] = [0, 1, 2].map(|c| table[3][c] + table[4][c]);
    let spam_n: usize = spam.iter().sum();
    let possible: usize = table.iter().map(|r| r[1]).sum();
    let easy_junk = table[0][0] + table[1][0];
    println!();
    println!(
        "aims: spam to Junk {:.1}% (>= 98), spam in INBOX {:.1}% (<= 0.5), easy ham in Junk {easy_junk} (0), \
         hard ham in Junk {} (0), hard ham in Possible Junk {}, Possible Junk {:.1}% of all (<= 3)",
        100.0 * spam[0] as f64 / spam_n.max(1) as f64,
        100.0 * spam[2] as f64 / spam_n.max(1) as f64,
        table[2][0],
        table[2][1],
        100.0 * possible as f64 / total.max(1) as f64,
    );
}
