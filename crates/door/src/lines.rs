//! Reading a line-based protocol with a bound on every line, and reading
//! literals of a known size.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line was longer than the limit; it was read and dropped, so the
    /// connection is still in step with the client. `head` is its start (up
    /// to 64 bytes), for a tagged answer.
    #[error("line longer than {max} bytes")]
    TooLong { max: usize, head: Vec<u8> },
    #[error("connection closed")]
    Closed,
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
        }
    }

    /// The next line, without its CRLF (a bare LF ends a line too).
    /// Cancel-safe.
    pub async fn line(&mut self, out: &mut Vec<u8>) -> Result<(), LineError> {
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Err(LineError::Closed);
            }
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
}
