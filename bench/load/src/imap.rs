//! The IMAP load, a mail client's mix: a page of message headers, one
//! message opened (BODYSTRUCTURE, then the body), marked read, a message
//! appended and expunged again (the mailbox stays the same size).

use std::time::Instant;

use anyhow::{Context, bail, ensure};

use crate::Target;
use crate::stats::Stats;
use crate::wire::Conn;

/// Messages in a page of headers.
const PAGE: usize = 20;

const APPENDED: &[u8] = b"From: Bench <bench@example.test>\r\nTo: user@example.test\r\n\
Subject: appended by satchel-bench\r\nDate: Tue, 02 Jan 2024 10:00:00 +0000\r\n\
Message-ID: <bench@example.test>\r\n\r\nA short body, appended and expunged again.\r\n";

pub async fn client(target: Target, keep_open: bool, deadline: Instant, stats: &Stats) {
    let mut seed = target
        .user
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    while Instant::now() < deadline {
        if let Err(e) = session(&target, keep_open, deadline, stats, &mut seed).await {
            stats.error(format!("imap {}: {e:#}", target.user));
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }
}

pub struct Session {
    c: Conn,
    tag: u64,
    /// Messages in the selected mailbox as this session knows them (other
    /// clients' APPENDs and EXPUNGEs arrive as untagged responses).
    exists: usize,
}

async fn session(
    t: &Target,
    keep_open: bool,
    deadline: Instant,
    stats: &Stats,
    seed: &mut u64,
) -> anyhow::Result<()> {
    let mut s = Session::connect(&t.addr).await?;
    s.timed(
        stats,
        "LOGIN",
        &format!("LOGIN \"{}\" \"{}\"", t.user, t.password),
    )
    .await?;
    s.timed(stats, "SELECT", "SELECT INBOX").await?;
    ensure!(s.exists > 0, "INBOX is empty; load the mailboxes first");
    loop {
        s.mix(stats, seed).await?;
        stats.round();
        if !keep_open || Instant::now() >= deadline {
            break;
        }
    }
    s.timed(stats, "LOGOUT", "LOGOUT").await?;
    Ok(())
}

impl Session {
    /// Connected, greeting checked, not logged in.
    pub async fn connect(addr: &str) -> anyhow::Result<Session> {
        let mut s = Session {
            c: Conn::open(addr).await?,
            tag: 0,
            exists: 0,
        };
        let greeting = s.c.line().await?;
        ensure!(
            greeting.starts_with(b"* OK"),
            "greeting {:?}",
            String::from_utf8_lossy(&greeting)
        );
        Ok(s)
    }

    /// Connected and logged in (not counted in any figure).
    pub async fn login(addr: &str, user: &str, password: &str) -> anyhow::Result<Session> {
        let mut s = Session::connect(addr).await?;
        s.command(&format!("LOGIN \"{user}\" \"{password}\""))
            .await?;
        Ok(s)
    }

    /// Messages in `folder`, by STATUS.
    pub async fn messages_in(&mut self, folder: &str) -> anyhow::Result<u64> {
        let lines = self
            .command(&format!("STATUS \"{folder}\" (MESSAGES)"))
            .await?;
        lines
            .iter()
            .filter_map(|l| std::str::from_utf8(l).ok())
            .find_map(|l| {
                let rest = l.strip_prefix("* STATUS ")?;
                let n = rest.split("(MESSAGES ").nth(1)?;
                n.trim_end_matches(')').trim().parse().ok()
            })
            .with_context(|| format!("no STATUS answer for {folder}"))
    }

    /// SELECTs `folder` and starts IDLE: from here on the server's pushes
    /// are read with [`Session::await_exists`].
    pub async fn idle(&mut self, folder: &str) -> anyhow::Result<usize> {
        self.command(&format!("SELECT \"{folder}\"")).await?;
        self.tag += 1;
        self.c
            .send(format!("i{} IDLE\r\n", self.tag).as_bytes())
            .await?;
        let go = self.c.line().await?;
        ensure!(
            go.starts_with(b"+"),
            "IDLE answered {:?}",
            String::from_utf8_lossy(&go)
        );
        Ok(self.exists)
    }

    /// Waits (while IDLE) for `* N EXISTS` with N above `known`.
    pub async fn await_exists(&mut self, known: usize) -> anyhow::Result<usize> {
        loop {
            let line = self.c.line().await?;
            if let Some(n) = untagged_number(&line, " EXISTS")
                && n > known
            {
                self.exists = n;
                return Ok(n);
            }
        }
    }

    /// Sends a command, waits for its tagged OK (not counted).
    pub async fn command(&mut self, command: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        self.c
            .send(format!("{tag} {command}\r\n").as_bytes())
            .await?;
        Ok(self.answer(&tag).await?.0)
    }

    async fn mix(&mut self, stats: &Stats, seed: &mut u64) -> anyhow::Result<()> {
        let exists = self.exists;
        ensure!(exists > 0, "the mailbox emptied");
        let page = PAGE.min(exists);
        let first = 1 + next(seed) as usize % (exists - page + 1);
        let last = first + page - 1;
        let listed = self
            .timed(
                stats,
                "FETCH headers",
                &format!(
                    "FETCH {first}:{last} (UID FLAGS RFC822.SIZE BODY.PEEK[HEADER.FIELDS (FROM TO SUBJECT DATE)])"
                ),
            )
            .await?;
        let got = fetches(&listed, b"BODY[HEADER.FIELDS");
        ensure!(got == page, "asked for {page} headers, got {got}");
        let n = first + next(seed) as usize % page;
        let structure = self
            .timed(
                stats,
                "FETCH BODYSTRUCTURE",
                &format!("FETCH {n} (BODYSTRUCTURE)"),
            )
            .await?;
        ensure!(
            fetches(&structure, b"BODYSTRUCTURE") == 1,
            "no BODYSTRUCTURE for {n}"
        );
        let body = self
            .timed(stats, "FETCH BODY[]", &format!("FETCH {n} (BODY.PEEK[])"))
            .await?;
        ensure!(
            fetches(&body, b"BODY[]") == 1 && body.iter().any(|l| l.len() > 100),
            "no body for message {n}"
        );
        self.timed(stats, "STORE", &format!("STORE {n} +FLAGS.SILENT (\\Seen)"))
            .await?;

        let started = Instant::now();
        self.tag += 1;
        let tag = format!("b{}", self.tag);
        let mut command =
            format!("{tag} APPEND INBOX (\\Seen) {{{}+}}\r\n", APPENDED.len()).into_bytes();
        command.extend_from_slice(APPENDED);
        command.extend_from_slice(b"\r\n");
        self.c.send(&command).await?;
        let (_, done) = self.answer(&tag).await?;
        stats.op("APPEND", started.elapsed());
        let text = String::from_utf8_lossy(&done);
        let uid = text
            .split("APPENDUID ")
            .nth(1)
            .and_then(|r| r.split([' ', ']']).nth(1))
            .and_then(|u| u.parse::<u32>().ok())
            .with_context(|| format!("APPEND answered without APPENDUID: {text}"))?;
        self.timed(
            stats,
            "UID STORE",
            &format!("UID STORE {uid} +FLAGS.SILENT (\\Deleted)"),
        )
        .await?;
        self.timed(stats, "UID EXPUNGE", &format!("UID EXPUNGE {uid}"))
            .await?;
        Ok(())
    }

    /// Sends a command, waits for its tagged OK, counts the round trip.
    async fn timed(
        &mut self,
        stats: &Stats,
        kind: &'static str,
        command: &str,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let started = Instant::now();
        let untagged = self.command(command).await?;
        stats.op(kind, started.elapsed());
        Ok(untagged)
    }

    /// The untagged responses (literals inlined) and the tagged OK line.
    async fn answer(&mut self, tag: &str) -> anyhow::Result<(Vec<Vec<u8>>, Vec<u8>)> {
        let mut untagged = Vec::new();
        loop {
            let mut line = self.c.line().await?;
            // A literal: its bytes, then the rest of the response.
            while let Some(n) = literal_at_end(&line) {
                let bytes = self.c.exact(n).await?;
                line.extend_from_slice(b"\r\n");
                line.extend_from_slice(&bytes);
                let rest = self.c.line().await?;
                line.extend_from_slice(&rest);
            }
            if let Some(n) = untagged_number(&line, " EXISTS") {
                self.exists = n;
            } else if untagged_number(&line, " EXPUNGE").is_some() {
                self.exists = self.exists.saturating_sub(1);
            }
            if let Some(status) = line.strip_prefix(format!("{tag} ").as_bytes()) {
                if !status.starts_with(b"OK") {
                    bail!("{tag}: {}", String::from_utf8_lossy(&line));
                }
                return Ok((untagged, line));
            }
            untagged.push(line);
        }
    }
}

/// N of `* N EXISTS` (or another `* N WORD` response).
fn untagged_number(line: &[u8], word: &str) -> Option<usize> {
    let text = std::str::from_utf8(line).ok()?;
    text.strip_prefix("* ")?.strip_suffix(word)?.parse().ok()
}

fn literal_at_end(line: &[u8]) -> Option<usize> {
    let line = line.strip_suffix(b"}")?;
    let open = line.iter().rposition(|c| *c == b'{')?;
    std::str::from_utf8(&line[open + 1..]).ok()?.parse().ok()
}

/// FETCH responses that carry `item` (others' flag changes come as
/// FETCH responses too, unasked).
fn fetches(lines: &[Vec<u8>], item: &[u8]) -> usize {
    lines
        .iter()
        .filter(|l| {
            l.starts_with(b"* ")
                && l.windows(7).any(|w| w == b" FETCH ")
                && l.windows(item.len()).any(|w| w == item)
        })
        .count()
}

/// xorshift: the same pages every run for a given user.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}
