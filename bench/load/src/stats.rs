//! Counting operations and their latencies across clients.

use std::sync::Mutex;
use std::time::Duration;

#[derive(Default)]
pub struct Stats {
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    /// Latency of each operation, in microseconds.
    latencies: Vec<u64>,
    /// The same, by kind of operation (`FETCH headers`, `RETR`, ...).
    by_kind: std::collections::BTreeMap<&'static str, Vec<u64>>,
    /// Bigger units of work (a whole session, a whole mix).
    rounds: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    pub fn op(&self, kind: &'static str, took: Duration) {
        let micros = took.as_micros() as u64;
        let mut i = self.lock();
        i.latencies.push(micros);
        i.by_kind.entry(kind).or_default().push(micros);
    }

    pub fn round(&self) {
        self.lock().rounds += 1;
    }

    pub fn error(&self, what: String) {
        let mut i = self.lock();
        i.errors += 1;
        i.first_error.get_or_insert(what);
    }

    /// One line: `ops/s=… rounds/s=… p50_us=… p90_us=… p99_us=… errors=…`.
    pub fn report(&self, elapsed: Duration) -> String {
        let mut i = self.lock();
        i.latencies.sort_unstable();
        let pct = |p: f64| -> u64 {
            if i.latencies.is_empty() {
                return 0;
            }
            let at = ((i.latencies.len() as f64 - 1.0) * p).round() as usize;
            i.latencies[at]
        };
        let secs = elapsed.as_secs_f64().max(1e-9);
        let mut line = format!(
            "ops/s={:.1} rounds/s={:.2} p50_us={} p90_us={} p99_us={} ops={} errors={}",
            i.latencies.len() as f64 / secs,
            i.rounds as f64 / secs,
            pct(0.5),
            pct(0.9),
            pct(0.99),
            i.latencies.len(),
            i.errors
        );
        if let Some(e) = &i.first_error {
            line.push_str(&format!(" first_error={e:?}"));
        }
        line
    }

    /// A line per kind of operation: how many, p50, p99, and its share of
    /// all the time clients spent waiting (where a load's time goes).
    pub fn breakdown(&self) -> String {
        let mut i = self.lock();
        let total: u64 = i.latencies.iter().sum::<u64>().max(1);
        let mut out = String::new();
        for (kind, l) in i.by_kind.iter_mut() {
            l.sort_unstable();
            let at = |p: f64| l[((l.len() as f64 - 1.0) * p).round() as usize];
            let spent: u64 = l.iter().sum();
            out.push_str(&format!(
                "  {kind:<20} n={:<7} p50_us={:<7} p99_us={:<7} share={:.1}%\n",
                l.len(),
                at(0.5),
                at(0.99),
                spent as f64 * 100.0 / total as f64
            ));
        }
        out
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
