//! The memory budget for messages in flight: the bytes of messages every
//! door together holds while receiving them (SMTP DATA and BDAT, IMAP
//! APPEND) and until they are stored. Each door's own limits bound one
//! message and one client; this bounds them all at once, so that twenty
//! clients each sending a large message cannot take the machine's memory.
//! Past it a message is refused with a "try again later", never lost.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Shared by every door of one server; cheap to clone.
#[derive(Clone, Debug)]
pub struct InFlight {
    inner: Arc<Budget>,
}

#[derive(Debug)]
struct Budget {
    used: AtomicU64,
    limit: u64,
}

/// Holds grow in steps of this, so a message being received takes the
/// shared counter a few times, not at every read.
const STEP: u64 = 1 << 20;

/// What the budget allows when the config says nothing.
pub const DEFAULT_IN_FLIGHT: u64 = 512 << 20;

impl Default for InFlight {
    fn default() -> InFlight {
        InFlight::new(DEFAULT_IN_FLIGHT)
    }
}

impl InFlight {
    pub fn new(limit: u64) -> InFlight {
        InFlight {
            inner: Arc::new(Budget {
                used: AtomicU64::new(0),
                limit,
            }),
        }
    }

    /// A hold of nothing yet, to grow as a message arrives.
    pub fn hold(&self) -> Held {
        Held {
            budget: self.clone(),
            bytes: 0,
        }
    }

    /// Bytes held now, by every door.
    pub fn used(&self) -> u64 {
        self.inner.used.load(Ordering::Relaxed)
    }

    pub fn limit(&self) -> u64 {
        self.inner.limit
    }

    fn take(&self, bytes: u64) -> bool {
        let limit = self.inner.limit;
        self.inner
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes).filter(|&total| total <= limit)
            })
            .is_ok()
    }

    fn give(&self, bytes: u64) {
        self.inner.used.fetch_sub(bytes, Ordering::AcqRel);
    }
}

/// One message's share of the budget, given back when dropped.
#[derive(Debug)]
pub struct Held {
    budget: InFlight,
    bytes: u64,
}

impl Held {
    /// Makes the hold cover `bytes`; false, and the hold as it was, when
    /// the budget has not that much left.
    pub fn grow_to(&mut self, bytes: u64) -> bool {
        if bytes <= self.bytes {
            return true;
        }
        let want = bytes.div_ceil(STEP).saturating_mul(STEP);
        // A message close to the whole budget may take what is left.
        let want = want.min(self.budget.limit().max(bytes));
        let more = want - self.bytes;
        if self.budget.take(more) {
            self.bytes = want;
            true
        } else {
            false
        }
    }

    pub fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.budget.give(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_share_the_budget_and_give_it_back() {
        let budget = InFlight::new(5 * STEP);
        let mut a = budget.hold();
        assert!(a.grow_to(1));
        assert_eq!(a.bytes(), STEP);
        assert!(a.grow_to(3 * STEP - 10));
        let mut b = budget.hold();
        assert!(b.grow_to(2 * STEP));
        assert_eq!(budget.used(), 5 * STEP);
        // Nothing left: b stays as it was.
        assert!(!b.grow_to(2 * STEP + 1));
        assert_eq!(b.bytes(), 2 * STEP);
        drop(a);
        assert!(b.grow_to(4 * STEP));
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn a_budget_smaller_than_a_step_still_serves_small_messages() {
        let budget = InFlight::new(1000);
        let mut a = budget.hold();
        assert!(a.grow_to(600));
        assert!(!budget.hold().grow_to(500));
        assert!(a.grow_to(1000));
        assert!(!a.grow_to(1001));
    }
}
