//! Ledger upkeep off the request path: one background task, started with the gateway,
//! that deletes raw records older than `ledger.retention` and, on PostgreSQL, keeps the
//! monthly partitions of `requests` created ahead (see `postgres::partitions`). It runs at
//! start and then every [`INTERVAL`], and stops on shutdown (between two batches).
//!
//! Deleting never holds the writer up for long: SQLite deletes at most [`BATCH`] records
//! per transaction on a connection of its own and pauses between batches at least as long
//! as the batch took, so the writer's next batch gets the file in between; PostgreSQL drops
//! whole months (`DROP TABLE`, no scan) and deletes in batches only in the month the cutoff
//! falls in and in the default partition. Only `requests` is touched: rollups are kept.
//! It does not write records (the writer does) nor read them for anyone.

mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use super::{LedgerError, LedgerStore};

/// How often the task runs after its first run at start.
pub const INTERVAL: Duration = Duration::from_secs(600);
/// Most records one delete statement (one transaction) removes.
pub const BATCH: u64 = 5_000;
/// The shortest pause between two delete batches.
const MIN_PAUSE: Duration = Duration::from_millis(20);

/// Metrics the task updates (described by `telemetry::metrics`, which names them here
/// so that the ledger needs nothing from telemetry).
pub const DELETED_TOTAL: &str = "tollgate_ledger_retention_deleted_total";
pub const PARTITIONS_DROPPED_TOTAL: &str = "tollgate_ledger_retention_partitions_dropped_total";
pub const FAILURES_TOTAL: &str = "tollgate_ledger_retention_failures_total";
pub const LAST_SUCCESS: &str = "tollgate_ledger_retention_last_success_timestamp_seconds";

/// The wall clock the cutoff is computed from (the gateway's, so tests can pin it).
pub type Now = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// What the task has done since start, published after every batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Runs finished (successfully or not).
    pub sweeps: u64,
    /// Records deleted row by row (dropped partitions not counted).
    pub deleted: u64,
    /// Delete batches committed.
    pub batches: u64,
    /// PostgreSQL partitions dropped whole.
    pub dropped_partitions: u64,
}

/// What one run is asked to do.
#[derive(Debug, Clone, Copy)]
struct Plan {
    /// Delete records created before this (Unix ms); `None` = keep everything.
    cutoff_ms: Option<i64>,
    now: DateTime<Utc>,
}

/// The running task; [`Retention::stop`] ends it.
pub struct Retention {
    stop: watch::Sender<bool>,
    progress: watch::Receiver<Progress>,
    task: JoinHandle<()>,
}

impl Retention {
    /// Start the task when there is work for it: a retention to enforce, or PostgreSQL
    /// partitions to keep ahead. `None` for a SQLite ledger kept forever.
    pub fn start(store: LedgerStore, keep: Option<Duration>, now: Now) -> Option<Self> {
        if keep.is_none() && matches!(store, LedgerStore::Sqlite(_)) {
            return None;
        }
        let (stop, stop_rx) = watch::channel(false);
        let (progress_tx, progress) = watch::channel(Progress::default());
        let worker = Worker {
            store,
            keep,
            now,
            stop: stop_rx,
            progress: progress_tx,
        };
        let task = tokio::spawn(worker.run());
        Some(Self {
            stop,
            progress,
            task,
        })
    }

    /// What the task has done so far.
    pub fn progress(&self) -> Progress {
        *self.progress.borrow()
    }

    /// Wait until the task has published progress that satisfies `done` (e.g. a finished
    /// run: `|p| p.sweeps >= 1`). Returns the progress, or the last one if the task ended.
    pub async fn wait_for(&self, done: impl Fn(&Progress) -> bool) -> Progress {
        let mut rx = self.progress.clone();
        let found = rx.wait_for(|p| done(p)).await.map(|p| *p);
        found.unwrap_or_else(|_| *rx.borrow())
    }

    /// Ask the task to stop (it finishes its current batch) and wait for it.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.task.await {
            tracing::error!(error = %e, "ledger retention task failed");
        }
    }
}

struct Worker {
    store: LedgerStore,
    keep: Option<Duration>,
    now: Now,
    stop: watch::Receiver<bool>,
    progress: watch::Sender<Progress>,
}

/// Why a run ended before its work was done.
enum Halt {
    /// Shutdown began.
    Stopped,
    /// A statement failed; the next run tries again.
    Failed(LedgerError),
}

impl From<LedgerError> for Halt {
    fn from(e: LedgerError) -> Self {
        Self::Failed(e)
    }
}

impl From<tokio::task::JoinError> for Halt {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Failed(e.into())
    }
}

impl Worker {
    async fn run(mut self) {
        loop {
            let now = (self.now)();
            let plan = Plan {
                cutoff_ms: self.keep.and_then(|keep| cutoff_ms(now, keep)),
                now,
            };
            let before = *self.progress.borrow();
            let result = self.sweep(plan).await;
            let after = *self.progress.borrow();
            metrics::counter!(DELETED_TOTAL).increment(after.deleted - before.deleted);
            metrics::counter!(PARTITIONS_DROPPED_TOTAL)
                .increment(after.dropped_partitions - before.dropped_partitions);
            if after != before {
                tracing::info!(
                    deleted = after.deleted - before.deleted,
                    dropped_partitions = after.dropped_partitions - before.dropped_partitions,
                    "ledger retention: old records removed"
                );
            }
            match result {
                Ok(()) => {
                    metrics::gauge!(LAST_SUCCESS).set(now.timestamp() as f64);
                }
                Err(Halt::Stopped) => return,
                Err(Halt::Failed(e)) => {
                    metrics::counter!(FAILURES_TOTAL).increment(1);
                    tracing::warn!(error = %e, "ledger retention run failed; retried at the next run");
                }
            }
            self.progress.send_modify(|p| p.sweeps += 1);
            tokio::select! {
                () = tokio::time::sleep(INTERVAL) => {}
                _ = self.stop.changed() => return,
            }
        }
    }

    async fn sweep(&mut self, plan: Plan) -> Result<(), Halt> {
        match self.store.clone() {
            LedgerStore::Sqlite(path) => match plan.cutoff_ms {
                Some(cutoff) => self.sweep_sqlite(&path, cutoff).await,
                None => Ok(()),
            },
            LedgerStore::Postgres(pg) => self.sweep_postgres(&pg, plan).await,
        }
    }

    async fn sweep_sqlite(&mut self, path: &std::path::Path, cutoff_ms: i64) -> Result<(), Halt> {
        let path = path.to_path_buf();
        let mut conn = tokio::task::spawn_blocking(move || sqlite::open(&path)).await??;
        loop {
            let started = tokio::time::Instant::now();
            let (back, deleted) = tokio::task::spawn_blocking(move || {
                let n = sqlite::delete_batch(&conn, cutoff_ms, BATCH);
                (conn, n)
            })
            .await?;
            conn = back;
            if !self.counted(deleted?) {
                return Ok(());
            }
            self.pause(started.elapsed()).await?;
        }
    }

    async fn sweep_postgres(
        &mut self,
        pg: &super::postgres::PostgresLedger,
        plan: Plan,
    ) -> Result<(), Halt> {
        pg.ensure_partitions_ahead(plan.now).await?;
        let Some(cutoff) = plan.cutoff_ms else {
            return Ok(());
        };
        let plan = pg.retention_plan(cutoff).await?;
        for table in &plan.drop {
            if *self.stop.borrow() {
                return Err(Halt::Stopped);
            }
            pg.drop_partition(table).await?;
            self.progress.send_modify(|p| p.dropped_partitions += 1);
        }
        for table in &plan.trim {
            loop {
                let started = tokio::time::Instant::now();
                if !self.counted(pg.delete_batch(table, cutoff, BATCH).await?) {
                    break;
                }
                self.pause(started.elapsed()).await?;
            }
        }
        Ok(())
    }

    /// Publish one batch's deletions; `true` when the batch was full (more may remain).
    fn counted(&self, deleted: u64) -> bool {
        if deleted > 0 {
            self.progress.send_modify(|p| {
                p.deleted += deleted;
                p.batches += 1;
            });
        }
        deleted >= BATCH
    }

    /// Give the writer the file (or the database) for at least as long as the last batch
    /// held it.
    async fn pause(&mut self, batch_took: Duration) -> Result<(), Halt> {
        if *self.stop.borrow() {
            return Err(Halt::Stopped);
        }
        tokio::select! {
            () = tokio::time::sleep(batch_took.max(MIN_PAUSE)) => Ok(()),
            _ = self.stop.changed() => Err(Halt::Stopped),
        }
    }
}

/// `now - keep` in Unix ms; `None` if it is before the epoch's range (nothing to delete).
fn cutoff_ms(now: DateTime<Utc>, keep: Duration) -> Option<i64> {
    let keep = chrono::Duration::from_std(keep).ok()?;
    now.checked_sub_signed(keep).map(|t| t.timestamp_millis())
}

#[cfg(test)]
mod tests;
