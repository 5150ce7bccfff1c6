//! COMPRESS=DEFLATE (RFC 4978): raw deflate (RFC 1951, no zlib header)
//! both ways over a stream. Every write is compressed and sync-flushed at
//! once, so each response reaches the client whole; reading hands over
//! whatever the inflater makes of the bytes that came, whether the client
//! ended them with a sync or a partial flush, and never waits for more
//! while it has output (mox turned COMPRESS off because its inflater did,
//! and iOS Mail timed out).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Compressed bytes read from the peer and not yet inflated, at most.
const IN_BUFFER: usize = 16 * 1024;

/// A stream with deflate on both directions.
pub struct Deflate<S> {
    inner: S,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed input not yet inflated: `input[at..len]`.
    input: Box<[u8]>,
    at: usize,
    len: usize,
    /// Compressed output not yet written to `inner`: `output[sent..]`.
    output: Vec<u8>,
    sent: usize,
}

impl<S> Deflate<S> {
    pub fn new(inner: S) -> Deflate<S> {
        Deflate {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new(Compression::default(), false),
            input: vec![0; IN_BUFFER].into_boxed_slice(),
            at: 0,
            len: 0,
            output: Vec::new(),
            sent: 0,
        }
    }

    pub fn get_ref(&self) -> &S {
        &self.inner
    }
}

fn broken(e: impl std::fmt::Display) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("deflate: {e}"))
}

impl<S: AsyncRead + Unpin> AsyncRead for Deflate<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if this.at < this.len {
                let before_in = this.inflate.total_in();
                let before_out = this.inflate.total_out();
                let status = this
                    .inflate
                    .decompress(
                        &this.input[this.at..this.len],
                        buf.initialize_unfilled(),
                        FlushDecompress::Sync,
                    )
                    .map_err(broken)?;
                let used = (this.inflate.total_in() - before_in) as usize;
                let made = (this.inflate.total_out() - before_out) as usize;
                this.at += used;
                buf.advance(made);
                if made > 0 {
                    return Poll::Ready(Ok(()));
                }
                if status == Status::StreamEnd {
                    return Poll::Ready(Ok(()));
                }
                if used == 0 && this.at < this.len {
                    // Neither input taken nor output made: only a full
                    // caller buffer does that.
                    return Poll::Ready(Ok(()));
                }
            }
            // All input used: read more compressed bytes.
            this.at = 0;
            this.len = 0;
            let mut more = ReadBuf::new(&mut this.input);
            match Pin::new(&mut this.inner).poll_read(cx, &mut more) {
                Poll::Ready(Ok(())) => {
                    let n = more.filled().len();
                    if n == 0 {
                        return Poll::Ready(Ok(())); // end of stream
                    }
                    this.len = n;
                }
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> Deflate<S> {
    /// Writes what is compressed and not yet sent; Ready once all is.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.output.len() {
            match Pin::new(&mut self.inner).poll_write(cx, &self.output[self.sent..]) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.output.clear();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deflate<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Earlier output first, so the order on the wire holds.
        match this.drain(cx) {
            Poll::Ready(Ok(())) => {}
            other => return other.map(|r| r.map(|()| 0)),
        }
        let mut taken = 0;
        loop {
            this.output.reserve(data.len() / 2 + 64);
            let before_in = this.deflate.total_in();
            let start = this.output.len();
            let spare = this.output.capacity() - start;
            this.output.resize(start + spare, 0);
            let before_out = this.deflate.total_out();
            this.deflate
                .compress(
                    &data[taken..],
                    &mut this.output[start..],
                    FlushCompress::Sync,
                )
                .map_err(broken)?;
            let made = (this.deflate.total_out() - before_out) as usize;
            this.output.truncate(start + made);
            taken += (this.deflate.total_in() - before_in) as usize;
            // Done when all input is in and the flush left room to spare.
            if taken == data.len() && made < spare {
                break;
            }
        }
        // Sent now if the peer takes it; otherwise the next write or flush.
        if let Poll::Ready(Err(e)) = this.drain(cx) {
            return Poll::Ready(Err(e));
        }
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_flush(cx),
            other => other,
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match this.drain(cx) {
            Poll::Ready(Ok(())) => Pin::new(&mut this.inner).poll_shutdown(cx),
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn both_ways_and_partial_flushes_arrive_at_once() {
        let (a, b) = tokio::io::duplex(1 << 16);
        let mut server = Deflate::new(a);
        let mut client = Deflate::new(b);
        client.write_all(b"a1 NOOP\r\n").await.unwrap();
        let mut got = [0u8; 64];
        let n = server.read(&mut got).await.unwrap();
        assert_eq!(&got[..n], b"a1 NOOP\r\n");
        let big: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        server.write_all(&big).await.unwrap();
        server.flush().await.unwrap();
        let mut back = vec![0u8; big.len()];
        client.read_exact(&mut back).await.unwrap();
        assert_eq!(back, big);
    }

    #[tokio::test]
    async fn garbage_is_an_error_not_a_hang() {
        let (a, mut b) = tokio::io::duplex(1024);
        let mut server = Deflate::new(a);
        b.write_all(&[0xff; 32]).await.unwrap();
        let mut got = [0u8; 64];
        assert!(server.read(&mut got).await.is_err());
    }
}
