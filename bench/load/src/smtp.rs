//! The SMTP load: connections delivering generated messages (a few KiB,
//! each with its own Message-ID) to the users in turn, many per connection
//! as postfix's smtp-source sends them. Every reply code is checked. Then
//! it waits until IMAP shows every accepted message in a mailbox, so that
//! "delivered" means filed, not just queued (a server that answers 250 and
//! delivers later is timed to the end of its deliveries).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};

use crate::imap::Session;
use crate::stats::Stats;
use crate::wire::Conn;

/// Messages a connection sends before it says QUIT and connects again.
const PER_CONNECTION: usize = 100;
/// How long the accepted messages may take to show up in the mailboxes.
const DELIVERY_WAIT: Duration = Duration::from_secs(300);
/// Where incoming mail may land: the spam sorter files into all three.
const FOLDERS: &[&str] = &["INBOX", "Junk", "Possible Junk"];

/// Where one SMTP client sends, and to whom.
#[derive(Clone)]
pub struct Plan {
    pub addr: String,
    /// Recipients: `%d` replaced by 1..=users.
    pub rcpt: String,
    pub users: usize,
    pub client: usize,
}

pub async fn client(plan: Plan, deadline: Instant, stats: &Stats, accepted: &AtomicU64) {
    let mut n = plan.client;
    while Instant::now() < deadline {
        if let Err(e) = session(&plan, deadline, stats, accepted, &mut n).await {
            stats.error(format!("smtp client {}: {e:#}", plan.client));
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
    c.send(b"EHLO bench.remote.test\r\n").await?;
    reply(&mut c, 250).await?;
    for _ in 0..PER_CONNECTION {
        if Instant::now() >= deadline {
            break;
        }
        *n += 1;
        let rcpt = plan
            .rcpt
            .replace("%d", &(*n % plan.users.max(1) + 1).to_string());
        let started = Instant::now();
        c.send(b"MAIL FROM:<bench@remote.test>\r\n").await?;
        reply(&mut c, 250).await?;
        c.send(format!("RCPT TO:<{rcpt}>\r\n").as_bytes()).await?;
        reply(&mut c, 250).await?;
        c.send(b"DATA\r\n").await?;
        reply(&mut c, 354).await?;
        let id = format!("{}.{n}@bench.remote.test", plan.client);
        c.send(&message("Bench Sender <bench@remote.test>", &id, *n, &rcpt))
            .await?;
        reply(&mut c, 250).await?;
        stats.op("message", started.elapsed());
        accepted.fetch_add(1, Ordering::Relaxed);
    }
    c.send(b"QUIT\r\n").await?;
    reply(&mut c, 221).await?;
    stats.round();
    Ok(())
}

/// A reply (all its lines) with the expected code.
pub(crate) async fn reply(c: &mut Conn, code: u16) -> anyhow::Result<()> {
    loop {
        let line = c.line().await?;
        let text = String::from_utf8_lossy(&line);
        ensure!(
            text.starts_with(&code.to_string()),
            "expected {code}, got {text:?}"
        );
        if text.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// A plain message of about 3 KiB, dot-stuffed and ended.
pub(crate) fn message(from: &str, message_id: &str, n: usize, rcpt: &str) -> Vec<u8> {
    let mut m = format!(
        "From: {from}\r\nTo: <{rcpt}>\r\n\
         Subject: Quarterly figures, part {n}\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\
         Message-ID: <{message_id}>\r\nMIME-Version: 1.0\r\n\
         Content-Type: text/plain; charset=utf-8\r\n\r\n"
    );
    for line in 0..40 {
        m.push_str(&format!(
            "Line {line} of the report: the numbers for this week look as expected, see below.\r\n"
        ));
    }
    m.push_str(".\r\n");
    m.into_bytes()
}

/// IMAP sessions, one per user, that count the messages filed for them.
pub struct Counter {
    sessions: Vec<Session>,
}

impl Counter {
    pub async fn open(
        addr: &str,
        user: &str,
        users: usize,
        password: &str,
    ) -> anyhow::Result<Counter> {
        let mut sessions = Vec::new();
        for i in 1..=users {
            let login = user.replace("%d", &i.to_string());
            let s = Session::login(addr, &login, password)
                .await
                .with_context(|| format!("IMAP login as {login} to count deliveries"))?;
            sessions.push(s);
        }
        Ok(Counter { sessions })
    }

    /// Messages in every user's folders together.
    pub async fn total(&mut self) -> anyhow::Result<u64> {
        let mut total = 0;
        for s in &mut self.sessions {
            for folder in FOLDERS {
                total += s.messages_in(folder).await?;
            }
        }
        Ok(total)
    }

    /// Waits until `expected` messages are filed; how long that took.
    pub async fn wait_for(&mut self, expected: u64) -> anyhow::Result<Duration> {
        let started = Instant::now();
        loop {
            let now = self.total().await?;
            if now >= expected {
                return Ok(started.elapsed());
            }
            if started.elapsed() > DELIVERY_WAIT {
                bail!("after {DELIVERY_WAIT:?}, {now} of {expected} messages are in the mailboxes");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}
