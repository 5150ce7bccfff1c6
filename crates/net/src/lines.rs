//! Reading a line-based protocol with a bound on every line, and reading
//! literals of a known size.

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};

#[derive(Debug, thiserror::Error)]
pub enum LineError {
    /// The line was longer than the limit; it was read and dropped, so the
    /// connection is still in step with the client.
    #[error("line longer than {0} bytes")]
    TooLong(usize),
    #[error("connection closed")]
    Closed,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

pub struct LineReader<S> {
    inner: BufReader<S>,
    max_line: usize,
}

impl<S: AsyncRead + Unpin> LineReader<S> {
    pub fn new(stream: S, max_line: usize) -> LineReader<S> {
        LineReader {
            inner: BufReader::with_capacity(16 * 1024, stream),
            max_line,
        }
    }

    /// The next line, without its CRLF (a bare LF ends a line too).
    pub async fn line(&mut self, out: &mut Vec<u8>) -> Result<(), LineError> {
        out.clear();
        let mut too_long = false;
        loop {
            let buf = self.inner.fill_buf().await?;
            if buf.is_empty() {
                return Err(LineError::Closed);
            }
            let (take, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(i) => (i + 1, true),
                None => (buf.len(), false),
            };
            let room = (self.max_line + 2).saturating_sub(out.len());
            if take > room {
                too_long = true;
            }
            if !too_long {
                out.extend_from_slice(&buf[..take]);
            }
            self.inner.consume(take);
            if done {
                break;
            }
        }
        if too_long {
            out.clear();
            return Err(LineError::TooLong(self.max_line));
        }
        if out.ends_with(b"\n") {
            out.pop();
            if out.ends_with(b"\r") {
                out.pop();
            }
        }
        Ok(())
    }

    /// Exactly `n` bytes (a literal), appended to `out`.
    pub async fn exact(&mut self, n: usize, out: &mut Vec<u8>) -> Result<(), LineError> {
        let start = out.len();
        out.resize(start + n, 0);
        match self.inner.read_exact(&mut out[start..]).await {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Err(LineError::Closed),
            Err(e) => Err(e.into()),
        }
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
        assert!(matches!(
            r.line(&mut line).await,
            Err(LineError::TooLong(20))
        ));
        let mut lit = Vec::new();
        r.exact(5, &mut lit).await.unwrap();
        assert_eq!(lit, b"12345");
        r.line(&mut line).await.unwrap();
        assert_eq!(line, b"after");
        assert!(matches!(r.line(&mut line).await, Err(LineError::Closed)));
    }
}
