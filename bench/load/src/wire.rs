//! Line-oriented protocol I/O for the clients: lines, literals, timeouts.

use std::time::Duration;

use anyhow::{Context, bail};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// No answer in this long is an error, not a slow operation.
const TIMEOUT: Duration = Duration::from_secs(30);

pub struct Conn {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
}

impl Conn {
    pub async fn open(addr: &str) -> anyhow::Result<Conn> {
        let tcp = tokio::time::timeout(TIMEOUT, TcpStream::connect(addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("cannot connect to {addr}"))?;
        tcp.set_nodelay(true)?;
        let (r, w) = tcp.into_split();
        Ok(Conn {
            reader: BufReader::with_capacity(64 * 1024, r),
            writer: w,
        })
    }

    pub async fn send(&mut self, data: &[u8]) -> anyhow::Result<()> {
        tokio::time::timeout(TIMEOUT, self.writer.write_all(data))
            .await
            .context("write timed out")??;
        Ok(())
    }

    /// The next line, with its CRLF removed.
    pub async fn line(&mut self) -> anyhow::Result<Vec<u8>> {
        let mut line = Vec::new();
        let n = tokio::time::timeout(TIMEOUT, self.reader.read_until(b'\n', &mut line))
            .await
            .context("read timed out")??;
        if n == 0 {
            bail!("the server closed the connection");
        }
        while line.last().is_some_and(|c| *c == b'\n' || *c == b'\r') {
            line.pop();
        }
        Ok(line)
    }

    /// Exactly `n` bytes.
    pub async fn exact(&mut self, n: usize) -> anyhow::Result<Vec<u8>> {
        let mut buf = vec![0; n];
        tokio::time::timeout(TIMEOUT, self.reader.read_exact(&mut buf))
            .await
            .context("read timed out")??;
        Ok(buf)
    }
}
