//! Records held back from the queue while work off the request path finishes them (the
//! sampled token-count audit), without giving up the ledger's guarantees: a held record is
//! always enqueued (when released, or when dropped), `Ledger::flush` (and so the
//! read-your-own-record barrier) waits for held records first, and shutdown asks holders
//! to finish at once, then waits for them.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;

use super::{Ledger, UsageRecord};

/// How many records are held, and whether the ledger is closing.
#[derive(Debug, Default)]
pub(super) struct Held {
    count: AtomicUsize,
    closing: AtomicBool,
    released: Notify,
}

impl Held {
    /// Wait until no record is held.
    pub(super) async fn settled(&self) {
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if self.count.load(Ordering::Acquire) == 0 {
                return;
            }
            released.await;
        }
    }

    /// Ask holders to finish without their extra work, then wait for them.
    pub(super) async fn close(&self) {
        self.closing.store(true, Ordering::Release);
        self.settled().await;
    }
}

/// A finished request's record on its way to the ledger queue, held by off-path work that
/// completes it. Enqueued when dropped, whatever happened to that work.
pub struct Deferred {
    ledger: Ledger,
    record: Option<UsageRecord>,
}

impl Deferred {
    pub(super) fn new(ledger: Ledger, record: UsageRecord) -> Self {
        ledger.held.count.fetch_add(1, Ordering::AcqRel);
        Self {
            ledger,
            record: Some(record),
        }
    }

    /// The record, to complete before it is enqueued.
    pub fn record_mut(&mut self) -> Option<&mut UsageRecord> {
        self.record.as_mut()
    }

    /// Whether the ledger is shutting down: skip any extra work and let the record go.
    pub fn is_closing(&self) -> bool {
        self.ledger.held.closing.load(Ordering::Acquire)
    }

    /// Enqueue the record now.
    pub fn release(self) {}
}

impl Drop for Deferred {
    fn drop(&mut self) {
        if let Some(record) = self.record.take() {
            self.ledger.record(record);
        }
        if self.ledger.held.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ledger.held.released.notify_waiters();
        }
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deferred").finish_non_exhaustive()
    }
}

/// The holder count shared by every handle of one ledger.
pub(super) type SharedHeld = Arc<Held>;
