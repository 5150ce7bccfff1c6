//! The web door (design.md): webmail pages over HTTP, served from the store
//! directly, never through the IMAP door, so what they change every IMAP
//! and POP3 session sees through the change feed.
//!
//! Pages are rendered on the server (askama) and work without JavaScript.
//! Logins go through the same Argon2id check and per-address throttle as
//! every other door ([`door::login::check_password`]); a session is a
//! random cookie (HttpOnly, SameSite=Strict) and every state-changing
//! request carries the session's CSRF token. Mail's HTML is cleaned with
//! ammonia and shown in a sandboxed frame under its own
//! Content-Security-Policy, with remote content blocked.

mod admin;
mod autoconfig;
mod client;
mod compose;
mod conversation;
mod domains;
mod filters;
mod listing;
mod live;
mod mailboxes;
mod message;
mod pages;
mod release;
mod senders;
mod server;
mod session;
mod settings;
mod trace;
mod writing;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use door::{ConnectionLimits, HourlyLimit, LoginThrottle, Stream};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use store::MailStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use autoconfig::MailPorts;
pub use session::Sessions;

/// How long a client has to send a request's header, from the start of the
/// connection or of the next request on it.
const HEADER_DEADLINE: Duration = Duration::from_secs(30);

/// How the web door behaves.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Whether a login over plain HTTP is taken from any address, not only
    /// from loopback (the contract's `[auth] plaintext_anywhere`).
    pub plaintext_anywhere: bool,
    /// A session unused this long is over.
    pub session_idle: Duration,
    /// Messages per page of a message list.
    pub page_size: usize,
    /// Connections from one client address at once.
    pub max_connections_per_ip: usize,
    /// Connections at once from everywhere.
    pub max_connections: usize,
    /// The server's Sent-copy rule (an account's own wins).
    pub sent_copy: store::SentCopy,
    /// `GET /metrics` is served (`[web] metrics`).
    pub metrics: bool,
    /// The config's local domains: an admin adds accounts only in them
    /// (none listed: any).
    pub local_domains: Vec<String>,
    /// Proxies in front of the door whose `X-Forwarded-For` and
    /// `X-Forwarded-Proto` are believed (`[web] trusted_proxies`).
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plaintext_anywhere: false,
            session_idle: Duration::from_secs(12 * 3600),
            page_size: 50,
            max_connections_per_ip: 50,
            max_connections: 2000,
            sent_copy: store::SentCopy::default(),
            trusted_proxies: Vec::new(),
            local_domains: Vec::new(),
            metrics: false,
        }
    }
}

/// The web door: cheap to clone, one per server.
#[derive(Clone)]
pub struct Web {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn MailStore>,
    pipeline: Arc<pipeline::Pipeline>,
    throttle: LoginThrottle,
    hourly: Arc<HourlyLimit>,
    /// Checks the junk reports' release links.
    links: Arc<quarantine::Links>,
    /// The mail doors' ports, for autoconfiguration, once all are bound.
    mail_ports: std::sync::OnceLock<MailPorts>,
    /// The resolver, for the domains page's live checks (none: DNS could
    /// not be set up).
    dns: std::sync::OnceLock<Arc<pipeline::Dns>>,
    /// The disk use last measured, and when.
    disk: std::sync::Mutex<Option<(std::time::Instant, (u64, u64))>>,
    sessions: Sessions,
    settings: Settings,
    limits: Arc<ConnectionLimits>,
}

impl Web {
    /// `throttle` and `hourly` are the ones the other doors use: guesses
    /// and messages count once per account, whichever door they come by.
    pub fn new(
        store: Arc<dyn MailStore>,
        pipeline: Arc<pipeline::Pipeline>,
        throttle: LoginThrottle,
        hourly: Arc<HourlyLimit>,
        links: Arc<quarantine::Links>,
        settings: Settings,
    ) -> Web {
        let sessions = Sessions::new(store.clone(), settings.session_idle);
        Web {
            inner: Arc::new(Inner {
                store,
                pipeline,
                throttle,
                hourly,
                links,
                mail_ports: std::sync::OnceLock::new(),
                disk: std::sync::Mutex::new(None),
                dns: std::sync::OnceLock::new(),
                sessions,
                limits: Arc::new(
                    ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX)
                        .with_total(settings.max_connections),
                ),
                settings,
            }),
        }
    }

    /// The mail doors as bound, for the autoconfiguration answers (set
    /// once by `serve` after binding them).
    /// Ends every web session of `account` (it was removed); how many.
    pub async fn end_account(&self, account: store::AccountId) -> store::Result<usize> {
        self.inner.sessions.end_others(account, None).await
    }

    pub fn set_mail_ports(&self, ports: MailPorts) {
        let _ = self.inner.mail_ports.set(ports);
    }

    /// The resolver the domains page checks the published records with.
    pub fn set_dns(&self, dns: Arc<pipeline::Dns>) {
        let _ = self.inner.dns.set(dns);
    }

    /// Every page of the door.
    pub fn router(&self) -> Router {
        pages::router(self.clone())
    }

    /// Serves plain HTTP on `listener` until `stopped` turns true, through
    /// the door kit's accept loop and connection limits (per address and in
    /// all), with a deadline for each request's header so that a client
    /// that trickles bytes cannot hold a slot for long.
    pub async fn serve(self, listener: TcpListener, stopped: watch::Receiver<bool>) {
        self.serve_on(listener, None, stopped).await
    }

    /// The same over implicit TLS (`[listen] https`): session cookies are
    /// `Secure` and passwords are taken from any address.
    pub async fn serve_tls(
        self,
        listener: TcpListener,
        tls: Arc<rustls::ServerConfig>,
        stopped: watch::Receiver<bool>,
    ) {
        // Browsers ask for h2 first; this door speaks HTTP/1.1 (RFC 7301).
        let mut config = (*tls).clone();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        self.serve_on(listener, Some(Arc::new(config)), stopped)
            .await
    }

    async fn serve_on(
        self,
        listener: TcpListener,
        tls: Option<Arc<rustls::ServerConfig>>,
        stopped: watch::Receiver<bool>,
    ) {
        let router = self.router();
        let limits = self.inner.limits.clone();
        let stop = stopped.clone();
        let door = if tls.is_some() { "https" } else { "http" };
        door::conn::accept_loop(listener, stopped, door, move |tcp, peer| {
            // Taken here, in accept order, not in the task (which may start
            // after a later connection's).
            let slot = limits.connect(peer.ip());
            serve_connection(router.clone(), slot, tls.clone(), tcp, peer, stop.clone())
        })
        .await;
    }
}

/// One HTTP/1.1 connection: a slot of the door's limits, the client's
/// address for the pages (logins are throttled by it), and a graceful end
/// at shutdown.
async fn serve_connection(
    router: Router,
    slot: Option<door::ConnectionGuard>,
    tls: Option<Arc<rustls::ServerConfig>>,
    tcp: tokio::net::TcpStream,
    peer: SocketAddr,
    mut stopped: watch::Receiver<bool>,
) {
    let Some(_slot) = slot else {
        tracing::info!("http: {peer} has too many connections; refused");
        return;
    };
    let stream = match tls {
        None => Stream::Plain(tcp),
        // The handshake counts against the header deadline: a client that
        // never finishes it holds its slot no longer than a slow header.
        Some(config) => {
            match tokio::time::timeout(HEADER_DEADLINE, Stream::Plain(tcp).into_tls(config)).await {
                Ok(Ok(stream)) => stream,
                Ok(Err(e)) => {
                    tracing::debug!("https: {peer}: TLS handshake failed: {e}");
                    return;
                }
                Err(_) => {
                    tracing::debug!("https: {peer}: TLS handshake timed out");
                    return;
                }
            }
        }
    };
    let transport = client::Transport {
        tls: stream.is_tls(),
    };
    let service = TowerToHyperService::new(
        router
            .layer(axum::Extension(ConnectInfo(peer)))
            .layer(axum::Extension(transport)),
    );
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE);
    let connection = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(connection);
    let stop = async {
        while !*stopped.borrow() {
            if stopped.changed().await.is_err() {
                break;
            }
        }
    };
    let done = tokio::select! {
        done = connection.as_mut() => done,
        _ = stop => {
            // Answers the request in hand, then closes.
            connection.as_mut().graceful_shutdown();
            connection.await
        }
    };
    if let Err(e) = done {
        tracing::debug!("http: {peer}: {e}");
    }
}
