//! The ManageSieve door (RFC 5804, port 4190): users and their clients
//! (Thunderbird's sieve add-on, Roundcube, K-9) upload, check, list and
//! activate Sieve scripts, stored where `satchel filter` and delivery find
//! them.

mod session;

use std::sync::Arc;
use std::time::Duration;

use net::{ConnectionLimits, LoginThrottle};
use rustls::ServerConfig;
use store::MailStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Settings {
    pub plaintext_anywhere: bool,
    pub max_connections_per_ip: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plaintext_anywhere: false,
            max_connections_per_ip: 16,
        }
    }
}

/// Longest command line, literals aside.
const MAX_LINE: usize = 8 * 1024;
/// Most scripts one account may keep.
pub const MAX_SCRIPTS: usize = 100;
const IDLE_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const WRITE_TIMEOUT: Duration = Duration::from_secs(5 * 60);

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
            limits: ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX),
            throttle: LoginThrottle::new(),
            settings,
        })
    }

    /// Accepts connections until `shutdown` turns true.
    pub async fn listen(self: Arc<Self>, listener: TcpListener, shutdown: watch::Receiver<bool>) {
        let stop = shutdown.clone();
        net::door::accept_loop(listener, shutdown, "managesieve", move |tcp, peer| {
            let server = self.clone();
            let shutdown = stop.clone();
            async move {
                let refusal = b"BYE (TRYLATER) \"Too many connections from your address.\"\r\n";
                let Some((stream, _slot)) =
                    net::door::open(tcp, peer, &server.limits, None, refusal).await
                else {
                    return;
                };
                if let Err(e) = session::Session::new(server, peer, stream, shutdown)
                    .run()
                    .await
                {
                    tracing::debug!("managesieve session {peer} ended: {e}");
                }
            }
        })
        .await;
    }
}
