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
    /// Bigger units of work (a whole session, a whole mix).
    rounds: u64,
    errors: u64,
    first_error: Option<String>,
}

impl Stats {
    pub fn op(&self, took: Duration) {
        self.lock().latencies.push(took.as_micros() as u64);
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

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }
}
