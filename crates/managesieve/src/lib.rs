//! The ManageSieve door (RFC 5804, port 4190): users and their clients
//! (Thunderbird's sieve add-on, Roundcube, K-9) upload, check, list and
//! activate Sieve scripts, stored where `satchel filter` and delivery find
//! them.

mod session;

use std::sync::Arc;
use std::time::Duration;

use door::{ConnectionLimits, LoginThrottle};
use rustls::ServerConfig;
use std::net::SocketAddr;
use store::MailStore;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Settings {
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
            plaintext_anywhere: false,
            max_connections_per_ip: 16,
            max_connections: 500,
            throttle: LoginThrottle::new(),
            sessions: door::Sessions::default(),
            deadlines: door::Deadlines::default(),
        }
    }
}

/// Longest command line, literals aside.
const MAX_LINE: usize = 8 * 1024;
/// Most scripts one account may keep.
pub const MAX_SCRIPTS: usize = 100;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);

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
            limits: ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX)
                .with_total(settings.max_connections),
            throttle: settings.throttle.clone(),
            settings,
        })
    }
}

impl door::Door for Server {
    const NAME: &'static str = "managesieve";
    const REFUSAL: &'static [u8] = b"BYE (TRYLATER) \"Too many connections; try again later.\"\r\n";

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
