//! Spam scoring on Xeams' scale: an additive score made of named reasons.
//! `>= 60` is Possible Junk, `>= 100` Junk (contract `[spam]`), negative
//! means trusted. Pure: the caller brings token counts from the store and
//! the authentication results from the pipeline.

pub mod bayes;
pub mod personal;
pub mod rules;
pub mod tokens;

/// One named ingredient of a score, shown to users and admins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reason {
    pub name: &'static str,
    pub score: i64,
}

/// A score and what it is made of.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Verdict {
    pub score: i64,
    pub reasons: Vec<Reason>,
}

impl Verdict {
    pub fn add(&mut self, name: &'static str, score: i64) {
        self.score += score;
        self.reasons.push(Reason { name, score });
    }

    /// The reasons as `NAME(score)` items separated by spaces (the index
    /// keeps them so).
    pub fn reasons_text(&self) -> String {
        self.items().join(" ")
    }

    fn items(&self) -> Vec<String> {
        self.reasons
            .iter()
            .map(|r| format!("{}({})", r.name, r.score))
            .collect()
    }

    /// `X-Spam-Score:` and `X-Spam-Status:` fields, with their CRLFs;
    /// Yes from `threshold` on (the Possible Junk one: a client's rule on
    /// X-Spam-Status then agrees with where the server filed it).
    pub fn header_fields(&self, threshold: i64) -> String {
        let tests = self.items();
        let yes = if self.score >= threshold { "Yes" } else { "No" };
        format!(
            "X-Spam-Score: {}\r\nX-Spam-Status: {yes}, score={} tests={}\r\n",
            self.score,
            self.score,
            if tests.is_empty() {
                "none".to_string()
            } else {
                tests.join(",")
            }
        )
    }
}

/// The Bayes part of a score: a probability in 0..1 turned into a reason
/// (None only for NaN). The bands were chosen on the project's
/// cross-validation (bench/spam/RESULTS.md): from 0.95 a message is sure
/// spam by itself (Junk); between 0.20 and 0.95 the chi-squared combination
/// is unsure or leaning to spam, which is what Possible Junk is for; below
/// 0.20 it leans to ham.
pub fn bayes_reason(probability: f64) -> Option<(&'static str, i64)> {
    Some(match probability {
        p if p >= 0.999 => ("BAYES_999", 110),
        p if p >= 0.99 => ("BAYES_99", 105),
        p if p >= 0.95 => ("BAYES_95", 100),
        p if p >= 0.80 => ("BAYES_80", 75),
        p if p >= 0.20 => ("BAYES_UNSURE", 60),
        p if p <= 0.001 => ("BAYES_00", -40),
        p if p <= 0.05 => ("BAYES_05", -25),
        p if p < 0.20 => ("BAYES_20", -10),
        _ => return None,
    })
}
