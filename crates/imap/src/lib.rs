//! The IMAP door (IMAP4rev2, RFC 9051, serving IMAP4rev1 clients too):
//! accepts connections, runs one session per connection over the store.

mod fetch;
mod imapurl;
mod list;
mod objectid;
mod search;
mod session;
mod sort;
mod thread;
mod view;

use std::sync::Arc;
use std::time::Duration;

use door::{ConnectionLimits, LoginThrottle};
use rustls::ServerConfig;
use std::net::SocketAddr;
use store::MailStore;
use tokio::sync::watch;

/// Settings of the IMAP door.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Allow LOGIN and AUTHENTICATE without TLS from non-loopback clients.
    pub plaintext_anywhere: bool,
    pub max_connections_per_ip: usize,
    /// Connections the door holds at once, from every address together.
    pub max_connections: usize,
    pub max_connections_per_user: usize,
    /// Failed logins; clone one into every door so that they count
    /// together.
    pub throttle: LoginThrottle,
    /// Logged-in sessions by account; clone one into every door so that
    /// removing an account ends its sessions on all of them.
    pub sessions: door::Sessions,
    /// Memory for messages being received, shared with the other doors.
    pub in_flight: door::InFlight,
    /// A line, logging in: the time limits beyond the idle timers.
    pub deadlines: door::Deadlines,
    /// The server's Sent-copy rule (an account's own wins): with
    /// unless-appended, an APPEND to Sent of a message the submission door
    /// already filed there (same Message-ID, within
    /// `store::SENT_WINDOW_SECS`) is not stored twice.
    pub sent_copy: store::SentCopy,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plaintext_anywhere: false,
            max_connections_per_ip: 64,
            max_connections: 20_000,
            max_connections_per_user: 32,
            throttle: LoginThrottle::new(),
            sessions: door::Sessions::default(),
            in_flight: door::InFlight::default(),
            deadlines: door::Deadlines::default(),
            sent_copy: store::SentCopy::UnlessAppended,
        }
    }
}

/// Longest command line, literals aside (RFC 7162 3 asks for at least 8000).
pub const MAX_LINE: usize = 64 * 1024;
/// Largest literal in a command other than APPEND.
pub const MAX_SMALL_LITERAL: u64 = 64 * 1024;
/// All the messages of one MULTIAPPEND together (RFC 3502): each may be as
/// large as one message, and the command, held in memory until it is
/// stored, twice that.
pub const MAX_APPEND_TOTAL: u64 = 2 * store::MAX_MESSAGE_SIZE;
/// How long a client that has not logged in may stay silent.
const PREAUTH_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a logged-in client may stay silent (RFC 9051 5.4: 30 minutes).
const AUTH_TIMEOUT: Duration = Duration::from_secs(30 * 60);
/// Keepalive during IDLE.
const IDLE_KEEPALIVE: Duration = Duration::from_secs(120);
/// How long a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = door::conn::HANDSHAKE_TIMEOUT;

/// One IMAP door: the store, TLS and the shared limits.
pub struct Server {
    store: Arc<dyn MailStore>,
    tls: Option<Arc<ServerConfig>>,
    settings: Settings,
    limits: ConnectionLimits,
    throttle: LoginThrottle,
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
            limits: ConnectionLimits::new(
                settings.max_connections_per_ip,
                settings.max_connections_per_user,
            )
            .with_total(settings.max_connections),
            throttle: settings.throttle.clone(),
            settings,
        })
    }
}

impl door::Door for Server {
    const NAME: &'static str = "imap";
    const REFUSAL: &'static [u8] =
        b"* BYE [UNAVAILABLE] Too many connections; try again later.\r\n";

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
