//! One GCRA limiter (governor's algorithm and arithmetic) over a state store that
//! can also *peek* and take *debt*. This file owns the clock the limiters read and
//! the three operations `limits` needs; it knows nothing of keys, offers or money.
//!
//! Why a custom state store: governor's own `check`/`check_n` consume on success, so
//! a decision over several limiters (an offer's requests and tokens per minute)
//! cannot be taken without consuming from one when another refuses, and a charge
//! after the fact (real tokens) is refused instead of recorded when the bucket is
//! short. Keying the store by [`Mode`] lets the same governor code answer without
//! writing (`Peek`), and the shared cell lets a charge push the theoretical arrival
//! time past the burst, so the over-use is paid back by later requests waiting.

use std::num::{NonZeroU32, NonZeroU64};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::StateStore;
use governor::{Quota, RateLimiter};

/// The limiters' monotonic clock: nanoseconds since the limiter set was built, read
/// from tokio's clock so `#[tokio::test(start_paused = true)]` controls it.
#[derive(Debug, Clone, Copy)]
pub(super) struct TokioClock {
    origin: tokio::time::Instant,
}

impl TokioClock {
    pub(super) fn new() -> Self {
        Self {
            origin: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Nanos;

    fn now(&self) -> Nanos {
        Nanos::from(self.origin.elapsed())
    }
}

/// Whether a check may write its new state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Mode {
    Peek,
    Take,
}

/// The theoretical arrival time in nanoseconds since the limiter's start; 0 means
/// "never used", as in governor's `InMemoryState`. Shared so [`Gcra::charge`] can
/// add debt to the same cell governor updates.
#[derive(Debug, Clone, Default)]
struct Cell(Arc<AtomicU64>);

impl StateStore for Cell {
    type Key = Mode;

    fn measure_and_replace<T, F, E>(&self, mode: &Mode, f: F) -> Result<T, E>
    where
        F: Fn(Option<Nanos>) -> Result<(T, Nanos), E>,
    {
        let mut prev = self.0.load(Ordering::Acquire);
        loop {
            let (out, next) = f(NonZeroU64::new(prev).map(|n| Nanos::from(n.get())))?;
            if *mode == Mode::Peek {
                return Ok(out);
            }
            match self.0.compare_exchange_weak(
                prev,
                next.as_u64(),
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Ok(out),
                Err(current) => prev = current,
            }
        }
    }
}

/// Why a limiter refused: it will conform after `wait`, or never (`None`: more
/// cells than the burst allows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Wait(pub(super) Option<Duration>);

/// A lock-free GCRA limiter of `burst` cells refilled evenly over a minute.
#[derive(Debug)]
pub(super) struct Gcra {
    limiter: RateLimiter<Mode, Cell, TokioClock, NoOpMiddleware<Nanos>>,
    cell: Cell,
    /// The clock's reading when the limiter was built: the cell's times count from it.
    start: Nanos,
    /// Nanoseconds per cell, exactly as governor computes it.
    per_cell: u64,
    burst: u32,
}

impl Gcra {
    /// `per_minute` cells a minute, all of them available at once.
    pub(super) fn per_minute(per_minute: NonZeroU32, clock: TokioClock) -> Self {
        let quota = Quota::per_minute(per_minute);
        let cell = Cell::default();
        let per_cell = Nanos::from(quota.replenish_interval()).as_u64().max(1);
        // Read just before governor reads its own start: at most a few nanoseconds
        // earlier, which `carry_from` may undercount by; never more.
        let start = clock.now();
        Self {
            limiter: RateLimiter::new(quota, cell.clone(), clock),
            cell,
            start,
            per_cell,
            burst: per_minute.get(),
        }
    }

    /// The configured cells a minute (also the burst).
    pub(super) fn limit(&self) -> u32 {
        self.burst
    }

    /// Could `n` cells go through now? Never writes.
    pub(super) fn peek(&self, n: u32) -> Result<(), Wait> {
        self.check(Mode::Peek, n)
    }

    /// Let `n` cells through if they conform now; a refusal consumes nothing.
    pub(super) fn take(&self, n: u32) -> Result<(), Wait> {
        self.check(Mode::Take, n)
    }

    /// Record `n` cells already used, conforming or not: what exceeds the bucket
    /// becomes debt that delays later cells by `per_cell` each.
    pub(super) fn charge(&self, n: u64) {
        let first = u32::try_from(n).unwrap_or(u32::MAX).min(self.burst);
        let rest = match self.take(first) {
            Ok(()) => n - u64::from(first),
            // Refused with `first <= burst` means the arrival time is already past
            // now, so adding to it is exactly GCRA's `max(tat, now) + n * per_cell`.
            Err(_) => n,
        };
        let debt = rest.saturating_mul(self.per_cell);
        if debt > 0 {
            // Both closures return Some, so fetch_update cannot fail.
            let _ = self
                .cell
                .0
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |tat| {
                    Some(tat.saturating_add(debt))
                });
        }
    }

    /// How far the arrival time runs ahead of now, in nanoseconds: the cells in use
    /// (and any debt) times `per_cell`; 0 when the bucket is full.
    fn outstanding(&self) -> u64 {
        let now = self
            .limiter
            .clock()
            .now()
            .as_u64()
            .saturating_sub(self.start.as_u64());
        self.cell.0.load(Ordering::Acquire).saturating_sub(now)
    }

    /// Take over `old`'s state (a limiter of the previous configuration), so a reload
    /// neither refills a bucket nor forgets over-use. Under a different limit, the
    /// cells in use count against the new limit, up to its whole burst (requests made
    /// within the old limit do not become debt when the limit goes down), and debt
    /// beyond the old burst carries as that many cells; both come back at the new
    /// rate. Call on a fresh limiter, before it is used.
    pub(super) fn carry_from(&self, old: &Gcra) {
        let scale = |ns: u128| ns * u128::from(self.per_cell) / u128::from(old.per_cell);
        let old_out = u128::from(old.outstanding());
        let old_bucket = u128::from(old.burst) * u128::from(old.per_cell);
        let new_bucket = u128::from(self.burst) * u128::from(self.per_cell);
        let within = old_out.min(old_bucket);
        let carried = scale(within).min(new_bucket) + scale(old_out - within);
        let outstanding = u64::try_from(carried).unwrap_or(u64::MAX);
        if outstanding == 0 {
            return;
        }
        let now = self
            .limiter
            .clock()
            .now()
            .as_u64()
            .saturating_sub(self.start.as_u64());
        self.cell
            .0
            .store(now.saturating_add(outstanding).max(1), Ordering::Release);
    }

    fn check(&self, mode: Mode, n: u32) -> Result<(), Wait> {
        let Some(n) = NonZeroU32::new(n) else {
            return Ok(());
        };
        match self.limiter.check_key_n(&mode, n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(not_until)) => Err(Wait(Some(
                not_until.wait_time_from(self.limiter.clock().now()),
            ))),
            Err(_) => Err(Wait(None)),
        }
    }
}
