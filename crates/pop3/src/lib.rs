//! The POP3 door (RFC 1939, RFC 2449 CAPA, RFC 2595 STLS, RFC 5034 AUTH,
//! RFC 6856 UTF8): whole messages from INBOX, on a snapshot taken at login,
//! with deletions applied at QUIT as the configuration says.

mod session;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use net::{ConnectionLimits, LoginThrottle, Stream};
use rustls::ServerConfig;
use store::{AccountId, MailStore};
use tokio::io::AsyncWriteExt;
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
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);
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
        mut shutdown: watch::Receiver<bool>,
    ) {
        loop {
            let accepted = tokio::select! {
                a = listener.accept() => a,
                _ = shutdown.changed() => return,
            };
            let (tcp, peer) = match accepted {
                Ok(x) => x,
                Err(e) => {
                    tracing::warn!("pop3 accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            let _ = tcp.set_nodelay(true);
            let server = self.clone();
            let shutdown = shutdown.clone();
            tokio::spawn(async move { server.connection(tcp, peer, implicit_tls, shutdown).await });
        }
    }

    async fn connection(
        self: Arc<Self>,
        mut tcp: tokio::net::TcpStream,
        peer: SocketAddr,
        implicit_tls: bool,
        shutdown: watch::Receiver<bool>,
    ) {
        let Some(slot) = self.limits.connect(peer.ip()) else {
            let _ = tcp
                .write_all(b"-ERR [SYS/TEMP] Too many connections from your address.\r\n")
                .await;
            return;
        };
        let mut stream = Stream::Plain(tcp);
        if implicit_tls {
            let Some(tls) = self.tls.clone() else {
                return;
            };
            stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.into_tls(tls)).await {
                Ok(Ok(s)) => s,
                _ => return,
            };
        }
        if let Err(e) = session::Session::new(self, peer, stream, shutdown)
            .run()
            .await
        {
            tracing::debug!("pop3 session {peer} ended: {e}");
        }
        drop(slot);
    }
}
