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

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use sqlx::{Acquire, Sqlite, SqlitePool, Transaction};
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
pub struct State {
    open: Option<Group>,
}

struct Group {
    id: u64,
    tx: Transaction<'static, Sqlite>,
    /// Writers whose work is in the group, waiting for it to be durable.
    members: usize,
    /// How the group's COMMIT went, once it has run.
    outcome: Arc<OnceLock<std::result::Result<(), String>>>,
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
        let mut guard = {
            let _queued = Queued::new(&self.queued);
            self.state.clone().lock_owned().await
        };
        if guard.open.is_none() {
            let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
            guard.open = Some(Group {
                id: self.groups.fetch_add(1, Ordering::Relaxed),
                tx,
                members: 0,
                outcome: Arc::new(OnceLock::new()),
            });
        }
        Ok(Turn {
            guard: Some(guard),
            writers: self.clone(),
        })
    }

    /// Commits the group `id` if it is still open (a writer that handed it
    /// on, checking it was not left behind).
    async fn flush(&self, id: u64) {
        let mut guard = self.state.clone().lock_owned().await;
        if guard.open.as_ref().is_some_and(|g| g.id == id) {
            commit(&mut guard).await;
        }
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
    /// dropping it undoes only this writer's work.
    pub async fn begin(&mut self) -> Result<Transaction<'_, Sqlite>> {
        let group = self
            .guard
            .as_mut()
            .and_then(|g| g.open.as_mut())
            .ok_or_else(|| Error::Corrupt("write turn without a transaction".into()))?;
        Ok((&mut group.tx).begin().await?)
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
        if self.writers.queued.load(Ordering::SeqCst) == 0 || group.members >= MAX_GROUP {
            commit(&mut guard).await;
        } else {
            drop(guard);
            let check = FlushOnDrop(Some((self.writers.clone(), id)));
            self.writers.flush(id).await;
            check.disarm();
        }
        match outcome.get() {
            Some(Ok(())) => Ok(()),
            Some(Err(e)) => Err(Error::Commit(e.clone())),
            None => Err(Error::Corrupt("a write group ended uncommitted".into())),
        }
    }
}

impl Drop for Turn {
    /// A writer that ends without [`Turn::durable`] (an error, or its task
    /// cancelled) has had its savepoint rolled back. A group with no
    /// members is rolled back, so SQLite's lock is not held for nothing;
    /// one with members is committed by them.
    fn drop(&mut self) {
        if let Some(guard) = self.guard.as_mut()
            && guard.open.as_ref().is_some_and(|g| g.members == 0)
        {
            // Dropping an open sqlx transaction queues its ROLLBACK.
            guard.open = None;
        }
    }
}

/// Commits the open group and tells its members how it went.
async fn commit(guard: &mut OwnedMutexGuard<State>) {
    let Some(group) = guard.open.take() else {
        return;
    };
    let result = group.tx.commit().await.map_err(|e| e.to_string());
    if let Err(e) = &result {
        tracing::error!(
            "store: a group of {} writes failed to commit: {e}",
            group.members
        );
    }
    let _ = group.outcome.set(result);
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
            runtime.spawn(async move { writers.flush(id).await });
        }
    }
}
