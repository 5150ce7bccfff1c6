//! The idle load: many connections logged in, INBOX selected, IDLE
//! running. Reports the server's memory per connection (the proportional
//! set size of the server's whole process tree, from /proc, so pages that
//! processes share count once), and with an SMTP address, how long one
//! message per user takes from MAIL FROM to the `* N EXISTS` of every
//! connection watching that user's INBOX.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use tokio::sync::Semaphore;

use crate::imap::Session;
use crate::wire::Conn;

/// How long every connection gets to hear of the delivery.
const FANOUT_WAIT: Duration = Duration::from_secs(120);
/// Recipients per SMTP transaction (RFC 5321's minimum that servers take).
const RCPTS_PER_MESSAGE: usize = 100;

pub struct Plan {
    pub addr: String,
    pub user: String,
    pub password: String,
    pub users: usize,
    pub connections: usize,
    /// Logins in flight at once.
    pub parallel: usize,
    /// The server's main process: its tree's memory is reported.
    pub memory_of: Option<u32>,
    /// Where to send the message that every connection should hear of,
    /// and the recipients (`%d`: 1..=users).
    pub smtp: Option<(String, String)>,
}

pub async fn run(plan: Plan) -> anyhow::Result<String> {
    let before = plan.memory_of.map(tree_pss_kib).transpose()?;
    let gate = Arc::new(Semaphore::new(plan.parallel.max(1)));
    let started = Instant::now();
    let mut opening = Vec::new();
    for n in 0..plan.connections {
        let gate = gate.clone();
        let (addr, password) = (plan.addr.clone(), plan.password.clone());
        let user_no = n % plan.users.max(1) + 1;
        let login = plan.user.replace("%d", &user_no.to_string());
        opening.push(tokio::spawn(async move {
            let _turn = gate.acquire_owned().await?;
            let mut s = Session::login(&addr, &login, &password).await?;
            let known = s.idle("INBOX").await?;
            anyhow::Ok((s, known))
        }));
    }
    let mut idle = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for t in opening {
        match t.await? {
            Ok(s) => idle.push(s),
            Err(e) => {
                errors += 1;
                first_error.get_or_insert(format!("{e:#}"));
            }
        }
    }
    let opened_in = started.elapsed();
    // Let the server settle (buffers shrink, tasks park) before measuring.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut line = format!(
        "connections={} errors={errors} opened_in_s={:.1}",
        idle.len(),
        opened_in.as_secs_f64()
    );
    if let (Some(pid), Some(before)) = (plan.memory_of, before) {
        let after = tree_pss_kib(pid)?;
        line.push_str(&format!(
            " server_kib_before={before} server_kib_after={after} per_connection_kib={:.1}",
            after.saturating_sub(before) as f64 / idle.len().max(1) as f64
        ));
    }
    if let Some((smtp, rcpt)) = &plan.smtp {
        let (reached, waited) = fanout(idle, smtp, rcpt, plan.users).await?;
        let pct = |p: f64| {
            reached
                .get(((reached.len() as f64 - 1.0) * p).round() as usize)
                .map_or(0, |d| d.as_millis())
        };
        line.push_str(&format!(
            " reached={}/{waited} fanout_p50_ms={} fanout_p99_ms={} fanout_max_ms={}",
            reached.len(),
            pct(0.5),
            pct(0.99),
            pct(1.0)
        ));
    }
    if let Some(e) = first_error {
        line.push_str(&format!(" first_error={e:?}"));
    }
    Ok(line)
}

/// Sends one message to every user and times its arrival at each idle
/// connection; answers the sorted times and how many connections waited.
async fn fanout(
    idle: Vec<(Session, usize)>,
    smtp: &str,
    rcpt: &str,
    users: usize,
) -> anyhow::Result<(Vec<Duration>, usize)> {
    let waited = idle.len();
    let t0 = Instant::now();
    let mut waiting = Vec::new();
    for (mut s, known) in idle {
        waiting.push(tokio::spawn(async move {
            tokio::time::timeout(FANOUT_WAIT, s.await_exists(known))
                .await
                .ok()
                .and_then(|r| r.ok())
                .map(|_| t0.elapsed())
        }));
    }
    let recipients: Vec<String> = (1..=users)
        .map(|i| rcpt.replace("%d", &i.to_string()))
        .collect();
    send(smtp, &recipients).await?;
    let mut reached = Vec::new();
    for w in waiting {
        if let Some(d) = w.await? {
            reached.push(d);
        }
    }
    reached.sort_unstable();
    Ok((reached, waited))
}

async fn send(addr: &str, recipients: &[String]) -> anyhow::Result<()> {
    let mut c = Conn::open(addr).await?;
    expect(&mut c, "220").await?;
    c.send(b"EHLO bench.remote.test\r\n").await?;
    expect(&mut c, "250").await?;
    for batch in recipients.chunks(RCPTS_PER_MESSAGE) {
        c.send(b"MAIL FROM:<bench@remote.test>\r\n").await?;
        expect(&mut c, "250").await?;
        for r in batch {
            c.send(format!("RCPT TO:<{r}>\r\n").as_bytes()).await?;
            expect(&mut c, "250").await?;
        }
        c.send(b"DATA\r\n").await?;
        expect(&mut c, "354").await?;
        c.send(
            b"From: <bench@remote.test>\r\nSubject: for everyone watching\r\n\
              Message-ID: <fanout@bench.remote.test>\r\n\r\nNew mail.\r\n.\r\n",
        )
        .await?;
        expect(&mut c, "250").await?;
    }
    c.send(b"QUIT\r\n").await?;
    Ok(())
}

async fn expect(c: &mut Conn, code: &str) -> anyhow::Result<()> {
    loop {
        let line = c.line().await?;
        let text = String::from_utf8_lossy(&line);
        ensure!(text.starts_with(code), "expected {code}, got {text:?}");
        if text.as_bytes().get(3) != Some(&b'-') {
            return Ok(());
        }
    }
}

/// Proportional set size of `pid` and all its descendants, in KiB.
fn tree_pss_kib(pid: u32) -> anyhow::Result<u64> {
    let mut parent_of = Vec::new();
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(p) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        // The parent is the 4th field, after the parenthesised name.
        if let Ok(stat) = std::fs::read_to_string(format!("/proc/{p}/stat"))
            && let Some(after) = stat.rsplit_once(") ").map(|(_, a)| a)
            && let Some(ppid) = after.split(' ').nth(1).and_then(|x| x.parse::<u32>().ok())
        {
            parent_of.push((p, ppid));
        }
    }
    let mut tree = vec![pid];
    let mut i = 0;
    while i < tree.len() {
        let p = tree[i];
        tree.extend(parent_of.iter().filter(|(_, pp)| *pp == p).map(|(c, _)| *c));
        i += 1;
    }
    let mut total = 0;
    for p in tree {
        // A process may end meanwhile; the rest still count.
        let Ok(rollup) = std::fs::read_to_string(format!("/proc/{p}/smaps_rollup")) else {
            continue;
        };
        total += rollup
            .lines()
            .find_map(|l| l.strip_prefix("Pss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .with_context(|| format!("no Pss in /proc/{p}/smaps_rollup"))?;
    }
    Ok(total)
}
