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

mod message;
mod pages;
mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use door::LoginThrottle;
use store::MailStore;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use session::Sessions;

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
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            plaintext_anywhere: false,
            session_idle: Duration::from_secs(12 * 3600),
            page_size: 50,
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
    throttle: LoginThrottle,
    sessions: Sessions,
    settings: Settings,
}

impl Web {
    pub fn new(store: Arc<dyn MailStore>, throttle: LoginThrottle, settings: Settings) -> Web {
        Web {
            inner: Arc::new(Inner {
                store,
                throttle,
                sessions: Sessions::default(),
                settings,
            }),
        }
    }

    /// Every page of the door.
    pub fn router(&self) -> Router {
        pages::router(self.clone())
    }

    /// Serves on `listener` until `stopped` turns true.
    pub async fn serve(self, listener: TcpListener, mut stopped: watch::Receiver<bool>) {
        let app = self
            .router()
            .into_make_service_with_connect_info::<SocketAddr>();
        let shutdown = async move {
            while !*stopped.borrow() {
                if stopped.changed().await.is_err() {
                    break;
                }
            }
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(shutdown)
            .await
        {
            tracing::error!("http: the web door stopped: {e}");
        }
    }
}
