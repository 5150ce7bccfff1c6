//! The logged-in sessions of every door, by account, so that removing an
//! account ends them all at once: IMAP, POP3, ManageSieve and submission
//! alike (a removed account's session that went on would answer every
//! command with an error about mailboxes that no longer exist).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use store::AccountId;
use tokio::sync::watch;

/// Shared by every door of one server; cheap to clone.
#[derive(Clone, Default, Debug)]
pub struct Sessions {
    accounts: Arc<Mutex<HashMap<AccountId, watch::Sender<bool>>>>,
}

impl Sessions {
    /// Joins a session that just logged in as `account`: the receiver
    /// turns true when the account is removed.
    pub fn join(&self, account: AccountId) -> watch::Receiver<bool> {
        let mut map = self.lock();
        // Accounts whose sessions all ended leave an entry nobody holds;
        // sweep them once the map has doubled since the last sweep, so the
        // cost stays constant per login.
        if map.len() >= 64 && map.len().is_power_of_two() {
            map.retain(|_, tx| tx.receiver_count() > 0);
        }
        map.entry(account)
            .or_insert_with(|| watch::channel(false).0)
            .subscribe()
    }

    /// Ends every session of `account`; whether it had any.
    pub fn end(&self, account: AccountId) -> bool {
        match self.lock().remove(&account) {
            Some(tx) => {
                let had = tx.receiver_count() > 0;
                let _ = tx.send(true);
                had
            }
            None => false,
        }
    }

    /// The accounts that have sessions now.
    pub fn accounts(&self) -> Vec<AccountId> {
        self.lock()
            .iter()
            .filter(|(_, tx)| tx.receiver_count() > 0)
            .map(|(a, _)| *a)
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<AccountId, watch::Sender<bool>>> {
        self.accounts.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What can stop a session between commands: the server shutting down,
/// and once logged in, its account being removed.
#[derive(Debug, Clone)]
pub struct Stop {
    server: watch::Receiver<bool>,
    account: Option<watch::Receiver<bool>>,
}

/// Why a session was stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stopped {
    /// The server is shutting down (or its shutdown signal is gone).
    Server,
    /// The account the session logged in as was removed.
    AccountRemoved,
}

impl Stop {
    pub fn new(server: watch::Receiver<bool>) -> Stop {
        Stop {
            server,
            account: None,
        }
    }

    /// From now on the session also ends when `account` is removed.
    pub fn logged_in(&mut self, sessions: &Sessions, account: AccountId) {
        self.account = Some(sessions.join(account));
    }

    /// Waits until the session must stop, and says why.
    pub async fn stopped(&mut self) -> Stopped {
        let account = async {
            match self.account.as_mut() {
                // A dropped sender without a send is an ended map entry
                // (Sessions::end sends first), so either way: removed.
                Some(rx) => {
                    let _ = rx.wait_for(|removed| *removed).await;
                }
                None => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = self.server.changed() => Stopped::Server,
            _ = account => Stopped::AccountRemoved,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn removing_an_account_stops_its_sessions_only() {
        let sessions = Sessions::default();
        let (_server_tx, server) = watch::channel(false);
        let mut alice = Stop::new(server.clone());
        alice.logged_in(&sessions, AccountId(1));
        let mut alice2 = Stop::new(server.clone());
        alice2.logged_in(&sessions, AccountId(1));
        let mut bob = Stop::new(server.clone());
        bob.logged_in(&sessions, AccountId(2));
        assert!(sessions.end(AccountId(1)));
        assert_eq!(alice.stopped().await, Stopped::AccountRemoved);
        assert_eq!(alice2.stopped().await, Stopped::AccountRemoved);
        let quiet = tokio::time::timeout(std::time::Duration::from_millis(50), bob.stopped()).await;
        assert!(quiet.is_err(), "bob's session was stopped too");
        assert_eq!(sessions.accounts(), vec![AccountId(2)]);
        assert!(!sessions.end(AccountId(1)));
    }

    #[tokio::test]
    async fn shutdown_stops_everyone() {
        let (server_tx, server) = watch::channel(false);
        let mut anonymous = Stop::new(server);
        server_tx.send(true).unwrap();
        assert_eq!(anonymous.stopped().await, Stopped::Server);
    }
}
