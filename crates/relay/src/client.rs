//! The SMTP client (RFC 5321) the queue delivers with: EHLO (HELO when
//! EHLO is refused), STARTTLS whenever offered (RFC 3207), AUTH PLAIN for
//! a smarthost (RFC 4954), PIPELINING of MAIL and RCPT (RFC 2920), SIZE
//! (RFC 1870), and a verdict for each recipient on its own, so one
//! refused RCPT never costs the others their delivery.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use rustls::ClientConfig;
use rustls_pki_types::ServerName;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

pub use tls_client::{opportunistic_tls, verified_tls, verified_tls_with_ca};

/// RFC 5321 4.5.3.2: how long each step may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const GREETING_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const COMMAND_TIMEOUT: Duration = Duration::from_secs(5 * 60);
const DATA_INIT_TIMEOUT: Duration = Duration::from_secs(2 * 60);
const DATA_BLOCK_TIMEOUT: Duration = Duration::from_secs(3 * 60);
const DATA_END_TIMEOUT: Duration = Duration::from_secs(10 * 60);
/// Longest reply line we read (RFC 5321 4.5.3.1.5 says 512).
const MAX_REPLY_LINE: usize = 4096;
/// Lines of one multi-line reply we keep reading before giving up.
const MAX_REPLY_LINES: usize = 100;

/// Something that went wrong with the connection itself: every recipient
/// still open on it is tried again later (or at the next host).
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("connection to {0} failed: {1}")]
    Connect(SocketAddr, String),
    #[error("{0} timed out")]
    Timeout(&'static str),
    #[error("connection lost: {0}")]
    Io(#[from] std::io::Error),
    #[error("the server's reply made no sense: {0}")]
    Protocol(String),
    /// The server said no to the session (greeting, EHLO, STARTTLS, AUTH).
    #[error("{0}")]
    Refused(Reply),
    /// Going on would send a password in the clear.
    #[error("{0}")]
    Insecure(String),
}

/// One (possibly multi-line) reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub code: u16,
    /// Its lines' text, without the code, in order.
    pub lines: Vec<String>,
}

impl Reply {
    pub fn positive(&self) -> bool {
        (200..400).contains(&self.code)
    }
    /// A 5xx: the same attempt will never succeed.
    pub fn permanent(&self) -> bool {
        self.code >= 500
    }
    /// The reply on one line, as DSNs and `satchel queue` show it.
    pub fn one_line(&self) -> String {
        format!("{} {}", self.code, self.lines.join(" "))
    }
}

impl std::fmt::Display for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.one_line())
    }
}

/// What one recipient's transaction came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Delivered(String),
    /// Try again later: a 4xx, or the connection failed.
    Deferred(String),
    /// A 5xx, or a message this server cannot take (size, 8-bit).
    Failed(String),
}

/// What the far end said it supports, from its EHLO reply.
#[derive(Debug, Default, Clone)]
pub struct Extensions {
    pub pipelining: bool,
    pub eight_bit: bool,
    pub smtputf8: bool,
    pub starttls: bool,
    pub auth_plain: bool,
    /// SIZE's limit (0 or missing: none said).
    pub size: Option<u64>,
}

impl Extensions {
    /// What an EHLO reply offers (RFC 5321 4.1.1.1: one keyword per line).
    pub fn parse(reply: &Reply) -> Extensions {
        let mut ext = Extensions::default();
        // The first line is the greeting; each other names one extension.
        for line in reply.lines.iter().skip(1) {
            let mut words = line.split_ascii_whitespace();
            let keyword = words.next().unwrap_or("").to_ascii_uppercase();
            match keyword.as_str() {
                "PIPELINING" => ext.pipelining = true,
                "8BITMIME" => ext.eight_bit = true,
                "SMTPUTF8" => ext.smtputf8 = true,
                "STARTTLS" => ext.starttls = true,
                "SIZE" => ext.size = words.next().and_then(|n| n.parse().ok()).filter(|n| *n > 0),
                "AUTH" => ext.auth_plain = words.any(|m| m.eq_ignore_ascii_case("PLAIN")),
                _ => {}
            }
        }
        ext
    }
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A user name and password for a smarthost's AUTH.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub user: String,
    pub password: String,
}

/// An open session with one server, ready for transactions.
pub struct Connection {
    io: BufReader<Box<dyn Io>>,
    pub ext: Extensions,
    pub tls: bool,
    pub peer: SocketAddr,
}

/// How to open a session.
pub struct Dial<'a> {
    pub addr: SocketAddr,
    /// The name the server is known by (TLS's server name).
    pub host: &'a str,
    /// Our name, for EHLO.
    pub helo: &'a str,
    pub tls: Arc<ClientConfig>,
    pub auth: Option<&'a Credentials>,
    /// Without TLS, do not go on (a smarthost we log in to: the password
    /// never goes out in the clear, except to a loopback relay).
    pub require_tls: bool,
}

impl Connection {
    /// Connects, reads the greeting, says EHLO, starts TLS when offered
    /// and logs in when `auth` is given.
    pub async fn open(dial: Dial<'_>) -> Result<Connection, ClientError> {
        let tcp = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(dial.addr))
            .await
            .map_err(|_| ClientError::Connect(dial.addr, "timed out".into()))?
            .map_err(|e| ClientError::Connect(dial.addr, e.to_string()))?;
        let _ = tcp.set_nodelay(true);
        let mut conn = Connection {
            io: BufReader::new(Box::new(tcp)),
            ext: Extensions::default(),
            tls: false,
            peer: dial.addr,
        };
        let greeting = conn.read_reply(GREETING_TIMEOUT, "the greeting").await?;
        if greeting.code != 220 {
            return Err(ClientError::Refused(greeting));
        }
        conn.hello(dial.helo).await?;
        if conn.ext.starttls {
            let reply = conn.command("STARTTLS", COMMAND_TIMEOUT).await?;
            if reply.code != 220 {
                return Err(ClientError::Refused(reply));
            }
            conn = conn.start_tls(dial.tls.clone(), dial.host).await?;
            // RFC 3207 4.2: everything learnt before TLS is forgotten.
            conn.hello(dial.helo).await?;
        } else if dial.require_tls {
            return Err(ClientError::Insecure(format!(
                "{} offers no STARTTLS, and the password is not sent in the clear; \
                 use a relay with TLS, or one on loopback",
                dial.host
            )));
        }
        if let Some(auth) = dial.auth {
            conn.login(auth).await?;
        }
        Ok(conn)
    }

    async fn hello(&mut self, helo: &str) -> Result<(), ClientError> {
        let reply = self
            .command(&format!("EHLO {helo}"), COMMAND_TIMEOUT)
            .await?;
        if reply.code == 250 {
            self.ext = Extensions::parse(&reply);
            return Ok(());
        }
        // RFC 5321 3.2: a server that does not know EHLO may know HELO.
        let reply = self
            .command(&format!("HELO {helo}"), COMMAND_TIMEOUT)
            .await?;
        if reply.code != 250 {
            return Err(ClientError::Refused(reply));
        }
        self.ext = Extensions::default();
        Ok(())
    }

    async fn start_tls(
        self,
        config: Arc<ClientConfig>,
        host: &str,
    ) -> Result<Connection, ClientError> {
        let name = ServerName::try_from(host.to_string())
            .or_else(|_| ServerName::try_from(self.peer.ip().to_string()))
            .map_err(|e| ClientError::Protocol(format!("no TLS name for {host}: {e}")))?;
        // Nothing the server sent ahead of the handshake may be read after it
        // (the STARTTLS injection of CVE-2011-0411).
        if !self.io.buffer().is_empty() {
            return Err(ClientError::Protocol(
                "the server sent data ahead of the TLS handshake".into(),
            ));
        }
        let inner = self.io.into_inner();
        let connector = tokio_rustls::TlsConnector::from(config);
        let tls = tokio::time::timeout(COMMAND_TIMEOUT, connector.connect(name, inner))
            .await
            .map_err(|_| ClientError::Timeout("the TLS handshake"))??;
        Ok(Connection {
            io: BufReader::new(Box::new(tls)),
            ext: Extensions::default(),
            tls: true,
            peer: self.peer,
        })
    }

    async fn login(&mut self, auth: &Credentials) -> Result<(), ClientError> {
        if !self.ext.auth_plain {
            return Err(ClientError::Protocol(
                "the relay offers no AUTH PLAIN; check [relay] in the config".into(),
            ));
        }
        let token = base64::engine::general_purpose::STANDARD
            .encode(format!("\0{}\0{}", auth.user, auth.password));
        let reply = self
            .command(&format!("AUTH PLAIN {token}"), COMMAND_TIMEOUT)
            .await?;
        if reply.code != 235 {
            return Err(ClientError::Refused(reply));
        }
        Ok(())
    }

    /// One transaction: `body` from `from` to `recipients`; a verdict for
    /// each recipient, in order. An `Err` leaves the connection unusable
    /// and every recipient deferred.
    pub async fn send(
        &mut self,
        from: &str,
        recipients: &[String],
        body: &[u8],
        eight_bit: bool,
    ) -> Result<Vec<Verdict>, ClientError> {
        let all = |v: Verdict| vec![v; recipients.len()];
        if let Some(limit) = self.ext.size
            && body.len() as u64 > limit
        {
            return Ok(all(Verdict::Failed(format!(
                "552 5.3.4 the receiving server takes messages up to {limit} bytes; this one has {}",
                body.len()
            ))));
        }
        // RFC 6152: 8-bit content goes only to a server that offers
        // 8BITMIME; it is never mangled into 7 bits here.
        if eight_bit && !self.ext.eight_bit {
            return Ok(all(Verdict::Failed(
                "554 5.6.3 the message has 8-bit content and the receiving server does not offer 8BITMIME"
                    .into(),
            )));
        }
        let needs_utf8 = !from.is_ascii() || recipients.iter().any(|r| !r.is_ascii());
        if needs_utf8 && !self.ext.smtputf8 {
            return Ok(all(Verdict::Failed(
                "553 5.6.7 an address is not ASCII and the receiving server does not offer SMTPUTF8"
                    .into(),
            )));
        }
        let mut mail = format!("MAIL FROM:<{from}>");
        if self.ext.size.is_some() {
            mail.push_str(&format!(" SIZE={}", body.len()));
        }
        if eight_bit {
            mail.push_str(" BODY=8BITMIME");
        }
        if needs_utf8 {
            mail.push_str(" SMTPUTF8");
        }
        let mut commands = vec![mail];
        commands.extend(recipients.iter().map(|r| format!("RCPT TO:<{r}>")));
        let replies = if self.ext.pipelining {
            // RFC 2920 3.1: MAIL and RCPTs in one group, replies in order.
            let mut group = Vec::new();
            for c in &commands {
                group.extend_from_slice(c.as_bytes());
                group.extend_from_slice(b"\r\n");
            }
            self.write(&group, COMMAND_TIMEOUT).await?;
            let mut replies = Vec::with_capacity(commands.len());
            for _ in &commands {
                replies.push(
                    self.read_reply(COMMAND_TIMEOUT, "a MAIL or RCPT reply")
                        .await?,
                );
            }
            replies
        } else {
            let mut replies = Vec::with_capacity(commands.len());
            for (i, c) in commands.iter().enumerate() {
                let reply = self.command(c, COMMAND_TIMEOUT).await?;
                let refused_mail = i == 0 && !reply.positive();
                replies.push(reply);
                if refused_mail {
                    break;
                }
            }
            replies
        };
        let mail_reply = &replies[0];
        if !mail_reply.positive() {
            let verdict = refusal(mail_reply);
            self.reset().await?;
            return Ok(all(verdict));
        }
        let mut verdicts: Vec<Option<Verdict>> = replies[1..]
            .iter()
            .map(|r| (!r.positive()).then(|| refusal(r)))
            .collect();
        if verdicts.iter().all(Option::is_some) {
            self.reset().await?;
            return Ok(verdicts.into_iter().flatten().collect());
        }
        let reply = self.command("DATA", DATA_INIT_TIMEOUT).await?;
        if reply.code != 354 {
            let verdict = refusal(&reply);
            return Ok(verdicts
                .into_iter()
                .map(|v| v.unwrap_or_else(|| verdict.clone()))
                .collect());
        }
        self.write(&dot_stuffed(body), DATA_BLOCK_TIMEOUT).await?;
        let reply = self
            .read_reply(DATA_END_TIMEOUT, "the reply to the message")
            .await?;
        let verdict = if reply.positive() {
            Verdict::Delivered(reply.one_line())
        } else {
            refusal(&reply)
        };
        for v in verdicts.iter_mut().filter(|v| v.is_none()) {
            *v = Some(verdict.clone());
        }
        Ok(verdicts.into_iter().flatten().collect())
    }

    /// Ends a transaction the server refused, so the next one starts clean.
    async fn reset(&mut self) -> Result<(), ClientError> {
        let reply = self.command("RSET", COMMAND_TIMEOUT).await?;
        if !reply.positive() {
            return Err(ClientError::Refused(reply));
        }
        Ok(())
    }

    /// Says QUIT and closes; what the server answers no longer matters.
    pub async fn quit(mut self) {
        let _ = tokio::time::timeout(
            Duration::from_secs(5),
            self.command("QUIT", COMMAND_TIMEOUT),
        )
        .await;
    }

    async fn command(&mut self, line: &str, timeout: Duration) -> Result<Reply, ClientError> {
        let mut bytes = line.as_bytes().to_vec();
        bytes.extend_from_slice(b"\r\n");
        self.write(&bytes, COMMAND_TIMEOUT).await?;
        self.read_reply(timeout, "a reply").await
    }

    async fn write(&mut self, bytes: &[u8], timeout: Duration) -> Result<(), ClientError> {
        let io = self.io.get_mut();
        tokio::time::timeout(timeout, async {
            io.write_all(bytes).await?;
            io.flush().await
        })
        .await
        .map_err(|_| ClientError::Timeout("sending"))??;
        Ok(())
    }

    async fn read_reply(
        &mut self,
        timeout: Duration,
        what: &'static str,
    ) -> Result<Reply, ClientError> {
        tokio::time::timeout(timeout, read_reply(&mut self.io))
            .await
            .map_err(|_| ClientError::Timeout(what))?
    }
}

/// A refusal as a verdict: 5xx fails, anything else defers.
fn refusal(reply: &Reply) -> Verdict {
    if reply.permanent() {
        Verdict::Failed(reply.one_line())
    } else {
        Verdict::Deferred(reply.one_line())
    }
}

/// Reads one reply: lines `CODE-text` then a last `CODE text` (RFC 5321
/// 4.2.1), each bounded in length, all with the same code.
pub async fn read_reply<R: AsyncBufReadExt + Unpin>(io: &mut R) -> Result<Reply, ClientError> {
    let mut lines = Vec::new();
    let mut code = None;
    loop {
        let line = read_line(io).await?;
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        let digits = text
            .get(..3)
            .filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
        let Some(n) = digits.and_then(|d| d.parse::<u16>().ok()) else {
            return Err(ClientError::Protocol(format!("{text:.80}")));
        };
        if code.is_some_and(|c| c != n) {
            return Err(ClientError::Protocol(format!("{text:.80}")));
        }
        code = Some(n);
        let sep = text.as_bytes().get(3).copied();
        lines.push(text.get(4..).unwrap_or("").to_string());
        match sep {
            Some(b'-') if lines.len() < MAX_REPLY_LINES => continue,
            Some(b'-') => return Err(ClientError::Protocol("a reply of too many lines".into())),
            _ => return Ok(Reply { code: n, lines }),
        }
    }
}

/// One line up to LF, at most `MAX_REPLY_LINE` bytes.
async fn read_line<R: AsyncBufReadExt + Unpin>(io: &mut R) -> Result<Vec<u8>, ClientError> {
    let mut line = Vec::new();
    loop {
        let buf = io.fill_buf().await?;
        if buf.is_empty() {
            return Err(ClientError::Io(std::io::ErrorKind::UnexpectedEof.into()));
        }
        match memchr::memchr(b'\n', buf) {
            Some(i) => {
                line.extend_from_slice(&buf[..=i]);
                io.consume(i + 1);
                return Ok(line);
            }
            None => {
                let n = buf.len();
                line.extend_from_slice(buf);
                io.consume(n);
            }
        }
        if line.len() > MAX_REPLY_LINE {
            return Err(ClientError::Protocol("a reply line too long".into()));
        }
    }
}

/// The message as DATA sends it (RFC 5321 4.5.2): a line that starts with
/// a dot gets another, and the body ends with CRLF.CRLF.
pub fn dot_stuffed(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() + body.len() / 64 + 5);
    let mut at_line_start = true;
    for &b in body {
        if at_line_start && b == b'.' {
            out.push(b'.');
        }
        out.push(b);
        at_line_start = b == b'\n';
    }
    if !out.ends_with(b"\r\n") {
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b".\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dots_are_stuffed_and_the_end_marked() {
        assert_eq!(
            dot_stuffed(b"a\r\n.b\r\n..c\r\n"),
            b"a\r\n..b\r\n...c\r\n.\r\n"
        );
        assert_eq!(dot_stuffed(b".x"), b"..x\r\n.\r\n");
    }

    #[tokio::test]
    async fn replies_of_one_and_many_lines() {
        let mut input: &[u8] =
            b"250-mx.test hi\r\n250-PIPELINING\r\n250-SIZE 1000\r\n250 8BITMIME\r\n";
        let reply = read_reply(&mut input).await.unwrap();
        assert_eq!(reply.code, 250);
        let ext = Extensions::parse(&reply);
        assert!(ext.pipelining && ext.eight_bit && !ext.starttls);
        assert_eq!(ext.size, Some(1000));
        let mut bad: &[u8] = b"250-a\r\n251 b\r\n";
        assert!(read_reply(&mut bad).await.is_err());
        let mut junk: &[u8] = b"hello\r\n";
        assert!(read_reply(&mut junk).await.is_err());
    }

    #[tokio::test]
    async fn no_password_without_starttls_when_tls_is_required() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let server = tokio::spawn(async move {
            use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
            let (tcp, _) = listener.accept().await.unwrap();
            let (r, mut w) = tcp.into_split();
            let mut r = tokio::io::BufReader::new(r);
            w.write_all(b"220 relay.test ESMTP\r\n").await.unwrap();
            let mut seen = Vec::new();
            let mut line = String::new();
            while r.read_line(&mut line).await.unwrap_or(0) > 0 {
                seen.push(line.trim_end().to_string());
                let answer: &[u8] = if line.starts_with("EHLO") {
                    b"250-relay.test\r\n250 AUTH PLAIN\r\n"
                } else {
                    b"250 ok\r\n"
                };
                w.write_all(answer).await.unwrap();
                line.clear();
            }
            seen
        });
        let auth = Credentials {
            user: "u".into(),
            password: "secret".into(),
        };
        let result = Connection::open(Dial {
            addr,
            host: "relay.test",
            helo: "mx.example.test",
            tls: opportunistic_tls(),
            auth: Some(&auth),
            require_tls: true,
        })
        .await;
        assert!(
            matches!(result, Err(ClientError::Insecure(_))),
            "{:?}",
            result.err()
        );
        drop(result);
        let seen = server.await.unwrap();
        assert!(seen.iter().all(|l| !l.starts_with("AUTH")), "{seen:?}");
    }
}
