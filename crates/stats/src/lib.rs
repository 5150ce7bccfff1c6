//! The figures a running server keeps in memory (one set per process):
//! open connections per door, deliveries by the verdict they were filed
//! by, per hour for the last two days and in all, and the uptime. The
//! doors and the pipeline count; the admin's server page and `/metrics`
//! read [`Stats::snapshot`]. Nothing here is persisted: a restart starts
//! from zero, which Prometheus counters allow.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// Hours of delivery counts kept.
pub const HOURS: usize = 48;

/// Where a delivery's verdict filed it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Inbox,
    PossibleJunk,
    Junk,
}

impl Verdict {
    pub const ALL: [Verdict; 3] = [Verdict::Inbox, Verdict::PossibleJunk, Verdict::Junk];

    /// Its label in `/metrics`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Inbox => "inbox",
            Verdict::PossibleJunk => "possible_junk",
            Verdict::Junk => "junk",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The process's figures.
pub struct Stats {
    started: Instant,
    doors: Mutex<BTreeMap<&'static str, u64>>,
    delivered: [AtomicU64; 3],
    /// (the hour's start in Unix seconds, counts by verdict), oldest first.
    hours: Mutex<VecDeque<(i64, [u64; 3])>>,
}

/// A connection counted as open until this is dropped.
pub struct Open {
    door: &'static str,
}

impl Drop for Open {
    fn drop(&mut self) {
        let mut doors = global().doors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = doors.get_mut(self.door) {
            *n = n.saturating_sub(1);
        }
    }
}

/// What the figures are at one moment.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub uptime_secs: u64,
    /// Open connections per door that has seen any.
    pub doors: Vec<(&'static str, u64)>,
    /// Deliveries since the start, by verdict ([`Verdict::ALL`]'s order).
    pub delivered: [u64; 3],
    /// The last [`HOURS`] hours, oldest first, each (hour start, counts);
    /// hours without deliveries are there with zeros.
    pub hours: Vec<(i64, [u64; 3])>,
}

/// The process's one set of figures.
pub fn global() -> &'static Stats {
    static STATS: OnceLock<Stats> = OnceLock::new();
    STATS.get_or_init(|| Stats {
        started: Instant::now(),
        doors: Mutex::new(BTreeMap::new()),
        delivered: Default::default(),
        hours: Mutex::new(VecDeque::new()),
    })
}

impl Stats {
    /// Shows `door` among the doors (with none open) from its start.
    pub fn listening(&self, door: &'static str) {
        self.doors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(door)
            .or_default();
    }

    /// Counts a connection to `door` as open while the answer lives.
    pub fn open(&'static self, door: &'static str) -> Open {
        *self
            .doors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .entry(door)
            .or_default() += 1;
        Open { door }
    }

    /// Counts one delivered copy.
    pub fn delivered(&self, verdict: Verdict) {
        self.delivered[verdict.index()].fetch_add(1, Ordering::Relaxed);
        let hour = now_unix() / 3600 * 3600;
        let mut hours = self.hours.lock().unwrap_or_else(|p| p.into_inner());
        match hours.back_mut() {
            Some((h, counts)) if *h == hour => counts[verdict.index()] += 1,
            _ => {
                let mut counts = [0; 3];
                counts[verdict.index()] = 1;
                hours.push_back((hour, counts));
                while hours.len() > HOURS {
                    hours.pop_front();
                }
            }
        }
    }

    pub fn snapshot(&self) -> Snapshot {
        let now_hour = now_unix() / 3600 * 3600;
        let kept = self.hours.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let hours = (0..HOURS as i64)
            .rev()
            .map(|back| {
                let h = now_hour - back * 3600;
                let counts = kept
                    .iter()
                    .find(|(k, _)| *k == h)
                    .map(|(_, c)| *c)
                    .unwrap_or([0; 3]);
                (h, counts)
            })
            .collect();
        Snapshot {
            uptime_secs: self.started.elapsed().as_secs(),
            doors: self
                .doors
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .iter()
                .map(|(d, n)| (*d, *n))
                .collect(),
            delivered: std::array::from_fn(|i| self.delivered[i].load(Ordering::Relaxed)),
            hours,
        }
    }
}

fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connections_and_deliveries_are_counted() {
        let s = global();
        let a = s.open("test-door");
        let b = s.open("test-door");
        let open = |s: &Stats| {
            s.snapshot()
                .doors
                .iter()
                .find(|(d, _)| *d == "test-door")
                .map(|(_, n)| *n)
        };
        assert_eq!(open(s), Some(2));
        drop(a);
        assert_eq!(open(s), Some(1));
        drop(b);
        assert_eq!(open(s), Some(0));
        let before = s.snapshot();
        s.delivered(Verdict::Junk);
        s.delivered(Verdict::Inbox);
        s.delivered(Verdict::Inbox);
        let after = s.snapshot();
        assert_eq!(after.delivered[0] - before.delivered[0], 2);
        assert_eq!(after.delivered[2] - before.delivered[2], 1);
        assert_eq!(after.hours.len(), HOURS);
        let last = after.hours.last().unwrap().1;
        assert!(last[0] >= 2 && last[2] >= 1);
    }
}
