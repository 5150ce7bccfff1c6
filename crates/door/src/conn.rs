//! The part of a door before its protocol starts: the accept loop, the
//! per-address connection limit, the TLS handshake of implicit-TLS ports,
//! and writes that give up on a client that stops reading.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use rustls::ServerConfig;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::{ConnectionGuard, ConnectionLimits, Stop, Stopped, Stream};

/// How long a TLS handshake may take.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a session's end can carry, for the debug log.
pub type SessionError = Box<dyn std::error::Error + Send + Sync>;

/// A door: what each protocol plugs into the kit. The kit accepts, holds
/// the connection slot, does the implicit-TLS handshake and runs the
/// door's session; the door speaks its protocol.
pub trait Door: Send + Sync + Sized + 'static {
    /// The door's name in logs.
    const NAME: &'static str;
    /// Sent to a client whose address holds too many connections.
    const REFUSAL: &'static [u8];

    fn limits(&self) -> &ConnectionLimits;
    /// The TLS config, when the door has one.
    fn tls(&self) -> Option<Arc<ServerConfig>>;
    /// Runs one session to its end on an open stream (TLS already on for
    /// an implicit-TLS port).
    fn session(
        self: Arc<Self>,
        stream: Stream,
        peer: SocketAddr,
        shutdown: watch::Receiver<bool>,
    ) -> impl Future<Output = Result<(), SessionError>> + Send;
}

/// Serves `door` on `listener` until `shutdown` turns true; `implicit_tls`
/// for ports where TLS starts at once (RFC 8314).
pub async fn listen<D: Door>(
    door: Arc<D>,
    listener: TcpListener,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let stop = shutdown.clone();
    accept_loop(listener, shutdown, D::NAME, move |tcp, peer| {
        // The slot is taken here, in the order connections were accepted:
        // the tasks that serve them may start in any order, and a later
        // connection must not take the place of an earlier one.
        let slot = door.limits().connect(peer.ip());
        serve_in(door.clone(), tcp, slot, implicit_tls, peer, stop.clone())
    })
    .await;
}

/// One connection through `door`, as if accepted from `peer`: the accept
/// loop's step, and the in-process tests' way in (a test can say the
/// client is off loopback).
pub async fn serve<D: Door>(
    door: Arc<D>,
    tcp: TcpStream,
    peer: SocketAddr,
    implicit_tls: bool,
    shutdown: watch::Receiver<bool>,
) {
    let slot = door.limits().connect(peer.ip());
    serve_in(door, tcp, slot, implicit_tls, peer, shutdown).await
}

/// [`serve`] with the connection's slot taken already (`None`: over the
/// limits, so the door's refusal is sent).
async fn serve_in<D: Door>(
    door: Arc<D>,
    tcp: TcpStream,
    slot: Option<ConnectionGuard>,
    implicit_tls: bool,
    peer: SocketAddr,
    shutdown: watch::Receiver<bool>,
) {
    let tls = door.tls().filter(|_| implicit_tls);
    let Some((stream, _slot)) = open(tcp, slot, tls, D::REFUSAL).await else {
        return;
    };
    if let Err(e) = door.session(stream, peer, shutdown).await {
        tracing::debug!("{} session {peer} ended: {e}", D::NAME);
    }
}

/// Accepts connections until `shutdown` turns true, running `handle` for
/// each in its own task.
pub async fn accept_loop<F, Fut>(
    listener: TcpListener,
    mut shutdown: watch::Receiver<bool>,
    door: &'static str,
    handle: F,
) where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = ()> + Send + 'static,
{
    // Failed accepts since the last warning, and when that was: out of
    // descriptors, the loop would otherwise log ten lines a second.
    let mut failed = 0u64;
    let mut warned: Option<std::time::Instant> = None;
    stats::global().listening(door);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            _ = shutdown.changed() => return,
        };
        match accepted {
            Ok((tcp, peer)) => {
                if failed > 0 {
                    tracing::info!("{door}: accepting again after {failed} failed accepts");
                    failed = 0;
                    warned = None;
                }
                let _ = tcp.set_nodelay(true);
                // Open, for the server's figures, until the handler ends.
                let open = stats::global().open(door);
                let session = handle(tcp, peer);
                tokio::spawn(async move {
                    let _open = open;
                    session.await
                });
            }
            Err(e) => {
                // Out of file descriptors and the like: back off, go on,
                // and say so once a minute, not once a try.
                failed += 1;
                if warned.is_none_or(|at| at.elapsed() >= Duration::from_secs(60)) {
                    tracing::warn!(
                        "{door}: cannot accept connections ({e}); backing off ({failed} so far)"
                    );
                    warned = Some(std::time::Instant::now());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// With the connection's slot (or, without one, after sending `refusal`),
/// runs the TLS handshake when the port is implicit TLS.
pub async fn open(
    mut tcp: TcpStream,
    slot: Option<ConnectionGuard>,
    implicit_tls: Option<Arc<ServerConfig>>,
    refusal: &[u8],
) -> Option<(Stream, ConnectionGuard)> {
    let Some(slot) = slot else {
        let _ = tcp.write_all(refusal).await;
        return None;
    };
    let mut stream = Stream::Plain(tcp);
    if let Some(tls) = implicit_tls {
        stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.into_tls(tls)).await {
            Ok(Ok(s)) => s,
            _ => return None,
        };
    }
    Some((stream, slot))
}

/// Writes and flushes `bytes`, failing when the client does not take them
/// within `timeout`.
pub async fn write_all<W: AsyncWrite + Unpin>(
    stream: &mut W,
    bytes: &[u8],
    timeout: Duration,
) -> std::io::Result<()> {
    tokio::time::timeout(timeout, async {
        stream.write_all(bytes).await?;
        stream.flush().await
    })
    .await
    .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "the client stopped reading"))?
}

/// Output buffer a session keeps between answers.
const KEEP_BUFFER: usize = 16 * 1024;

/// Sends what a session buffered for its client and empties the buffer;
/// a client that stops reading for `timeout` ends the session instead of
/// holding it forever.
pub async fn send_buffered(
    io: &mut Option<crate::LineReader<crate::Stream>>,
    out: &mut Vec<u8>,
    timeout: Duration,
) -> std::io::Result<()> {
    if out.is_empty() {
        return Ok(());
    }
    let io = io.as_mut().ok_or_else(|| {
        std::io::Error::new(
            std::io::ErrorKind::NotConnected,
            "the session has no stream",
        )
    })?;
    write_all(io.get_mut(), out, timeout).await?;
    out.clear();
    Ok(())
}

/// Gives back an output buffer's room beyond what a session keeps between
/// commands (after a big answer, not between its chunks).
pub fn trim(out: &mut Vec<u8>) {
    if out.is_empty() && out.capacity() > KEEP_BUFFER {
        out.shrink_to(KEEP_BUFFER);
    }
}

/// How waiting for a client's next command ended.
pub enum Wait<T> {
    Ready(T),
    /// The client said nothing for the whole idle limit.
    Idle,
    /// The server is shutting down, or the session's account was removed.
    Stopped(Stopped),
}

/// Waits for `read` at most `limit`, or until the session must stop: the
/// one wait every door's command loop makes, each answering the endings
/// in its own protocol.
pub async fn wait<T>(read: impl Future<Output = T>, limit: Duration, stop: &mut Stop) -> Wait<T> {
    tokio::select! {
        r = tokio::time::timeout(limit, read) => match r {
            Ok(v) => Wait::Ready(v),
            Err(_) => Wait::Idle,
        },
        why = stop.stopped() => Wait::Stopped(why),
    }
}

/// The limits in time every door holds its clients to, beyond its idle
/// limit: so that a few hundred slow clients cannot hold every slot.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    /// A line, from its first byte to its end.
    pub line: Duration,
    /// Logging in, from the connection's start (doors that take a login).
    pub login: Duration,
    /// One SMTP transaction, from MAIL to the end of the message.
    pub transaction: Duration,
    /// An answer the client does not read: past it the session ends, so a
    /// client that asks for big answers and never reads them holds one
    /// answer's memory for this long at most.
    pub write: Duration,
}

impl Default for Deadlines {
    fn default() -> Deadlines {
        Deadlines {
            line: crate::lines::LINE_DEADLINE,
            login: Duration::from_secs(180),
            transaction: Duration::from_secs(15 * 60),
            write: Duration::from_secs(5 * 60),
        }
    }
}

impl Deadlines {
    /// How long to wait for the next command of a session that started at
    /// `started`: the idle limit, cut to what is left of the login deadline
    /// while the client has not logged in; and whether that cut it (so a
    /// wait that runs out means the time to log in is up, not idleness).
    pub fn wait_limit(
        &self,
        idle: Duration,
        started: std::time::Instant,
        logged_in: bool,
    ) -> (Duration, bool) {
        let left = self.login.saturating_sub(started.elapsed());
        if logged_in || left >= idle {
            (idle, false)
        } else {
            (left, true)
        }
    }
}

/// The next step of a line-based door's command loop.
pub enum Next {
    /// A whole line is in the buffer.
    Line,
    /// The line was longer than the reader's limit: read and dropped, so
    /// the door answers it with an error and goes on (`head` is its start).
    TooLong { head: Vec<u8> },
    /// The client said nothing for the whole idle limit.
    Idle,
    /// The client started a line and did not finish it in time.
    TooSlow,
    /// The server is shutting down, or the session's account was removed.
    Stopped(Stopped),
}

/// The wait of every line-based command loop, written once: the next line
/// into `line` within `limit`, unless the session must stop. A closed or
/// failed connection is the error that ends the session.
pub async fn next_line<S: tokio::io::AsyncRead + Unpin>(
    io: &mut crate::LineReader<S>,
    line: &mut Vec<u8>,
    limit: Duration,
    stop: &mut Stop,
) -> Result<Next, crate::LineError> {
    match wait(io.line(line), limit, stop).await {
        Wait::Ready(Ok(())) => Ok(Next::Line),
        Wait::Ready(Err(crate::LineError::TooLong { head, .. })) => Ok(Next::TooLong { head }),
        Wait::Ready(Err(crate::LineError::TooSlow(_))) => Ok(Next::TooSlow),
        Wait::Ready(Err(e)) => Err(e),
        Wait::Idle => Ok(Next::Idle),
        Wait::Stopped(why) => Ok(Next::Stopped(why)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_deadline_cuts_the_wait_until_login() {
        let d = Deadlines {
            login: Duration::from_secs(180),
            ..Deadlines::default()
        };
        let idle = Duration::from_secs(600);
        let now = std::time::Instant::now();
        let (wait, due) = d.wait_limit(idle, now, false);
        assert!(due && wait <= Duration::from_secs(180));
        assert_eq!(d.wait_limit(idle, now, true), (idle, false));
        let short = Duration::from_secs(60);
        assert_eq!(
            d.wait_limit(short, now, false),
            (short, false),
            "idle comes first"
        );
    }
}
