//! The sending load: clients on a submission port, each logging in once
//! per connection (AUTH PLAIN) and sending generated messages to remote
//! addresses, while a sink in this process plays the remote MX that the
//! server relays to. "Delivered" means at the sink: the rate counts from
//! the first submission until the sink holds every accepted message.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;
use base64::Engine;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

use crate::smtp::{message, reply};
use crate::stats::Stats;
use crate::wire::Conn;

/// Messages a connection sends before it says QUIT and logs in again.
const PER_CONNECTION: usize = 100;
/// How long the accepted messages may take to reach the sink.
const DELIVERY_WAIT: Duration = Duration::from_secs(300);

/// One submission client.
#[derive(Clone)]
pub struct Plan {
    pub addr: String,
    pub login: String,
    pub password: String,
    /// MAIL FROM and From:.
    pub sender: String,
    /// Recipients: `%d` replaced by a counter.
    pub rcpt: String,
    pub client: usize,
}

pub async fn client(plan: Plan, deadline: Instant, stats: &Stats, accepted: &AtomicU64) {
    let mut n = 0;
    while Instant::now() < deadline {
        if let Err(e) = session(&plan, deadline, stats, accepted, &mut n).await {
            stats.error(format!("submission client {}: {e:#}", plan.client));
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn session(
    plan: &Plan,
    deadline: Instant,
    stats: &Stats,
    accepted: &AtomicU64,
    n: &mut usize,
) -> anyhow::Result<()> {
    let mut c = Conn::open(&plan.addr).await?;
    reply(&mut c, 220).await?;
    c.send(b"EHLO bench.example.test\r\n").await?;
    reply(&mut c, 250).await?;
    let token = base64::engine::general_purpose::STANDARD
        .encode(format!("\0{}\0{}", plan.login, plan.password));
    let started = Instant::now();
    c.send(format!("AUTH PLAIN {token}\r\n").as_bytes()).await?;
    reply(&mut c, 235).await?;
    stats.op("auth", started.elapsed());
    for _ in 0..PER_CONNECTION {
        if Instant::now() >= deadline {
            break;
        }
        *n += 1;
        let rcpt = plan.rcpt.replace("%d", &(*n % 50 + 1).to_string());
        let started = Instant::now();
        c.send(format!("MAIL FROM:<{}>\r\n", plan.sender).as_bytes())
            .await?;
        reply(&mut c, 250).await?;
        c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await?;
        reply(&mut c, 250).await?;
        c.send(b"DATA\r\n").await?;
        reply(&mut c, 354).await?;
        let id = format!("{}.{}.{n}@bench.example.test", run_token(), plan.client);
        let from = format!("Bench User <{}>", plan.sender);
        c.send(&message(&from, &id, *n, &rcpt)).await?;
        reply(&mut c, 250).await?;
        stats.op("message", started.elapsed());
        accepted.fetch_add(1, Ordering::Relaxed);
    }
    c.send(b"QUIT\r\n").await?;
    reply(&mut c, 221).await?;
    stats.round();
    Ok(())
}

/// A token for this run of the bench, so that no two runs send the same
/// Message-ID (a server may take a repeated one for a retried message).
fn run_token() -> u128 {
    static TOKEN: std::sync::OnceLock<u128> = std::sync::OnceLock::new();
    *TOKEN.get_or_init(|| {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos())
    })
}

/// The remote MX: takes every message (PIPELINING, 8BITMIME) and counts
/// them.
pub struct Sink {
    pub received: Arc<AtomicU64>,
}

impl Sink {
    pub async fn start(port: u16) -> anyhow::Result<Sink> {
        let listener = TcpListener::bind(("127.0.0.1", port)).await?;
        let received = Arc::new(AtomicU64::new(0));
        let count = received.clone();
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let count = count.clone();
                tokio::spawn(async move {
                    let _ = sink_session(tcp, &count).await;
                });
            }
        });
        Ok(Sink { received })
    }

    /// Waits until the sink holds `expected` messages; how long that took.
    pub async fn wait_for(&self, expected: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let now = self.received.load(Ordering::Relaxed);
            if now >= expected {
                return Ok(started.elapsed());
            }
            if started.elapsed() > DELIVERY_WAIT {
                bail!("after {DELIVERY_WAIT:?}, {now} of {expected} messages reached the sink");
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn sink_session(tcp: TcpStream, count: &AtomicU64) -> anyhow::Result<()> {
    tcp.set_nodelay(true)?;
    let (r, mut w) = tcp.into_split();
    let mut r = BufReader::new(r);
    w.write_all(b"220 sink.remote.test ESMTP\r\n").await?;
    let mut line = Vec::new();
    loop {
        line.clear();
        if r.read_until(b'\n', &mut line).await? == 0 {
            return Ok(());
        }
        let verb = String::from_utf8_lossy(&line).to_ascii_uppercase();
        let answer: &[u8] = if verb.starts_with("EHLO") {
            b"250-sink.remote.test\r\n250-PIPELINING\r\n250-8BITMIME\r\n250 SIZE 100000000\r\n"
        } else if verb.starts_with("HELO") {
            b"250 sink.remote.test\r\n"
        } else if verb.starts_with("DATA") {
            w.write_all(b"354 go ahead\r\n").await?;
            loop {
                line.clear();
                if r.read_until(b'\n', &mut line).await? == 0 {
                    return Ok(());
                }
                if line == b".\r\n" {
                    break;
                }
            }
            count.fetch_add(1, Ordering::Relaxed);
            b"250 2.0.0 ok\r\n"
        } else if verb.starts_with("QUIT") {
            w.write_all(b"221 bye\r\n").await?;
            return Ok(());
        } else {
            b"250 2.0.0 ok\r\n"
        };
        w.write_all(answer).await?;
    }
}
