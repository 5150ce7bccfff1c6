//! The POP3 door (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH,
//! RFC 6856 UTF8): whole messages from INBOX, on a snapshot taken at login,
//! with deletions applied at QUIT as the configuration says.

pub mod command;
mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use door::{ConnectionLimits, LoginThrottle};
use rustls::ServerConfig;
use std::net::SocketAddr;
use store::{AccountId, MailStore, Pop3Delete};
use tokio::sync::watch;

/// What QUIT does to the messages a session deleted (contract `[pop3]`);
/// an account may have its own (`Account::pop3_delete`).

#[derive(Debug, Clone)]
pub struct Settings {
    pub delete: Pop3Delete,
    /// RETR sets \Seen (at QUIT, with the deletions).
    pub mark_seen: bool,
    pub plaintext_anywhere: bool,
    pub max_connections_per_ip: usize,
    /// Connections the door holds at once, from every address together.
    pub max_connections: usize,
    /// Failed logins; clone one into every door so that they count
    /// together.
    pub throttle: LoginThrottle,
    /// Logged-in sessions by account; clone one into every door so that
    /// removing an account ends its sessions on all of them.
    pub sessions: door::Sessions,
    /// A line, logging in: the time limits beyond the idle timer.
    pub deadlines: door::Deadlines,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            delete: Pop3Delete::Expunge,
            mark_seen: true,
            plaintext_anywhere: false,
            max_connections_per_ip: 32,
            max_connections: 2_000,
            throttle: LoginThrottle::new(),
            sessions: door::Sessions::default(),
            deadlines: door::Deadlines::default(),
        }
    }
}

/// Longest command line (RFC 2449 allows 255 octets; we allow some slack).
pub const MAX_LINE: usize = 1024;
/// RFC 1939 3: an inactivity timer of at least 10 minutes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const HANDSHAKE_TIMEOUT: Duration = door::conn::HANDSHAKE_TIMEOUT;

pub struct Server {
    store: Arc<dyn MailStore>,
    tls: Option<Arc<ServerConfig>>,
    settings: Settings,
    limits: ConnectionLimits,
    throttle: LoginThrottle,
    /// Accounts with a POP3 session in the transaction state ([IN-USE]).
    in_use: Arc<Mutex<HashSet<AccountId>>>,
}

/// The maildrop lock of one account, released when dropped: this
/// server's own, and the store's, which keeps other nodes sharing the
/// store out too ([`store::Accounts::take_maildrop`]).
pub(crate) struct MaildropLock {
    set: Arc<Mutex<HashSet<AccountId>>>,
    account: AccountId,
    /// Set once the store's lock is taken too.
    store: Option<Arc<dyn MailStore>>,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
        // The store's first, then ours: a session of this server that
        // starts meanwhile finds ours still held.
        if let Some(store) = self.store.take() {
            let set = self.set.clone();
            let account = self.account;
            tokio::spawn(async move {
                if let Err(e) = store.release_maildrop(account).await {
                    tracing::warn!("pop3: cannot release the maildrop lock of #{account}: {e}");
                }
                set.lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .remove(&account);
            });
            return;
        }
        self.set
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&self.account);
    }
}

impl Server {
    pub fn new(
        store: Arc<dyn MailStore>,
        tls: Option<Arc<ServerConfig>>,
        settings: Settings,
    ) -> Arc<Server> {
        Arc::new(Server {
            store,
            tls,
            limits: ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX)
                .with_total(settings.max_connections),
            throttle: settings.throttle.clone(),
            settings,
            in_use: Arc::default(),
        })
    }

    /// Takes the account's maildrop lock, here and in the store; `None`
    /// when another session (of this server or another) holds it.
    pub(crate) async fn lock_maildrop(
        &self,
        account: AccountId,
    ) -> store::Result<Option<MaildropLock>> {
        {
            let mut set = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
            if !set.insert(account) {
                return Ok(None);
            }
        }
        let mut lock = MaildropLock {
            set: self.in_use.clone(),
            account,
            store: None,
        };
        if !self.store.take_maildrop(account).await? {
            return Ok(None);
        }
        lock.store = Some(self.store.clone());
        Ok(Some(lock))
    }
}

impl door::Door for Server {
    const NAME: &'static str = "pop3";
    const REFUSAL: &'static [u8] = b"-ERR [SYS/TEMP] Too many connections; try again later.\r\n";

    fn limits(&self) -> &ConnectionLimits {
        &self.limits
    }

    fn tls(&self) -> Option<Arc<ServerConfig>> {
        self.tls.clone()
    }

    async fn session(
        self: Arc<Self>,
        stream: door::Stream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> Result<(), door::conn::SessionError> {
        session::Session::new(self, peer, stream, shutdown)
            .run()
            .await
    }
}
