//! An in-process harness for a door's tests: one connection served by the
//! door exactly as the accept loop serves it, from any peer address the
//! test names (so a test can be a client off loopback), and a line client.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::conn::{Door, serve};

/// The client end of one served connection.
pub struct Client {
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    /// The server's shutdown signal, held so the session runs until the
    /// client is dropped.
    _stop: watch::Sender<bool>,
}

/// Connects to `door` as if from `peer`.
pub async fn connect<D: Door>(door: Arc<D>, peer: SocketAddr) -> std::io::Result<Client> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let client = TcpStream::connect(listener.local_addr()?).await?;
    let (tcp, _) = listener.accept().await?;
    let (stop, shutdown) = watch::channel(false);
    tokio::spawn(serve(door, tcp, peer, false, shutdown));
    let (read, writer) = client.into_split();
    Ok(Client {
        reader: BufReader::new(read),
        writer,
        _stop: stop,
    })
}

impl Client {
    /// Sends `text` and CRLF.
    pub async fn send(&mut self, text: &str) -> std::io::Result<()> {
        self.writer
            .write_all(format!("{text}\r\n").as_bytes())
            .await
    }

    /// Sends bytes as they are (a line in pieces, a body).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.writer.write_all(bytes).await
    }

    /// Sends `text` a byte at a time, `gap` apart, without a line end: a
    /// slow client's line.
    pub async fn trickle(&mut self, text: &[u8], gap: std::time::Duration) -> std::io::Result<()> {
        for b in text {
            self.writer.write_all(std::slice::from_ref(b)).await?;
            tokio::time::sleep(gap).await;
        }
        Ok(())
    }

    /// The next line, without its CRLF; an error once the server hung up.
    pub async fn line(&mut self) -> std::io::Result<String> {
        let mut line = String::new();
        if self.reader.read_line(&mut line).await? == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        Ok(line.trim_end_matches(['\r', '\n']).to_string())
    }

    /// Lines up to and including the first that starts with `prefix`.
    pub async fn until(&mut self, prefix: &str) -> std::io::Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let line = self.line().await.map_err(|e| {
                std::io::Error::other(format!("{e} before a line starting {prefix:?}: {lines:?}"))
            })?;
            let done = line.starts_with(prefix);
            lines.push(line);
            if done {
                return Ok(lines);
            }
        }
    }
}
