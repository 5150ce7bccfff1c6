//! How many messages a user may submit per hour: a compromised password
//! must not turn the server into a spam cannon (and its address into a
//! blocklisted one). Each transaction a user starts (MAIL) takes one, at
//! once and under one lock, so that many sessions at once cannot overshoot
//! it; one abandoned before its end still counts. One count for every
//! door that sends (submission, the web's compose). Kept per process in
//! memory; a restart forgets.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use store::AccountId;

const HOUR: Duration = Duration::from_secs(3600);

/// A sliding hour per account.
pub struct HourlyLimit {
    max: usize,
    sent: Mutex<HashMap<AccountId, VecDeque<Instant>>>,
}

/// The account is at its limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverLimit {
    pub max: usize,
    /// When the oldest message of the hour falls out of it.
    pub retry_in: Duration,
}

impl HourlyLimit {
    /// `max` messages per hour; 0: no limit.
    pub fn new(max: usize) -> HourlyLimit {
        HourlyLimit {
            max,
            sent: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one message of the account's hour, or says when one is free.
    pub fn take(&self, account: AccountId) -> Result<(), OverLimit> {
        if self.max == 0 {
            return Ok(());
        }
        let now = Instant::now();
        let mut sent = self.sent.lock().unwrap_or_else(|p| p.into_inner());
        let times = sent.entry(account).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= HOUR)
        {
            times.pop_front();
        }
        if let Some(oldest) = times.front()
            && times.len() >= self.max
        {
            return Err(OverLimit {
                max: self.max,
                retry_in: HOUR.saturating_sub(now.duration_since(*oldest)),
            });
        }
        // At most the hour's worth: bounded by the limit.
        times.push_back(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_limit_holds_per_account() {
        let limit = HourlyLimit::new(2);
        for _ in 0..2 {
            assert!(limit.take(AccountId(1)).is_ok());
        }
        let over = limit.take(AccountId(1)).unwrap_err();
        assert_eq!(over.max, 2);
        assert!(over.retry_in <= HOUR && over.retry_in > HOUR - Duration::from_secs(60));
        assert!(
            limit.take(AccountId(2)).is_ok(),
            "another account is not held up"
        );
        assert!(HourlyLimit::new(0).take(AccountId(1)).is_ok());
    }
}
