//! The SMTP doors (RFC 5321) on smtp-proto's command parser: PIPELINING,
//! SIZE, 8BITMIME, SMTPUTF8, ENHANCEDSTATUSCODES, CHUNKING and STARTTLS.
//! The MX door takes mail for local recipients only, with no AUTH and no
//! relaying; the submission mode (RFC 6409) takes mail from users who
//! logged in, for anyone. Every message goes through the pipeline and is
//! answered only once it is durable.

pub mod command;
pub mod data;
mod session;
mod submission;

pub use door::HourlyLimit;

use std::sync::Arc;
use std::time::Duration;

use door::ConnectionLimits;
use pipeline::Pipeline;
use rustls::ServerConfig;
use std::net::SocketAddr;
use tokio::sync::watch;

#[derive(Debug, Clone)]
pub struct Settings {
    /// Largest message (SIZE); also what a message may grow to in DATA.
    pub max_message_size: u64,
    pub max_recipients: usize,
    /// Errors after which a session is dropped (421).
    pub max_errors: usize,
    pub max_connections_per_ip: usize,
    /// Connections the door holds at once, from every address together.
    pub max_connections: usize,
    /// A line, a whole transaction: the time limits beyond the idle timer.
    pub deadlines: door::Deadlines,
    /// Memory for messages being received, shared with the other doors.
    pub in_flight: door::InFlight,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            max_message_size: store::MAX_MESSAGE_SIZE,
            max_recipients: 100,
            max_errors: 10,
            max_connections_per_ip: 50,
            max_connections: 500,
            deadlines: door::Deadlines::default(),
            in_flight: door::InFlight::default(),
        }
    }
}

/// Longest command line (RFC 5321 4.5.3.1.4 says 512; we allow more).
pub const MAX_LINE: usize = 4096;
/// Longest line in DATA (RFC 5321 allows 1000; real mail has longer).
pub const MAX_DATA_LINE: usize = 64 * 1024;
/// RFC 5321 4.5.3.2: at least 5 minutes for commands, 10 for DATA.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DATA_TIMEOUT: Duration = Duration::from_secs(10 * 60);
const HANDSHAKE_TIMEOUT: Duration = door::conn::HANDSHAKE_TIMEOUT;

pub struct Server {
    pipeline: Arc<Pipeline>,
    tls: Option<Arc<ServerConfig>>,
    settings: Settings,
    limits: ConnectionLimits,
    /// Set on the submission doors: users log in and send to anyone.
    submit: Option<Submit>,
}

/// What the submission mode needs besides the MX door's parts.
pub struct Submit {
    pub store: Arc<dyn store::MailStore>,
    /// Shared with the other doors: guesses here slow IMAP down too.
    pub throttle: door::LoginThrottle,
    /// Logged-in sessions by account, shared with the other doors so that
    /// removing an account ends its sessions everywhere.
    pub sessions: door::Sessions,
    pub plaintext_anywhere: bool,
    pub sent_copy: pipeline::SentCopy,
    /// Messages each user may send per hour.
    /// Shared with the web's compose: one hour per account, whichever door.
    pub hourly: std::sync::Arc<HourlyLimit>,
}

impl Server {
    pub fn new(
        pipeline: Arc<Pipeline>,
        tls: Option<Arc<ServerConfig>>,
        settings: Settings,
    ) -> Arc<Server> {
        Server::with(pipeline, tls, settings, None)
    }

    /// The submission doors (RFC 6409): AUTH, then mail to anyone from the
    /// user's own addresses.
    pub fn submission(
        pipeline: Arc<Pipeline>,
        tls: Option<Arc<ServerConfig>>,
        settings: Settings,
        submit: Submit,
    ) -> Arc<Server> {
        Server::with(pipeline, tls, settings, Some(submit))
    }

    fn with(
        pipeline: Arc<Pipeline>,
        tls: Option<Arc<ServerConfig>>,
        settings: Settings,
        submit: Option<Submit>,
    ) -> Arc<Server> {
        Arc::new(Server {
            pipeline,
            tls,
            limits: ConnectionLimits::new(settings.max_connections_per_ip, usize::MAX)
                .with_total(settings.max_connections),
            settings,
            submit,
        })
    }
}

impl door::Door for Server {
    const NAME: &'static str = "smtp";
    const REFUSAL: &'static [u8] = b"421 4.7.0 Too many connections; try again later.\r\n";

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
