//! Group commit for the embedded store's writers.
//!
//! A process's write transactions run one at a time (racing for SQLite's
//! lock means its busy handler's sleeps). Each writer works inside a
//! savepoint of a shared transaction, the *group*; when it is done and
//! others are already queued, it hands the open group to the next one
//! instead of committing, and one COMMIT (one fsync) later makes them all
//! durable together. A writer still answers only once its group is
//! durable: [`Turn::durable`] waits for that.
//!
//! Every writer that handed the group on also queues for the lock again,
//! behind the writers it handed over to, and commits the group itself if
//! it is still open then: so a group never waits for a writer that is
//! gone (cancelled, or failed without a commit).
//!
//! The group's BEGIN, SAVEPOINTs, RELEASEs and COMMIT are our own
//! statements on a connection the group holds (not sqlx's nested
//! transactions, whose depth count a cancelled BEGIN can put out of step
//! with SQLite's). Each writer's savepoint has its own name and is marked
//! before it is sent, so one whose writer vanished is rolled back by the
//! next holder of the lock before anything else runs, and a stale rollback
//! can never reach another writer's work. A COMMIT that finds no
//! transaction, or a savepoint rollback that fails, fails the whole group
//! and closes its connection: no writer is ever told its work is durable
//! when it is not (the price: a writer cancelled just as its RELEASE ran
//! fails its group, since the rollback then finds no savepoint).

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::pool::PoolConnection;
use sqlx::{AssertSqlSafe, Sqlite, SqliteConnection, SqlitePool};
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{Error, Result};

/// Writers in one group at most: beyond this one commits, so that a
/// steady stream of writers still sees its data made durable.
const MAX_GROUP: usize = 64;

/// The process's writers: a queue, and the group transaction they share.
#[derive(Clone)]
pub struct Writers {
    pool: SqlitePool,
    state: Arc<Mutex<State>>,
    /// Writers waiting for their first turn (not those that queued again
    /// to see their group committed): while there are any, a writer that
    /// finishes leaves the group open for them.
    queued: Arc<AtomicUsize>,
    groups: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    open: Option<Group>,
}

struct Group {
    id: u64,
    conn: PoolConnection<Sqlite>,
    /// BEGIN IMMEDIATE has answered: the connection is in the transaction.
    begun: bool,
    /// The savepoint of the writer in the group now, from before its
    /// SAVEPOINT is sent until its RELEASE answers: while set, it may hold
    /// work to undo (its writer is working, or was dropped without a
    /// commit). Every writer's has its own name, so a stale ROLLBACK TO
    /// can never reach another writer's work.
    savepoint: Option<String>,
    savepoints: u64,
    /// Ended cleanly (committed or rolled back, answered): the connection
    /// may go back to the pool. Otherwise dropping the group closes it.
    clean: bool,
    /// Commits at the first writer's `durable`, never handed on (the blob
    /// collector, which must act on committed rows only).
    alone: bool,
    /// Writers whose work is in the group, waiting for it to be durable.
    members: usize,
    /// How the group's COMMIT went, once it has run.
    outcome: Arc<OnceLock<std::result::Result<(), String>>>,
}

impl Drop for Group {
    /// A group not ended cleanly may still be inside a transaction: its
    /// connection is closed rather than handed to the next user of the pool.
    fn drop(&mut self) {
        if !self.clean {
            self.conn.close_on_drop();
        }
    }
}

impl Writers {
    pub fn new(pool: SqlitePool) -> Writers {
        Writers {
            pool,
            state: Arc::new(Mutex::new(State::default())),
            queued: Arc::new(AtomicUsize::new(0)),
            groups: Arc::new(AtomicU64::new(0)),
        }
    }

    /// This writer's turn: the lock, and a group transaction open.
    pub async fn turn(&self) -> Result<Turn> {
        let guard = {
            let _queued = Queued::new(&self.queued);
            self.state.clone().lock_owned().await
        };
        self.ready(guard, false).await
    }

    /// A turn in a transaction of its own: any open group is committed
    /// first, and this one commits at `durable` (for work that must see
    /// only committed rows, such as unlinking unreferenced blob files).
    pub async fn turn_alone(&self) -> Result<Turn> {
        let mut guard = {
            let _queued = Queued::new(&self.queued);
            self.state.clone().lock_owned().await
        };
        if guard.open.as_ref().is_some_and(|g| g.members > 0) {
            guard = commit_in_task(guard).await?;
        }
        self.ready(guard, true).await
    }

    /// A turn holding `guard`, its group made usable. Runs inside the Turn,
    /// so that a cancellation at any point leaves a memberless group to
    /// `Turn::drop`, which rolls it back.
    async fn ready(&self, guard: OwnedMutexGuard<State>, alone: bool) -> Result<Turn> {
        let mut turn = Turn {
            guard: Some(guard),
            writers: self.clone(),
        };
        let guard = turn
            .guard
            .as_mut()
            .ok_or_else(|| Error::Corrupt("write turn without its lock".into()))?;
        // A savepoint left behind is rolled back first.
        if let Some(g) = guard.open.as_mut()
            && let Some(name) = g.savepoint.clone()
        {
            match rollback_savepoint(&mut g.conn, &name).await {
                Ok(()) => g.savepoint = None,
                Err(e) => fail(guard, &e),
            }
        }
        // A group whose BEGIN never answered, holding no one's work, starts
        // over; its connection is closed, which ends whatever it began.
        if guard
            .open
            .as_ref()
            .is_some_and(|g| !g.begun && g.members == 0)
        {
            guard.open = None;
        }
        if guard.open.is_none() {
            let conn = self.pool.acquire().await?;
            let g = guard.open.insert(Group {
                id: self.groups.fetch_add(1, Ordering::Relaxed),
                conn,
                begun: false,
                savepoint: None,
                savepoints: 0,
                clean: false,
                alone,
                members: 0,
                outcome: Arc::new(OnceLock::new()),
            });
            sqlx::query("BEGIN IMMEDIATE").execute(&mut *g.conn).await?;
            g.begun = true;
        }
        if alone && let Some(g) = guard.open.as_mut() {
            g.alone = true;
        }
        Ok(turn)
    }

    /// Commits the group `id` if it is still open (a writer that handed it
    /// on, checking it was not left behind).
    async fn flush(&self, id: u64) -> Result<()> {
        let guard = self.state.clone().lock_owned().await;
        if guard.open.as_ref().is_some_and(|g| g.id == id) {
            commit_in_task(guard).await?;
        }
        Ok(())
    }
}

/// One writer's turn. Work goes in [`Turn::begin`]'s savepoint; after its
/// commit, [`Turn::durable`] waits until the group is on disk.
pub struct Turn {
    guard: Option<OwnedMutexGuard<State>>,
    writers: Writers,
}

impl Turn {
    /// A savepoint in the group: committing it keeps this writer's work,
    /// dropping it undoes only this writer's work (rolled back by the next
    /// holder of the lock, before anything else).
    pub async fn begin(&mut self) -> Result<WriteTx<'_>> {
        let group = self
            .guard
            .as_mut()
            .and_then(|g| g.open.as_mut())
            .ok_or_else(|| Error::Corrupt("write turn without a transaction".into()))?;
        group.savepoints += 1;
        let name = format!("w{}", group.savepoints);
        // Set before it is sent: a SAVEPOINT whose answer never comes (its
        // writer cancelled) still runs, and must be undone. One that fails
        // stays set too, so the next holder's ROLLBACK TO fails and with it
        // the group: SQLite may have lost the whole transaction.
        group.savepoint = Some(name.clone());
        sqlx::query(AssertSqlSafe(format!("SAVEPOINT {name}")))
            .execute(&mut *group.conn)
            .await?;
        Ok(WriteTx { group, name })
    }

    /// Waits until this writer's committed work is durable: commits the
    /// group now, or hands it to the writers queued behind and waits for
    /// one of them (or itself, queued again) to commit it.
    pub async fn durable(mut self) -> Result<()> {
        let Some(mut guard) = self.guard.take() else {
            return Err(Error::Corrupt("write turn used twice".into()));
        };
        let Some(group) = guard.open.as_mut() else {
            return Err(Error::Corrupt("write turn without a transaction".into()));
        };
        group.members += 1;
        let (id, outcome) = (group.id, group.outcome.clone());
        let hand_on = !group.alone
            && group.members < MAX_GROUP
            && self.writers.queued.load(Ordering::SeqCst) > 0;
        if hand_on {
            drop(guard);
            let check = FlushOnDrop(Some((self.writers.clone(), id)));
            let flushed = self.writers.flush(id).await;
            check.disarm();
            flushed?;
        } else {
            commit_in_task(guard).await?;
        }
        match outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Commit(e.clone())),
            None => Err(Error::Commit(
                "the write group ended without a commit".into(),
            )),
        }
    }
}

impl Drop for Turn {
    /// A writer that ends without [`Turn::durable`] (an error, or its task
    /// cancelled) leaves its savepoint for the next holder to roll back. A
    /// group with no members is rolled back at once, by a task that holds
    /// the lock meanwhile, so SQLite's lock is not held for nothing; one
    /// with members is committed by them.
    fn drop(&mut self) {
        let memberless =
            |s: &OwnedMutexGuard<State>| s.open.as_ref().is_some_and(|g| g.members == 0);
        if !self.guard.as_ref().is_some_and(memberless) {
            return;
        }
        // Without a runtime (never, in practice) the group stays for the
        // next writer, who reuses it as it is.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let Some(mut guard) = self.guard.take() else {
            return;
        };
        runtime.spawn(async move {
            if let Some(mut g) = guard.open.take() {
                g.clean = sqlx::query("ROLLBACK").execute(&mut *g.conn).await.is_ok();
            }
        });
    }
}

/// One writer's savepoint: the connection to run its statements on.
pub struct WriteTx<'a> {
    group: &'a mut Group,
    name: String,
}

impl WriteTx<'_> {
    /// Keeps this writer's work in the group (durable at the group's
    /// commit, which [`Turn::durable`] waits for).
    pub async fn commit(self) -> Result<()> {
        sqlx::query(AssertSqlSafe(format!("RELEASE {}", self.name)))
            .execute(&mut *self.group.conn)
            .await?;
        self.group.savepoint = None;
        Ok(())
    }
}

impl Deref for WriteTx<'_> {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.group.conn
    }
}

impl DerefMut for WriteTx<'_> {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.group.conn
    }
}

/// Commits the open group in a task of its own, so that the COMMIT and
/// the news of how it went reach the members even if the writer that
/// started it is cancelled; gives the lock back.
async fn commit_in_task(mut guard: OwnedMutexGuard<State>) -> Result<OwnedMutexGuard<State>> {
    let task = tokio::spawn(async move {
        commit(&mut guard).await;
        guard
    });
    task.await
        .map_err(|e| Error::Commit(format!("the commit task failed: {e}")))
}

/// Commits the open group and tells its members how it went. A group in a
/// state it cannot vouch for fails as a whole.
async fn commit(guard: &mut OwnedMutexGuard<State>) {
    let Some(g) = guard.open.as_mut() else {
        return;
    };
    let mut result = Ok(());
    if let Some(name) = g.savepoint.take() {
        result = rollback_savepoint(&mut g.conn, &name).await;
    }
    if result.is_ok() {
        // COMMIT outside a transaction is an error: a group that SQLite
        // already rolled back as a whole is never reported durable.
        result = sqlx::query("COMMIT")
            .execute(&mut *g.conn)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string());
    }
    match result {
        Ok(()) => {
            if let Some(mut g) = guard.open.take() {
                g.clean = true;
                let _ = g.outcome.set(Ok(()));
            }
        }
        Err(e) => fail(guard, &e),
    }
}

/// Ends the open group as failed: its members are told, what it holds is
/// rolled back, and its connection is closed rather than reused.
fn fail(guard: &mut OwnedMutexGuard<State>, why: &str) {
    if let Some(g) = guard.open.take() {
        tracing::error!("store: a group of {} writes failed: {why}", g.members);
        let _ = g.outcome.set(Err(why.to_string()));
        // Dropped unclean: its connection is closed, not reused.
    }
}

async fn rollback_savepoint(
    conn: &mut SqliteConnection,
    name: &str,
) -> std::result::Result<(), String> {
    sqlx::query(AssertSqlSafe(format!("ROLLBACK TO {name}; RELEASE {name}")))
        .execute(conn)
        .await
        .map(|_| ())
        .map_err(|e| format!("a failed writer's work could not be undone: {e}"))
}

/// Counts a writer as queued while it waits for its first turn.
struct Queued<'a>(&'a AtomicUsize);

impl<'a> Queued<'a> {
    fn new(count: &'a AtomicUsize) -> Queued<'a> {
        count.fetch_add(1, Ordering::SeqCst);
        Queued(count)
    }
}

impl Drop for Queued<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// If a writer that handed its group on is cancelled before seeing it
/// committed, a task of its own does the check in its place.
struct FlushOnDrop(Option<(Writers, u64)>);

impl FlushOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        if let Some((writers, id)) = self.0.take()
            && let Ok(runtime) = tokio::runtime::Handle::try_current()
        {
            runtime.spawn(async move {
                let _ = writers.flush(id).await;
            });
        }
    }
}
