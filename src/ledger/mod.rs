//! The ledger: every request becomes one `UsageRecord`, handed to a bounded queue by
//! the request path and written in batches by one background writer into a
//! `LedgerSink` (SQLite by default, see `sqlite`). This module owns the queue, the
//! writer task, its retry and shutdown rules, and the read-your-own-record barrier.
//! The sinks keep hourly and daily rollups (`rollup`) in the same transaction as the
//! records, and `LedgerStore` answers aggregate reads from them.
//! It does not build records (`metering::finalize` does), does not export metrics
//! (`telemetry` reads `queue_depth` and `dropped_total`), and the request path never
//! awaits it: `Ledger::record` only tries to enqueue.

mod audit;
mod deferred;
pub mod filter;
mod policy_json;
pub mod postgres;
mod record;
pub mod retention;
pub mod rollup;
pub mod sqlite;
mod store;
#[cfg(test)]
mod tests;
mod writer;

use std::fmt;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use audit::PriceAudit;
pub use deferred::Deferred;
pub use policy_json::{DeferredJson, PolicyJson};
pub use record::{Outcome, PricingStatus, UsageRecord, UsageSource};
pub use rollup::RebuildReport;
pub use store::LedgerStore;
use writer::{Counters, Message, Writer};

/// Why the ledger could not store or read records.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LedgerError {
    #[error("could not create the ledger directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: Arc<std::io::Error>,
    },
    #[error("could not open the ledger file {path}: {source}")]
    Open {
        path: PathBuf,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("the ledger file {path} has schema version {found}; this build knows versions up to {supported}")]
    SchemaTooNew {
        path: PathBuf,
        found: i64,
        supported: i64,
    },
    #[error("the ledger file {path} (schema version {found}) is not upgraded to version {needed} with its rollups complete: start the gateway once on it (or run `tollgate ledger rebuild-rollups`) to finish the upgrade")]
    NeedsUpgrade {
        path: PathBuf,
        found: i64,
        needed: i64,
    },
    #[error("ledger {op} failed: {source}")]
    Sqlite {
        op: &'static str,
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("PostgreSQL ledger: could not {op}: {message}")]
    Postgres { op: &'static str, message: String },
    #[error("the ledger column {column} holds an invalid value {value:?}")]
    InvalidValue { column: &'static str, value: String },
    #[error("the ledger writer is failing to write; records are kept and retried")]
    Unavailable,
    #[error("the ledger writer has stopped")]
    Closed,
    #[error("the ledger needs a running tokio runtime")]
    NoRuntime,
    #[error("a ledger task failed: {source}")]
    Task {
        #[source]
        source: Arc<tokio::task::JoinError>,
    },
    #[error("{records} ledger records could not be written before shutdown: {source}")]
    Lost {
        records: usize,
        #[source]
        source: Box<LedgerError>,
    },
}

impl From<tokio::task::JoinError> for LedgerError {
    fn from(e: tokio::task::JoinError) -> Self {
        Self::Task {
            source: Arc::new(e),
        }
    }
}

/// Where records are stored. Only the background writer calls `write_batch`; request
/// handlers only enqueue.
pub trait LedgerSink: Send + Sync + 'static {
    /// Store a batch atomically: all of it or none. A record whose `request_id` is
    /// already stored is ignored (the first record wins), never an error.
    fn write_batch(
        &self,
        batch: &[UsageRecord],
    ) -> impl Future<Output = Result<(), LedgerError>> + Send;

    /// The stored record of one request, if any.
    fn find(
        &self,
        request_id: &str,
    ) -> impl Future<Output = Result<Option<UsageRecord>, LedgerError>> + Send;
}

/// Queue and batching limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerOptions {
    /// Records the queue holds before `record` starts dropping (at least 1).
    pub queue_capacity: usize,
    /// Most records written in one transaction (at least 1).
    pub batch_size: usize,
    /// Longest a record waits for its batch to fill before it is written anyway.
    pub flush_interval: Duration,
}

impl Default for LedgerOptions {
    fn default() -> Self {
        Self {
            queue_capacity: 10_000,
            batch_size: 256,
            flush_interval: Duration::from_millis(200),
        }
    }
}

/// A cheap, cloneable handle for request handlers: enqueue records, read one back.
#[derive(Clone)]
pub struct Ledger {
    tx: mpsc::Sender<Message>,
    reader: Arc<dyn FindRecord>,
    counters: Arc<Counters>,
    /// Records held back by off-path work (see `defer`).
    held: deferred::SharedHeld,
}

/// Owns the background writer; `shutdown` drains it. Dropping it without `shutdown`
/// leaves the writer running until every `Ledger` handle is gone.
pub struct LedgerWriter {
    stop: oneshot::Sender<()>,
    task: JoinHandle<Result<(), LedgerError>>,
    held: deferred::SharedHeld,
}

type FindFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Option<UsageRecord>, LedgerError>> + Send + 'a>>;

/// `LedgerSink::find` behind a trait object, so `Ledger` is not generic over its sink.
trait FindRecord: Send + Sync {
    fn find_boxed<'a>(&'a self, request_id: &'a str) -> FindFuture<'a>;
}

impl<S: LedgerSink> FindRecord for S {
    fn find_boxed<'a>(&'a self, request_id: &'a str) -> FindFuture<'a> {
        Box::pin(self.find(request_id))
    }
}

impl Ledger {
    /// Open (creating it and its parent directories on first run) the SQLite ledger at
    /// `path`, migrate its schema, and start the writer task.
    pub async fn open_sqlite(
        path: &Path,
        opts: LedgerOptions,
    ) -> Result<(Ledger, LedgerWriter), LedgerError> {
        let path = path.to_path_buf();
        let sink = tokio::task::spawn_blocking(move || sqlite::SqliteSink::open(&path)).await??;
        Self::start(sink, opts)
    }

    /// Start the writer task over any sink. Must be called inside a tokio runtime.
    pub fn start<S: LedgerSink>(
        sink: S,
        opts: LedgerOptions,
    ) -> Result<(Ledger, LedgerWriter), LedgerError> {
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| LedgerError::NoRuntime)?;
        let sink = Arc::new(sink);
        let counters = Arc::new(Counters::default());
        let (tx, rx) = mpsc::channel(opts.queue_capacity.max(1));
        let (stop_tx, stop_rx) = oneshot::channel();
        let writer = Writer::new(Arc::clone(&sink), rx, stop_rx, &opts, Arc::clone(&counters));
        let task = runtime.spawn(writer.run());
        let held = deferred::SharedHeld::default();
        let ledger = Ledger {
            tx,
            reader: sink,
            counters,
            held: Arc::clone(&held),
        };
        Ok((
            ledger,
            LedgerWriter {
                stop: stop_tx,
                task,
                held,
            },
        ))
    }

    /// Enqueue a finished request's record without waiting. When the queue is full (or
    /// the writer has stopped) the record is dropped, counted in `dropped_total`, and
    /// logged at error level by request id.
    pub fn record(&self, record: UsageRecord) {
        // Counted before the send so the writer's decrement can never run first.
        self.counters.depth.fetch_add(1, Ordering::Relaxed);
        let Err(e) = self.tx.try_send(Message::Record(Box::new(record))) else {
            return;
        };
        self.counters.depth.fetch_sub(1, Ordering::Relaxed);
        self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        let (reason, message) = match e {
            mpsc::error::TrySendError::Full(m) => ("queue_full", m),
            mpsc::error::TrySendError::Closed(m) => ("writer_stopped", m),
        };
        if let Message::Record(r) = message {
            tracing::error!(request_id = %r.request_id, reason, "ledger record dropped");
        }
    }

    /// Hold `record` back while work off the request path completes it (the sampled token
    /// audit); it is enqueued when the returned handle is released or dropped, and `flush`
    /// waits for it.
    pub fn defer(&self, record: UsageRecord) -> Deferred {
        Deferred::new(self.clone(), record)
    }

    /// The record of one request. Everything enqueued before this call is written
    /// first, so a client asking right after its response sees its record.
    pub async fn find(&self, request_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        self.flush().await?;
        self.reader.find_boxed(request_id).await
    }

    /// Wait until everything enqueued before this call is durably written. Fails fast
    /// with `Unavailable` while the writer is in a failure streak.
    pub async fn flush(&self) -> Result<(), LedgerError> {
        if self.counters.failing.load(Ordering::Acquire) {
            return Err(LedgerError::Unavailable);
        }
        self.held.settled().await;
        let (done, written) = oneshot::channel();
        self.tx
            .send(Message::Flush(done))
            .await
            .map_err(|_| LedgerError::Closed)?;
        written.await.map_err(|_| LedgerError::Closed)?
    }

    /// Records accepted and not yet written.
    pub fn queue_depth(&self) -> usize {
        self.counters.depth.load(Ordering::Relaxed)
    }

    /// Records dropped since start because the queue was full or the writer stopped.
    pub fn dropped_total(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger")
            .field("queue_depth", &self.queue_depth())
            .field("dropped_total", &self.dropped_total())
            .finish_non_exhaustive()
    }
}

impl LedgerWriter {
    /// Close the queue, write everything still queued, and return once it is durable.
    /// Records enqueued after this starts are dropped and counted.
    pub async fn shutdown(self) -> Result<(), LedgerError> {
        // Held records first: they are asked to skip their audit and are enqueued at once.
        self.held.close().await;
        // An Err means the writer already exited because every handle was dropped.
        let _ = self.stop.send(());
        self.task.await?
    }
}
