//! The ledger's background writer: one tokio task that drains the queue into batches
//! (up to `batch_size` records, or whatever arrived within `flush_interval`, cut short
//! by a flush barrier), hands each batch to the sink, and retries a failed batch with
//! backoff rather than lose it. It owns batching, retry and the shutdown drain; it
//! does not touch storage itself (the sink does) and is never called from requests.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use backon::BackoffBuilder as _;
use tokio::sync::{mpsc, oneshot};
use tokio::time::{Instant, Sleep};

use super::{LedgerError, LedgerOptions, LedgerSink, UsageRecord};

/// First pause after a failed batch write; doubled per failure up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(50);
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Once shutdown has begun a failing batch gets this many attempts, so a dead disk
/// cannot hang the process forever; before that, batches are retried without limit.
const SHUTDOWN_ATTEMPTS: u32 = 5;

pub(super) enum Message {
    // Boxed so the queue's slots stay small for flush barriers.
    Record(Box<UsageRecord>),
    Flush(oneshot::Sender<Result<(), LedgerError>>),
}

#[derive(Default)]
pub(super) struct Counters {
    /// Records accepted and not yet written (queued or in the batch being written).
    pub(super) depth: AtomicUsize,
    pub(super) dropped: AtomicU64,
    /// Set during a failure streak so barriers fail fast instead of hanging.
    pub(super) failing: AtomicBool,
}

pub(super) struct Writer<S> {
    sink: Arc<S>,
    rx: mpsc::Receiver<Message>,
    /// `None` once shutdown was asked for or the `LedgerWriter` was dropped.
    stop: Option<oneshot::Receiver<()>>,
    closing: bool,
    batch_size: usize,
    flush_interval: Duration,
    counters: Arc<Counters>,
}

type Waiter = oneshot::Sender<Result<(), LedgerError>>;

enum Next {
    Message(Message),
    /// The flush interval passed.
    Due,
    /// The queue is closed and empty.
    Drained,
}

impl<S: LedgerSink> Writer<S> {
    pub(super) fn new(
        sink: Arc<S>,
        rx: mpsc::Receiver<Message>,
        stop: oneshot::Receiver<()>,
        opts: &LedgerOptions,
        counters: Arc<Counters>,
    ) -> Self {
        Self {
            sink,
            rx,
            stop: Some(stop),
            closing: false,
            batch_size: opts.batch_size.max(1),
            flush_interval: opts.flush_interval,
            counters,
        }
    }

    pub(super) async fn run(mut self) -> Result<(), LedgerError> {
        let mut batch = Vec::with_capacity(self.batch_size);
        let mut waiters = Vec::new();
        let mut lost: Option<(usize, LedgerError)> = None;
        loop {
            match self.next(None).await {
                Next::Message(m) => take(m, &mut batch, &mut waiters),
                Next::Due => continue,
                Next::Drained => break,
            }
            // A barrier cuts the batch short: its caller is waiting. One timer per
            // batch, not one per record; records already queued are taken without
            // waiting at all.
            let due = tokio::time::sleep_until(Instant::now() + self.flush_interval);
            tokio::pin!(due);
            while waiters.is_empty() && batch.len() < self.batch_size {
                if let Ok(m) = self.rx.try_recv() {
                    take(m, &mut batch, &mut waiters);
                    continue;
                }
                match self.next(Some(due.as_mut())).await {
                    Next::Message(m) => take(m, &mut batch, &mut waiters),
                    Next::Due | Next::Drained => break,
                }
            }
            if let Err(e) = self.write(&batch, &mut waiters).await {
                let (records, _) = lost.get_or_insert((0, e));
                *records += batch.len();
            }
            batch.clear();
        }
        match lost {
            None => Ok(()),
            Some((records, e)) => Err(LedgerError::Lost {
                records,
                source: Box::new(e),
            }),
        }
    }

    async fn next(&mut self, mut due: Option<Pin<&mut Sleep>>) -> Next {
        loop {
            tokio::select! {
                biased;
                () = stop_requested(&mut self.stop) => self.begin_close(),
                m = self.rx.recv() => return m.map_or(Next::Drained, Next::Message),
                () = sleep_until(due.as_mut()) => return Next::Due,
            }
        }
    }

    fn begin_close(&mut self) {
        self.closing = true;
        // Refuses new messages but keeps the queued ones for `recv` to drain.
        self.rx.close();
    }

    /// Write one batch, retrying with backoff and keeping it until it is stored. Only
    /// once shutdown has begun may a batch be given up (and counted as dropped).
    async fn write(
        &mut self,
        batch: &[UsageRecord],
        waiters: &mut Vec<Waiter>,
    ) -> Result<(), LedgerError> {
        let mut attempt: u32 = 0;
        let mut delays = backon::ExponentialBuilder::new()
            .with_min_delay(FIRST_BACKOFF)
            .with_max_delay(MAX_BACKOFF)
            .without_max_times()
            .build();
        loop {
            attempt += 1;
            let result = if batch.is_empty() {
                Ok(())
            } else {
                self.sink.write_batch(batch).await
            };
            let e = match result {
                Ok(()) => {
                    self.counters
                        .depth
                        .fetch_sub(batch.len(), Ordering::Relaxed);
                    self.counters.failing.store(false, Ordering::Release);
                    if attempt > 1 {
                        tracing::info!(attempts = attempt, "ledger writes recovered");
                    }
                    answer(waiters, &Ok(()));
                    return Ok(());
                }
                Err(e) => e,
            };
            if attempt == 1 {
                tracing::error!(error = %e, records = batch.len(), "ledger write failed; keeping the batch and retrying");
                self.counters.failing.store(true, Ordering::Release);
                answer(waiters, &Err(e.clone()));
            }
            if self.closing && attempt >= SHUTDOWN_ATTEMPTS {
                self.counters
                    .depth
                    .fetch_sub(batch.len(), Ordering::Relaxed);
                let lost = u64::try_from(batch.len()).unwrap_or(u64::MAX);
                self.counters.dropped.fetch_add(lost, Ordering::Relaxed);
                let request_ids = batch
                    .iter()
                    .map(|r| r.request_id.as_str())
                    .collect::<Vec<_>>()
                    .join(",");
                tracing::error!(error = %e, records = batch.len(), %request_ids, "ledger batch lost at shutdown");
                return Err(e);
            }
            let delay = delays.next().unwrap_or(MAX_BACKOFF);
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = stop_requested(&mut self.stop) => self.begin_close(),
            }
        }
    }
}

fn take(message: Message, batch: &mut Vec<UsageRecord>, waiters: &mut Vec<Waiter>) {
    match message {
        Message::Record(r) => batch.push(*r),
        Message::Flush(w) => waiters.push(w),
    }
}

fn answer(waiters: &mut Vec<Waiter>, result: &Result<(), LedgerError>) {
    for w in waiters.drain(..) {
        // The caller may have given up waiting; nothing to tell it then.
        let _ = w.send(result.clone());
    }
}

/// Resolves once, when shutdown is asked for; pending forever after that or when the
/// `LedgerWriter` was dropped without asking.
async fn stop_requested(stop: &mut Option<oneshot::Receiver<()>>) {
    if let Some(rx) = stop.as_mut() {
        let asked = rx.await.is_ok();
        *stop = None;
        if asked {
            return;
        }
    }
    std::future::pending().await
}

async fn sleep_until(due: Option<&mut Pin<&mut Sleep>>) {
    match due {
        Some(sleep) => sleep.await,
        None => std::future::pending().await,
    }
}
