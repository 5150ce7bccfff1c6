//! The embedded store's SQLite threads: one writer and a few readers, each
//! owning its connection, so that a store method is one hand-off between a
//! tokio task and a thread, not one per statement.
//!
//! **Writes** are closures run on the writer thread. It takes every
//! closure that queued while the last group was committing, runs each in a
//! savepoint of one transaction (a failing one is rolled back alone), and
//! answers them all after one COMMIT, that is one fsync: the group commit.
//! No writer is told its work is durable before the COMMIT has returned.
//! A caller that stops waiting (cancelled) does not stop its closure: the
//! work is done or not as a whole, like a write whose answer was lost.
//!
//! Body files renamed into place by a group's writers have their folders
//! fsync'd once per group, right before its COMMIT ([`Tx::sync_dir`]), not
//! once per writer on the writer thread's critical path.
//!
//! **Reads** are closures run on a reader thread, each on a connection
//! outside any transaction (a statement is its own snapshot; a closure that
//! needs several statements to agree opens its own read transaction).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Deref;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use tokio::sync::oneshot;

use crate::{Error, Result};

/// Writers in one group at most: beyond this one commits, so that a steady
/// stream of writers still sees its data made durable.
const MAX_GROUP: usize = 64;
/// Reader threads (and connections).
const READERS: usize = 4;
/// Statements each connection keeps prepared.
const STATEMENT_CACHE: usize = 128;
/// How much of the index file SQLite maps into memory for reading.
const MMAP_SIZE: u64 = 1 << 30;
/// Pages each connection keeps decoded (KiB; SQLite's default is 2 MiB).
const CACHE_KIB: u64 = 16 * 1024;
/// How long a writer waits for another process's write transaction.
const BUSY_TIMEOUT: Duration = Duration::from_secs(60);

/// The store's threads. Clones share them; the threads end (and close
/// their connections) once the last clone is gone.
#[derive(Clone)]
pub struct Engine {
    writes: mpsc::Sender<WriteJob>,
    reads: mpsc::Sender<ReadJob>,
}

impl Engine {
    /// Opens the index at `path` (creating it), runs `setup` on the writer's
    /// connection before anything else (the migrations), and starts the
    /// threads.
    pub async fn open(
        path: &Path,
        setup: impl FnOnce(&Connection) -> Result<()> + Send + 'static,
    ) -> Result<Engine> {
        let path = path.to_path_buf();
        let (writer, readers) = tokio::task::spawn_blocking(move || -> Result<_> {
            let writer = connect(&path, false)?;
            setup(&writer)?;
            let readers = (0..READERS)
                .map(|_| connect(&path, true))
                .collect::<Result<Vec<_>>>()?;
            Ok((writer, readers))
        })
        .await
        .map_err(|e| Error::Corrupt(format!("opening the index failed: {e}")))??;

        let (writes, write_queue) = mpsc::channel::<WriteJob>();
        spawn("satchel-writer", move || run_writer(writer, write_queue))?;
        let (reads, read_queue) = mpsc::channel::<ReadJob>();
        let read_queue = Arc::new(Mutex::new(read_queue));
        for (i, conn) in readers.into_iter().enumerate() {
            let queue = read_queue.clone();
            spawn(&format!("satchel-reader-{i}"), move || {
                run_reader(conn, queue)
            })?;
        }
        Ok(Engine { writes, reads })
    }

    /// Runs `work` in this process's next write group; answers once the
    /// group is durable (or with `work`'s own error, its changes undone).
    pub async fn write<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
    {
        self.submit(false, work).await
    }

    /// Runs `work` in a transaction of its own, after the groups before it
    /// have committed: for work that must see only committed rows, such as
    /// unlinking the body files nothing refers to any more.
    pub async fn write_alone<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
    {
        self.submit(true, work).await
    }

    /// Runs `work` on a reader's connection.
    pub async fn read<T, F>(&self, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(work(conn));
        });
        self.reads.send(job).map_err(|_| gone())?;
        rx.await.map_err(|_| failed())?
    }

    async fn submit<T, F>(&self, alone: bool, work: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Tx) -> Result<T> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let run: Run = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => work(conn),
                Err(why) => Err(Error::Commit(why.to_string())),
            };
            Ran {
                ok: result.is_ok(),
                answer: Box::new(move |commit: Option<String>| {
                    let answer = match (commit, result) {
                        (Some(why), Ok(_)) => Err(Error::Commit(why)),
                        (_, result) => result,
                    };
                    let _ = tx.send(answer);
                }),
            }
        });
        self.writes
            .send(WriteJob { alone, run })
            .map_err(|_| gone())?;
        rx.await.map_err(|_| failed())?
    }
}

/// A write group's transaction, as its writers see it: the connection, and
/// the folders to make durable before the COMMIT.
pub struct Tx<'c> {
    conn: &'c Connection,
    dirs: RefCell<Vec<PathBuf>>,
}

impl Tx<'_> {
    /// Makes `dir` durable (fsync'd) before this group commits, after every
    /// writer of the group has run: for body files renamed into it, whose
    /// names must be on the disk before any row that names them.
    pub fn sync_dir(&self, dir: PathBuf) {
        let mut dirs = self.dirs.borrow_mut();
        if !dirs.contains(&dir) {
            dirs.push(dir);
        }
    }
}

impl Deref for Tx<'_> {
    type Target = Connection;

    fn deref(&self) -> &Connection {
        self.conn
    }
}

/// Opens one connection with the store's settings.
fn connect(path: &PathBuf, read_only: bool) -> Result<Connection> {
    let flags = if read_only {
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX
    } else {
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX
    };
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
    if !read_only {
        let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::Corrupt(format!(
                "the index could not switch to WAL mode (it is in {mode} mode)"
            )));
        }
    }
    // FULL: a commit is on the disk (the WAL fsync'd) before it returns.
    // Reads (the spam model above all: hundreds of token lookups a message)
    // come from the page cache without a copy per page.
    conn.execute_batch(&format!(
        "PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
         PRAGMA mmap_size = {MMAP_SIZE}; PRAGMA cache_size = -{CACHE_KIB};"
    ))?;
    Ok(conn)
}

fn spawn(name: &str, body: impl FnOnce() + Send + 'static) -> Result<()> {
    std::thread::Builder::new()
        .name(name.to_string())
        .spawn(body)
        .map(|_| ())
        .map_err(|source| Error::Io {
            path: PathBuf::from(name),
            source,
        })
}

fn gone() -> Error {
    Error::Corrupt("the index's threads have stopped; restart satchel".into())
}

fn failed() -> Error {
    Error::Corrupt("the index's thread failed while running this change; nothing was answered for it, check the log and retry".into())
}

type ReadJob = Box<dyn FnOnce(&Connection) + Send>;

struct WriteJob {
    alone: bool,
    run: Run,
}

/// A write closure: given the connection inside the group's transaction,
/// or why the group could not begin (then it changes nothing and answers
/// with that).
type Run = Box<dyn for<'c, 't> FnOnce(std::result::Result<&'t Tx<'c>, &str>) -> Ran + Send>;

/// A write closure that has run: whether its work stays, and its answer,
/// given the group's commit failure if there was one.
struct Ran {
    ok: bool,
    answer: Box<dyn FnOnce(Option<String>) + Send>,
}

fn run_reader(conn: Connection, queue: Arc<Mutex<mpsc::Receiver<ReadJob>>>) {
    loop {
        let job = {
            let queue = queue.lock().unwrap_or_else(|p| p.into_inner());
            queue.recv()
        };
        let Ok(job) = job else { return };
        // A panicking closure drops its answer (its caller sees an error);
        // the thread and its connection go on.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&conn)));
    }
}

fn run_writer(conn: Connection, queue: mpsc::Receiver<WriteJob>) {
    let mut next: Option<WriteJob> = None;
    loop {
        let first = match next.take() {
            Some(job) => job,
            None => match queue.recv() {
                Ok(job) => job,
                Err(_) => return,
            },
        };
        let mut batch = VecDeque::from([first]);
        // Everything that queued meanwhile goes in this group, up to an
        // alone job, which waits for the group to commit.
        if !batch[0].alone {
            while batch.len() < MAX_GROUP {
                match queue.try_recv() {
                    Ok(job) if job.alone => {
                        next = Some(job);
                        break;
                    }
                    Ok(job) => batch.push_back(job),
                    Err(_) => break,
                }
            }
        }
        while !batch.is_empty() {
            run_group(&conn, &mut batch);
        }
    }
}

/// Runs jobs from the front of `batch` in one transaction and answers
/// them. Stops early when a job's failure ended the whole transaction
/// (SQLite rolls back on some errors, such as a full disk): those already
/// run are answered with the failure, the rest go in the next group.
fn run_group(conn: &Connection, batch: &mut VecDeque<WriteJob>) {
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        let why = format!("the index is locked or unwritable: {e}");
        tracing::warn!("{why}");
        for job in batch.drain(..) {
            ((job.run)(Err(&why)).answer)(None);
        }
        return;
    }
    let tx = Tx {
        conn,
        dirs: RefCell::new(Vec::new()),
    };
    let mut answers = Vec::with_capacity(batch.len());
    let mut broken = None;
    while let Some(job) = batch.pop_front() {
        if let Err(e) = conn.execute_batch("SAVEPOINT w") {
            broken = Some(format!("could not start a savepoint: {e}"));
            batch.push_front(job);
            break;
        }
        let ran = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (job.run)(Ok(&tx))));
        let ok = matches!(&ran, Ok(r) if r.ok);
        if let Ok(ran) = ran {
            answers.push(ran.answer);
        }
        if conn.is_autocommit() {
            broken = Some("the transaction was rolled back by the database".into());
            break;
        }
        let end = if ok {
            "RELEASE w"
        } else {
            "ROLLBACK TO w; RELEASE w"
        };
        if let Err(e) = conn.execute_batch(end) {
            broken = Some(format!("could not end a savepoint: {e}"));
            break;
        }
    }
    let outcome = match broken {
        Some(why) => Some(why),
        None => sync_dirs(&tx.dirs.borrow())
            .err()
            .or_else(|| conn.execute_batch("COMMIT").err().map(|e| e.to_string())),
    };
    if outcome.is_some() && !conn.is_autocommit() {
        let _ = conn.execute_batch("ROLLBACK");
    }
    if let Some(why) = &outcome {
        tracing::warn!(
            "a write group failed, {} writers told: {why}",
            answers.len()
        );
    }
    for answer in answers {
        answer(outcome.clone());
    }
}

/// fsyncs each folder; the first failure, in words.
fn sync_dirs(dirs: &[PathBuf]) -> std::result::Result<(), String> {
    for dir in dirs {
        std::fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    Ok(())
}

/// Every row `sql` gives, each through `row`.
pub fn all<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Vec<T>> {
    let mut statement = conn.prepare_cached(sql)?;
    let rows = statement
        .query_map(params, row)?
        .collect::<rusqlite::Result<Vec<T>>>()?;
    Ok(rows)
}

/// The first row `sql` gives, if any, through `row`.
pub fn one<T>(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
    row: impl FnOnce(&rusqlite::Row<'_>) -> rusqlite::Result<T>,
) -> Result<Option<T>> {
    use rusqlite::OptionalExtension;
    let mut statement = conn.prepare_cached(sql)?;
    Ok(statement.query_row(params, row).optional()?)
}

/// Runs a statement that returns no rows; how many rows it changed.
pub fn exec(conn: &Connection, sql: &str, params: impl rusqlite::Params) -> Result<usize> {
    let mut statement = conn.prepare_cached(sql)?;
    Ok(statement.execute(params)?)
}
