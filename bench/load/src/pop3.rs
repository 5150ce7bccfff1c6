//! The POP3 load: log in, UIDL, LIST, RETR every message (its size
//! checked against LIST), QUIT; again until time is up.

use std::time::Instant;

use anyhow::{bail, ensure};

use crate::Target;
use crate::stats::Stats;
use crate::wire::Conn;

pub async fn client(target: Target, deadline: Instant, stats: &Stats) {
    while Instant::now() < deadline {
        match session(&target, deadline, stats).await {
            Ok(()) => stats.round(),
            Err(e) => {
                stats.error(format!("pop3 {}: {e:#}", target.user));
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn session(t: &Target, deadline: Instant, stats: &Stats) -> anyhow::Result<()> {
    let mut c = Conn::open(&t.addr).await?;
    ok(&c.line().await?)?;
    let started = Instant::now();
    command(&mut c, &format!("USER {}", t.user)).await?;
    command(&mut c, &format!("PASS {}", t.password)).await?;
    stats.op("USER+PASS", started.elapsed());

    let started = Instant::now();
    command(&mut c, "UIDL").await?;
    let uidl = multiline(&mut c).await?;
    stats.op("UIDL", started.elapsed());
    let started = Instant::now();
    command(&mut c, "LIST").await?;
    let sizes: Vec<usize> = multiline(&mut c)
        .await?
        .iter()
        .map(|l| {
            let text = String::from_utf8_lossy(l);
            text.split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0)
        })
        .collect();
    stats.op("LIST", started.elapsed());
    ensure!(
        uidl.len() == sizes.len(),
        "UIDL lists {} messages, LIST {}",
        uidl.len(),
        sizes.len()
    );
    for (i, size) in sizes.iter().enumerate() {
        if Instant::now() >= deadline {
            break;
        }
        let started = Instant::now();
        command(&mut c, &format!("RETR {}", i + 1)).await?;
        let lines = multiline(&mut c).await?;
        stats.op("RETR", started.elapsed());
        let got: usize = lines.iter().map(|l| l.len() + 2).sum();
        ensure!(
            got == *size,
            "RETR {} gave {got} octets, LIST said {size}",
            i + 1
        );
    }
    command(&mut c, "QUIT").await?;
    Ok(())
}

async fn command(c: &mut Conn, line: &str) -> anyhow::Result<()> {
    c.send(format!("{line}\r\n").as_bytes()).await?;
    ok(&c.line().await?)
}

fn ok(line: &[u8]) -> anyhow::Result<()> {
    if !line.starts_with(b"+OK") {
        bail!("{}", String::from_utf8_lossy(line));
    }
    Ok(())
}

/// The lines of a multi-line answer, dot-stuffing undone.
async fn multiline(c: &mut Conn) -> anyhow::Result<Vec<Vec<u8>>> {
    let mut out = Vec::new();
    loop {
        let line = c.line().await?;
        if line == b"." {
            return Ok(out);
        }
        out.push(match line.strip_prefix(b".") {
            Some(rest) => rest.to_vec(),
            None => line,
        });
    }
}
