//! tokio-postgres + deadpool against sqlx's PgPool, on the PostgreSQL
//! store's typical query shapes. A measurement tool, not part of Satchel.
//!
//!     pg-drivers URL [--rounds N] [--max-others X] [--drivers tp,sqlx,sqlx-notest] [--shapes append,read,point]
//!
//! The parent lays the tables out, then runs each (shape, round, driver)
//! in a child process of this same binary (`--one DRIVER SHAPE URL POSTMASTER_PID`), so
//! the CPU a driver costs can be read off that child alone. The child
//! reads its own /proc/self/stat (user+system, all threads) and the
//! summed CPU of the server's processes (its postmaster and children,
//! when the server runs on this machine) just before and just
//! after the timed part, once its pool's connections are all open, and
//! the machine's busy time from /proc/stat: what neither side used is
//! "others", CPU that something else on the machine took meanwhile.

use std::collections::HashMap;
use std::error::Error;
use std::process::Command;
use std::time::Instant;

type Res<T> = Result<T, Box<dyn Error + Send + Sync>>;

const POOL: usize = 8;
const TASKS: usize = 16;
/// The mailbox the read and point shapes query (1,000 messages).
const READ_MB: i64 = 1000;
const READ_ROWS: i64 = 1000;

const UPDATE: &str = "UPDATE mailboxes SET uidnext = uidnext + 1, highestmodseq = highestmodseq + 1 \
                      WHERE id = $1 RETURNING uidnext, highestmodseq";
const INSERT: &str = "INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, blob) \
                      VALUES ($1, $2, $3, $4, $5, $6)";
const READ: &str = "SELECT uid, modseq, flags, keywords FROM messages WHERE mailbox_id = $1 ORDER BY uid";
const POINT: &str = "SELECT flags FROM messages WHERE mailbox_id = $1 AND uid = $2";

#[derive(Clone, Copy, PartialEq, Eq, Hash, Debug)]
enum Shape {
    Append,
    Read,
    Point,
}

impl Shape {
    fn parse(s: &str) -> Res<Shape> {
        Ok(match s {
            "append" => Shape::Append,
            "read" => Shape::Read,
            "point" => Shape::Point,
            _ => return Err(format!("unknown shape {s}").into()),
        })
    }
    fn name(self) -> &'static str {
        match self {
            Shape::Append => "append",
            Shape::Read => "read",
            Shape::Point => "point",
        }
    }
    fn total_ops(self) -> usize {
        match self {
            Shape::Append => 20_000,
            Shape::Read => 20_000,
            Shape::Point => 100_000,
        }
    }
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some("--one") {
        let [_, _, driver, shape, url, postmaster] = &args[..] else {
            return Err("usage: pg-drivers --one DRIVER SHAPE URL POSTMASTER_PID".into());
        };
        return child(driver, Shape::parse(shape)?, url, postmaster.parse()?);
    }
    parent(&args[1..])
}

// ---------------------------------------------------------------------------
// The parent: tables, the A B A B order, the summary.

struct Run {
    ops_per_s: f64,
    client_cpu: f64,
    server_cpu: f64,
    others_cpu: f64,
}

fn parent(args: &[String]) -> Res<()> {
    let mut url = None;
    let mut rounds = 3usize;
    // A run in which other processes took more CPU than this many seconds
    // per second of it is run again (up to 5 times).
    let mut max_others = 0.15f64;
    let mut drivers: Vec<String> = vec!["tp".into(), "sqlx".into(), "sqlx-notest".into()];
    let mut shapes = vec![Shape::Append, Shape::Read, Shape::Point];
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--rounds" => rounds = it.next().ok_or("--rounds N")?.parse()?,
            "--max-others" => max_others = it.next().ok_or("--max-others X")?.parse()?,
            "--drivers" => {
                drivers = it
                    .next()
                    .ok_or("--drivers LIST")?
                    .split(',')
                    .map(String::from)
                    .collect()
            }
            "--shapes" => {
                shapes = it
                    .next()
                    .ok_or("--shapes LIST")?
                    .split(',')
                    .map(Shape::parse)
                    .collect::<Res<_>>()?
            }
            _ if url.is_none() && !a.starts_with("--") => url = Some(a.clone()),
            _ => return Err(format!("unexpected argument {a}").into()),
        }
    }
    let url = url.ok_or(
        "usage: pg-drivers URL [--rounds N] [--max-others X] [--drivers tp,sqlx,sqlx-notest] [--shapes append,read,point]",
    )?;
    for d in &drivers {
        if !["tp", "sqlx", "sqlx-notest"].contains(&d.as_str()) {
            return Err(format!("unknown driver {d}").into());
        }
    }

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (admin, conn) = rt.block_on(tokio_postgres::connect(&url, tokio_postgres::NoTls))?;
    rt.spawn(async move {
        if let Err(e) = conn.await {
            eprintln!("admin connection: {e}");
        }
    });
    rt.block_on(create(&admin))?;
    // The server's postmaster, whose children's CPU the children add up:
    // the parent of the admin connection's backend, if it runs here.
    let backend: i32 = rt
        .block_on(admin.query_one("SELECT pg_backend_pid()", &[]))?
        .get(0);
    let postmaster = std::fs::read_to_string(format!("/proc/{backend}/stat"))
        .ok()
        .and_then(|t| parse_stat(&t))
        .map_or(0, |(_, ppid, _, _)| ppid);
    if postmaster == 0 {
        println!("note: the server is not on this machine; its CPU is not measured (shown as 0)");
    }
    rt.block_on(reset(&admin))?;

    let exe = std::env::current_exe()?;
    let exe = exe.as_path();
    println!(
        "pool {POOL} connections, {TASKS} tasks; drivers {}; {rounds} rounds, drivers alternating",
        drivers.join(", ")
    );
    let mut results: HashMap<(Shape, String), Vec<Run>> = HashMap::new();
    for &shape in &shapes {
        for round in 1..=rounds {
            for d in &drivers {
                let mut tries = 0;
                let run = loop {
                    tries += 1;
                    let (run, secs) = one_run(&rt, &admin, exe, d, shape, &url, postmaster, round)?;
                    // Something else on the machine took CPU meanwhile: the
                    // figure is not the driver's. Wait and run it again.
                    if run.others_cpu <= max_others * secs || tries >= 5 {
                        break run;
                    }
                    println!(
                        "        disturbed: others took {:.2} s of CPU in {secs:.2} s; again in 30 s",
                        run.others_cpu
                    );
                    std::thread::sleep(std::time::Duration::from_secs(30));
                };
                results.entry((shape, d.clone())).or_default().push(run);
            }
        }
    }

    println!();
    println!("| shape | driver | ops/s per round | median ops/s | tp / this | client CPU s (median) | postgres CPU s (median) | others' CPU s (max) |");
    println!("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |");
    for &shape in &shapes {
        let tp_median = results
            .get(&(shape, "tp".to_string()))
            .map(|r| median(r.iter().map(|r| r.ops_per_s)));
        for d in &drivers {
            let runs = &results[&(shape, d.clone())];
            let med = median(runs.iter().map(|r| r.ops_per_s));
            let per_round: Vec<String> = runs.iter().map(|r| format!("{:.0}", r.ops_per_s)).collect();
            let ratio = match tp_median {
                Some(t) if d != "tp" => format!("{:.2}", t / med),
                _ => "-".into(),
            };
            println!(
                "| {} ({} ops) | {} | {} | {:.0} | {} | {:.2} | {:.2} | {:.2} |",
                shape.name(),
                shape.total_ops(),
                d,
                per_round.join(" / "),
                med,
                ratio,
                median(runs.iter().map(|r| r.client_cpu)),
                median(runs.iter().map(|r| r.server_cpu)),
                runs.iter().map(|r| r.others_cpu).fold(0.0, f64::max),
            );
        }
    }
    Ok(())
}

/// One child run: the tables made ready, the child started, its RESULT read.
#[allow(clippy::too_many_arguments)]
fn one_run(
    rt: &tokio::runtime::Runtime,
    admin: &tokio_postgres::Client,
    exe: &std::path::Path,
    d: &str,
    shape: Shape,
    url: &str,
    postmaster: u32,
    round: usize,
) -> Res<(Run, f64)> {
    if shape == Shape::Append {
        rt.block_on(reset(admin))?;
    }
    rt.block_on(async {
        admin.batch_execute("VACUUM ANALYZE messages, mailboxes").await?;
        admin.batch_execute("CHECKPOINT").await
    })?;
    let out = Command::new(exe)
        .args(["--one", d, shape.name(), url, &postmaster.to_string()])
        .output()?;
    if !out.status.success() {
        return Err(format!(
            "{d} {} failed: {}",
            shape.name(),
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT "))
        .ok_or_else(|| format!("no RESULT from {d}: {text}"))?;
    let f: Vec<f64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse())
        .collect::<Result<_, _>>()?;
    let [ops, secs, user, sys, server, others] = f[..] else {
        return Err(format!("bad RESULT line {line}").into());
    };
    let run = Run {
        ops_per_s: ops / secs,
        client_cpu: user + sys,
        server_cpu: server,
        others_cpu: others,
    };
    println!(
        "{:<7} round {round} {:<12} {:>9.0} ops/s  {:>6.2} s  client cpu {:>6.2} s (user {user:.2} sys {sys:.2})  postgres cpu {:>6.2} s  others {:>5.2} s",
        shape.name(),
        d,
        run.ops_per_s,
        secs,
        run.client_cpu,
        run.server_cpu,
        run.others_cpu
    );
    Ok((run, secs))
}

fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.collect();
    v.sort_by(|a, b| a.total_cmp(b));
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

async fn create(c: &tokio_postgres::Client) -> Res<()> {
    c.batch_execute(
        "DROP TABLE IF EXISTS messages, mailboxes;
         CREATE TABLE mailboxes (id bigint PRIMARY KEY, uidnext bigint NOT NULL, highestmodseq bigint NOT NULL);
         CREATE TABLE messages (
             id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
             mailbox_id bigint NOT NULL, uid bigint NOT NULL, modseq bigint NOT NULL,
             flags bigint NOT NULL, keywords text NOT NULL, blob text NOT NULL,
             UNIQUE (mailbox_id, uid));",
    )
    .await?;
    Ok(())
}

/// Empty tables, the append shape's 16 mailboxes and the 1,000-message
/// mailbox the reads query.
async fn reset(c: &tokio_postgres::Client) -> Res<()> {
    c.batch_execute(&format!(
        "TRUNCATE messages, mailboxes RESTART IDENTITY;
         INSERT INTO mailboxes (id, uidnext, highestmodseq) SELECT g, 1, 1 FROM generate_series(1, {TASKS}) g;
         INSERT INTO mailboxes (id, uidnext, highestmodseq) VALUES ({READ_MB}, {n} + 1, {n} + 1);
         INSERT INTO messages (mailbox_id, uid, modseq, flags, keywords, blob)
             SELECT {READ_MB}, g, g, g % 16,
                    CASE WHEN g % 3 = 0 THEN '$Forwarded $Junk' ELSE '' END,
                    md5(g::text) || md5((g + 1)::text)
             FROM generate_series(1, {n}) g;",
        n = READ_ROWS
    ))
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------
// The child: one driver, one shape, timed.

fn child(driver: &str, shape: Shape, url: &str, postmaster: u32) -> Res<()> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    rt.block_on(async {
        let total = shape.total_ops();
        let per_task = total / TASKS;
        assert_eq!(per_task * TASKS, total);
        let (elapsed, (cpu0, srv0), (cpu1, srv1), busy) = match driver {
            "tp" => {
                let pool = tp_pool(url)?;
                // Open all connections before the clock starts.
                let mut held = Vec::new();
                for _ in 0..POOL {
                    held.push(pool.get().await?);
                }
                drop(held);
                let before = snapshot(postmaster)?;
                let busy0 = machine_busy()?;
                let start = Instant::now();
                let mut tasks = Vec::new();
                for t in 0..TASKS {
                    let pool = pool.clone();
                    tasks.push(tokio::spawn(
                        async move { tp_task(&pool, shape, t, per_task).await },
                    ));
                }
                for task in tasks {
                    task.await??;
                }
                let elapsed = start.elapsed();
                let busy = machine_busy()? - busy0;
                (elapsed, before, snapshot(postmaster)?, busy)
            }
            "sqlx" | "sqlx-notest" => {
                let pool = sqlx::postgres::PgPoolOptions::new()
                    .max_connections(POOL as u32)
                    .min_connections(POOL as u32)
                    .test_before_acquire(driver == "sqlx")
                    .connect(url)
                    .await?;
                let mut held = Vec::new();
                for _ in 0..POOL {
                    held.push(pool.acquire().await?);
                }
                drop(held);
                let before = snapshot(postmaster)?;
                let busy0 = machine_busy()?;
                let start = Instant::now();
                let mut tasks = Vec::new();
                for t in 0..TASKS {
                    let pool = pool.clone();
                    tasks.push(tokio::spawn(
                        async move { sqlx_task(&pool, shape, t, per_task).await },
                    ));
                }
                for task in tasks {
                    task.await??;
                }
                let elapsed = start.elapsed();
                let busy = machine_busy()? - busy0;
                let after = snapshot(postmaster)?;
                if pool.size() as usize != POOL {
                    eprintln!("note: sqlx pool has {} connections at the end", pool.size());
                }
                (elapsed, before, after, busy)
            }
            _ => return Err(format!("unknown driver {driver}").into()),
        };
        let tick = clock_tick()?;
        let (user, sys, server) = (cpu1.0 - cpu0.0, cpu1.1 - cpu0.1, srv_delta(&srv0, &srv1));
        let others = busy.saturating_sub(user + sys + server);
        println!(
            "RESULT {} {:.6} {:.3} {:.3} {:.3} {:.3}",
            total,
            elapsed.as_secs_f64(),
            user as f64 / tick,
            sys as f64 / tick,
            server as f64 / tick,
            others as f64 / tick,
        );
        Res::Ok(())
    })
}

fn tp_pool(url: &str) -> Res<deadpool_postgres::Pool> {
    let config: tokio_postgres::Config = url.parse()?;
    // As the store opens it (crates/store/src/postgres.rs), but 8 connections.
    let manager = deadpool_postgres::Manager::from_config(
        config,
        tokio_postgres::NoTls,
        deadpool_postgres::ManagerConfig {
            recycling_method: deadpool_postgres::RecyclingMethod::Fast,
        },
    );
    Ok(deadpool_postgres::Pool::builder(manager)
        .max_size(POOL)
        .runtime(deadpool_postgres::Runtime::Tokio1)
        .build()?)
}

/// A cheap per-task random sequence for the point shape's UIDs.
fn next_uid(state: &mut u64) -> i64 {
    *state = state
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    ((*state >> 33) % READ_ROWS as u64) as i64 + 1
}

fn blob_name(mailbox: i64, uid: i64) -> String {
    format!("{mailbox:016x}{uid:048x}")
}

async fn tp_task(pool: &deadpool_postgres::Pool, shape: Shape, task: usize, n: usize) -> Res<()> {
    let mailbox = task as i64 + 1;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ task as u64;
    for _ in 0..n {
        match shape {
            Shape::Append => {
                let mut c = pool.get().await?;
                let tx = c.transaction().await?;
                let update = tx.prepare_cached(UPDATE).await?;
                let row = tx.query_one(&update, &[&mailbox]).await?;
                let uid: i64 = row.get::<_, i64>(0) - 1;
                let modseq: i64 = row.get(1);
                let insert = tx.prepare_cached(INSERT).await?;
                tx.execute(
                    &insert,
                    &[&mailbox, &uid, &modseq, &0i64, &"", &blob_name(mailbox, uid)],
                )
                .await?;
                tx.commit().await?;
            }
            Shape::Read => {
                let c = pool.get().await?;
                let st = c.prepare_cached(READ).await?;
                let rows = c.query(&st, &[&READ_MB]).await?;
                let decoded: Vec<(i64, i64, i64, String)> = rows
                    .iter()
                    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                    .collect();
                if decoded.len() != READ_ROWS as usize {
                    return Err(format!("read {} rows", decoded.len()).into());
                }
                std::hint::black_box(decoded);
            }
            Shape::Point => {
                let c = pool.get().await?;
                let st = c.prepare_cached(POINT).await?;
                let row = c.query_one(&st, &[&READ_MB, &next_uid(&mut rng)]).await?;
                std::hint::black_box(row.get::<_, i64>(0));
            }
        }
    }
    Ok(())
}

async fn sqlx_task(pool: &sqlx::PgPool, shape: Shape, task: usize, n: usize) -> Res<()> {
    let mailbox = task as i64 + 1;
    let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ task as u64;
    for _ in 0..n {
        match shape {
            Shape::Append => {
                let mut tx = pool.begin().await?;
                let (uidnext, modseq): (i64, i64) =
                    sqlx::query_as(UPDATE).bind(mailbox).fetch_one(&mut *tx).await?;
                let uid = uidnext - 1;
                sqlx::query(INSERT)
                    .bind(mailbox)
                    .bind(uid)
                    .bind(modseq)
                    .bind(0i64)
                    .bind("")
                    .bind(blob_name(mailbox, uid))
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
            }
            Shape::Read => {
                let decoded: Vec<(i64, i64, i64, String)> =
                    sqlx::query_as(READ).bind(READ_MB).fetch_all(pool).await?;
                if decoded.len() != READ_ROWS as usize {
                    return Err(format!("read {} rows", decoded.len()).into());
                }
                std::hint::black_box(decoded);
            }
            Shape::Point => {
                let flags: i64 = sqlx::query_scalar(POINT)
                    .bind(READ_MB)
                    .bind(next_uid(&mut rng))
                    .fetch_one(pool)
                    .await?;
                std::hint::black_box(flags);
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// CPU accounting from /proc.

/// comm, ppid, utime and stime (clock ticks) of a /proc/PID/stat line.
fn parse_stat(text: &str) -> Option<(String, u32, u64, u64)> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text[open + 1..close].to_string();
    // After ") ": field 3 (state) is index 0, so utime (14) is 11, stime (15) is 12.
    let rest: Vec<&str> = text[close + 2..].split_whitespace().collect();
    Some((
        comm,
        rest.get(1)?.parse().ok()?,
        rest.get(11)?.parse().ok()?,
        rest.get(12)?.parse().ok()?,
    ))
}

/// Ticks the whole machine spent busy (all CPUs; /proc/stat's first line
/// less idle and iowait), to tell how much CPU others took meanwhile.
fn machine_busy() -> Res<u64> {
    let text = std::fs::read_to_string("/proc/stat")?;
    let line = text.lines().next().ok_or("empty /proc/stat")?;
    let f: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .map(|x| x.parse().unwrap_or(0))
        .collect();
    // user nice system idle iowait irq softirq steal (guest is inside user)
    Ok(f.iter()
        .take(8)
        .enumerate()
        .filter(|(i, _)| *i != 3 && *i != 4)
        .map(|(_, v)| v)
        .sum())
}

/// (this process's (utime, stime), utime+stime by pid of the server's
/// postmaster and its children; none when `postmaster` is 0)
fn snapshot(postmaster: u32) -> Res<((u64, u64), HashMap<u32, u64>)> {
    let own = std::fs::read_to_string("/proc/self/stat")?;
    let (_, _, user, sys) = parse_stat(&own).ok_or("cannot parse /proc/self/stat")?;
    let mut server = HashMap::new();
    if postmaster == 0 {
        return Ok(((user, sys), server));
    }
    for entry in std::fs::read_dir("/proc")? {
        let entry = entry?;
        let Some(pid) = entry.file_name().to_str().and_then(|s| s.parse::<u32>().ok()) else {
            continue;
        };
        // A process may end between listing and reading: skip it.
        let Ok(text) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // Only this cluster: another one may be running on the machine.
        if let Some((_, ppid, u, s)) = parse_stat(&text) {
            if pid == postmaster || ppid == postmaster {
                server.insert(pid, u + s);
            }
        }
    }
    Ok(((user, sys), server))
}

/// CPU ticks the postgres processes alive at the end spent since the start
/// (the whole of it for one that started in between).
fn srv_delta(before: &HashMap<u32, u64>, after: &HashMap<u32, u64>) -> u64 {
    after
        .iter()
        .map(|(pid, t)| t.saturating_sub(before.get(pid).copied().unwrap_or(0)))
        .sum()
}

fn clock_tick() -> Res<f64> {
    let out = Command::new("getconf").arg("CLK_TCK").output()?;
    Ok(String::from_utf8(out.stdout)?.trim().parse()?)
}
