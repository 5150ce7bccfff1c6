//! Reading a line-based protocol with a bound on every line (its length,
//! and the time from its first byte to its end), and reading literals of a
//! known size.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::time::Instant;

/// How long a line may take from its first byte to its end: a client that
/// trickles a line a byte at a time cannot hold a connection slot for
/// longer than this (an idle client, who has sent nothing, is the door's
/// idle limit's business).
pub const LINE_DEADLINE: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line was longer than the limit; it was read and dropped, so the
    /// connection is still in step with the client. `head` is its start (up
    /// to 64 bytes), for a tagged answer.
    #[error("line longer than {max} bytes")]
    TooLong { max: usize, head: Vec<u8> },
    #[error("connection closed")]
    Closed,
    /// A line was started and not finished within the line deadline.
    #[error("a line took longer than {0:?} to arrive")]
    TooSlow(Duration),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct LineReader<S> {
    inner: BufReader<S>,
    max_line: usize,
    /// The line read so far: kept across calls, so a `line()` cancelled
    /// half-way (by `select!`) loses nothing.
    partial: Vec<u8>,
    too_long: bool,
    /// When the line being read got its first byte.
    started: Option<Instant>,
    line_deadline: Duration,
}

/// Bytes read from the socket at a time for lines.
const READ_BUFFER: usize = 4 * 1024;

impl<S: AsyncRead + Unpin> LineReader<S> {
    pub fn new(stream: S, max_line: usize) -> LineReader<S> {
        LineReader {
            // Small: every connection holds one for its lifetime (10,000
            // idle IMAP clients), and reads bigger than it (literals) go
            // past it straight into their destination.
            inner: BufReader::with_capacity(READ_BUFFER, stream),
            max_line,
            partial: Vec::new(),
            too_long: false,
            started: None,
            line_deadline: LINE_DEADLINE,
        }
    }

    /// A reader whose lines must end within `deadline` of their first byte.
    pub fn with_deadline(stream: S, max_line: usize, deadline: Duration) -> LineReader<S> {
        let mut r = LineReader::new(stream, max_line);
        r.line_deadline = deadline;
        r
    }

    /// Changes the line deadline (tests use a short one).
    pub fn set_line_deadline(&mut self, deadline: Duration) {
        self.line_deadline = deadline;
    }

    /// The next line, without its CRLF (a bare LF ends a line too).
    /// Cancel-safe.
    pub async fn line(&mut self, out: &mut Vec<u8>) -> Result<(), LineError> {
        loop {
            let buf = match self.started {
                // Once a line has begun, the rest has until the deadline.
                Some(t) => tokio::time::timeout_at(t + self.line_deadline, self.inner.fill_buf())
                    .await
                    .map_err(|_| LineError::TooSlow(self.line_deadline))??,
                None => self.inner.fill_buf().await?,
            };
            if buf.is_empty() {
                return Err(LineError::Closed);
            }
            self.started.get_or_insert_with(Instant::now);
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = (self.max_line + 2).saturating_sub(self.partial.len());
            if take > room && !self.too_long {
                // Keep the head for the error; drop the rest as it comes.
                self.partial.extend_from_slice(&buf[..room.min(take)]);
                self.too_long = true;
            } else if !self.too_long {
                self.partial.extend_from_slice(&buf[..take]);
            }
            self.inner.consume(take);
            if done {
                break;
            }
        }
        self.started = None;
        let mut line = std::mem::take(&mut self.partial);
        if std::mem::take(&mut self.too_long) {
            line.truncate(64);
            return Err(LineError::TooLong {
                max: self.max_line,
                head: line,
            });
        }
        if line.ends_with(b"\n") {
            line.pop();
            if line.ends_with(b"\r") {
                line.pop();
            }
        }
        *out = line;
        Ok(())
    }

    /// Exactly `n` bytes (a literal), appended to `out`. Memory grows as
    /// the bytes arrive, not when they are announced.
    pub async fn exact(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), LineError> {
        let got = (&mut self.inner).take(n as u64).read_to_end(out).await?;
        if got < n {
            return Err(LineError::Closed);
        }
        Ok(())
    }

    /// Reads and drops `n` bytes (a literal that is refused after the
    /// client already sent it).
    pub async fn skip(&mut self, mut n: u64) -> Result<(), LineError> {
        while n > 0 {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Err(LineError::Closed);
            }
            let take = buf.len().min(n.min(usize::MAX as u64) as usize);
            self.inner.consume(take);
            n -= take as u64;
        }
        Ok(())
    }

    /// The bytes the client sent that are buffered, reading more when none
    /// are; [`LineReader::consume`] says how many were used. For a body
    /// that is not read as lines (SMTP DATA). Cancel-safe.
    pub async fn fill(&mut self) -> Result<&[u8], LineError> {
        debug_assert!(self.partial.is_empty(), "fill() in the middle of a line");
        let buf = self.inner.fill_buf().await?;
        if buf.is_empty() {
            return Err(LineError::Closed);
        }
        Ok(buf)
    }

    /// Marks `n` bytes of what [`LineReader::fill`] gave as used.
    pub fn consume(&mut self, n: usize) {
        self.inner.consume(n);
    }

    /// Changes the line limit (SMTP allows longer lines in DATA than in
    /// commands).
    pub fn set_max_line(&mut self, max_line: usize) {
        self.max_line = max_line;
    }

    /// Bytes the client sent that have not been read yet.
    pub fn pending(&self) -> usize {
        self.inner.buffer().len()
    }

    pub fn get_mut(&mut self) -> &mut S {
        self.inner.get_mut()
    }

    /// The stream, dropping anything buffered: after STARTTLS nothing the
    /// client sent in plain text may be taken as coming over TLS.
    pub fn into_inner(self) -> S {
        self.inner.into_inner()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_literals_and_limits() {
        let data: &[u8] =
            b"a1 NOOP\r\nbare lf\nxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\r\n12345after\r\nlast";
        let mut r = LineReader::new(data, 20);
        let mut line = Vec::new();
        r.line(&mut line).await.unwrap();
        assert_eq!(line, b"a1 NOOP");
        r.line(&mut line).await.unwrap();
        assert_eq!(line, b"bare lf");
        match r.line(&mut line).await {
            Err(LineError::TooLong { max: 20, head }) => assert!(head.starts_with(b"xxxx")),
            other => panic!("{other:?}"),
        }
        let mut lit = Vec::new();
        r.exact(5, &mut lit).await.unwrap();
        assert_eq!(lit, b"12345");
        r.line(&mut line).await.unwrap();
        assert_eq!(line, b"after");
        assert!(matches!(r.line(&mut line).await, Err(LineError::Closed)));
    }

    #[tokio::test]
    async fn a_line_trickled_past_the_deadline_is_cut() {
        let (mut client, server) = tokio::io::duplex(64);
        let mut r = LineReader::new(server, 100);
        r.set_line_deadline(Duration::from_millis(200));
        use tokio::io::AsyncWriteExt;
        // Nothing sent for longer than the deadline: still waiting.
        let mut line = Vec::new();
        let idle = tokio::time::timeout(Duration::from_millis(300), r.line(&mut line)).await;
        assert!(
            idle.is_err(),
            "an idle client is not cut by the line deadline"
        );
        client.write_all(b"a1 NO").await.unwrap();
        let trickle = async {
            for _ in 0..10 {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = client.write_all(b"O").await;
            }
        };
        let (result, ()) = tokio::join!(r.line(&mut line), trickle);
        assert!(matches!(result, Err(LineError::TooSlow(_))), "{result:?}");
    }
}
