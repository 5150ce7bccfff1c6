//! The POP3 door (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH,
//! RFC 6856 UTF8): whole messages from INBOX, on a snapshot taken at login,
//! with deletions applied at QUIT as the configuration says.

mod session;

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::{ConnectionLimits, LoginThrottle};
use rustls::ServerConfig;
use store::{AccountId, MailStore};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What QUIT does to the messages a session deleted (contract `[pop3]`);
/// an account may have its own (`Account::pop3_delete`).
pub use store::Pop3Delete as DeleteMode;

#[derive(Debug, Clone)]
pub struct Settings {
    pub delete: DeleteMode,
    /// RETR sets \Seen (at QUIT, with the deletions).
    pub mark_seen: bool,
    pub plaintext_anywhere: bool,
    pub max_connections_per_ip: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            delete: DeleteMode::Expunge,
            mark_seen: true,
            plaintext_anywhere: false,
            max_connections_per_ip: 32,
        }
    }
}

/// Longest command line (RFC 2449 allows 255 octets; we allow some slack).
pub const MAX_LINE: usize = 1024;
/// RFC 1939 3: an inactivity timer of at least 10 minutes.
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const HANDSHAKE_TIMEOUT: Duration = net::door::HANDSHAKE_TIMEOUT;
const WRITE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

pub struct Server {
    store: Arc<dyn MailStore>,
    tls: Option<Arc<ServerConfig>>,
    settings: Settings,
    limits: ConnectionLimits,
    throttle: LoginThrottle,
    /// Accounts with a POP3 session in the transaction state ([IN-USE]).
    in_use: Arc<Mutex<HashSet<AccountId>>>,
}

/// The maildrop lock of one account, released when dropped.
pub(crate) struct MaildropLock {
    set: Arc<Mutex<HashSet<AccountId>>>,
    account: AccountId,
}

impl Drop for MaildropLock {
    fn drop(&mut self) {
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
            limits: ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX),
            throttle: LoginThrottle::new(),
            settings,
            in_use: Arc::default(),
        })
    }

    pub(crate) fn lock_maildrop(&self, account: AccountId) -> Option<MaildropLock> {
        let mut set = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        if !set.insert(account) {
            return None;
        }
        Some(MaildropLock {
            set: self.in_use.clone(),
            account,
        })
    }

    /// Accepts connections until `shutdown` turns true; with `implicit_tls`
    /// (port 995) every connection starts with the TLS handshake.
    pub async fn listen(
        self: Arc<Self>,
        listener: TcpListener,
        implicit_tls: bool,
        shutdown: watch::Receiver<bool>,
    ) {
        let stop = shutdown.clone();
        net::door::accept_loop(listener, shutdown, "pop3", move |tcp, peer| {
            let server = self.clone();
            let shutdown = stop.clone();
            async move {
                let tls = server.tls.clone().filter(|_| implicit_tls);
                let refusal = b"-ERR [SYS/TEMP] Too many connections from your address.\r\n";
                let Some((stream, _slot)) =
                    net::door::open(tcp, peer, &server.limits, tls, refusal).await
                else {
                    return;
                };
                if let Err(e) = session::Session::new(server, peer, stream, shutdown)
                    .run()
                    .await
                {
                    tracing::debug!("pop3 session {peer} ended: {e}");
                }
            }
        })
        .await;
    }
}
