//! Routing: orders the offers policy allowed, by the model's strategy, and keeps
//! each offer's health (circuit breaker, `retry-after` cool-down, moving averages of
//! time to first byte and of output tokens per request).
//!
//! It never sees an offer policy removed, so no strategy or failover can widen a
//! policy. Health is kept in atomics: no lock is taken on the request path. It does
//! no I/O; the attempt loop in `server::chat` asks it what to try and tells it what
//! happened.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use backon::BackoffBuilder as _;
use chrono::{DateTime, Utc};
use rand::Rng;
use rust_decimal::Decimal;

use crate::catalog::{self, PriceBook, TokenCounts};
use crate::config::{ModelSettings, RoutingSettings, RoutingStrategy, Settings};

/// Output tokens assumed for an offer with no history when the request sets no limit.
const DEFAULT_EXPECTED_OUTPUT: u64 = 1024;
/// Weight of the newest sample in the moving averages.
const EWMA_NEW_SAMPLE_PERCENT: u64 = 20;
/// Breaker state value meaning "closed".
const CLOSED: u64 = u64::MAX;

/// One offer's health, updated lock-free.
#[derive(Debug)]
struct OfferHealth {
    consecutive_failures: AtomicU32,
    /// Milliseconds since `Router::epoch` when the breaker opened; `CLOSED` otherwise.
    opened_at_ms: AtomicU64,
    /// A half-open breaker lets one probe through at a time.
    probing: AtomicBool,
    /// No attempt before this instant (ms since epoch), from an upstream `retry-after`.
    not_before_ms: AtomicU64,
    /// Moving average of time to first byte, microseconds; 0 = no sample yet.
    ttfb_us: AtomicU64,
    /// Moving average of output tokens (reasoning included) per request; 0 = none yet.
    output_tokens: AtomicU64,
}

impl OfferHealth {
    fn new() -> Self {
        Self {
            consecutive_failures: AtomicU32::new(0),
            opened_at_ms: AtomicU64::new(CLOSED),
            probing: AtomicBool::new(false),
            not_before_ms: AtomicU64::new(0),
            ttfb_us: AtomicU64::new(0),
            output_tokens: AtomicU64::new(0),
        }
    }
}

/// What the `cheapest` strategy needs to know about this request.
pub struct CostInputs<'a> {
    /// The prompt's estimated tokens (`estimate::prompt_estimate`), the same for every
    /// offer: computed once per request, never by counting.
    pub prompt_tokens: u64,
    /// `max_completion_tokens` or `max_tokens`, when the request set one.
    pub max_output: Option<u64>,
    pub prices: &'a PriceBook,
    pub at: DateTime<Utc>,
    /// Whether costs are needed even when the strategy does not sort by them (budgets).
    pub always: bool,
}

/// An offer ready to try, as ordered by the strategy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    pub offer: usize,
    /// The expected cost used by `cheapest` (and budgets), when priced.
    pub expected_cost: Option<Decimal>,
}

/// Offer health for every model, and the routing settings.
pub struct Router {
    health: Vec<Vec<OfferHealth>>,
    settings: RoutingSettings,
    epoch: tokio::time::Instant,
}

impl Router {
    /// Fresh health for every offer of every model.
    pub fn new(settings: &Settings) -> Self {
        let health = settings
            .models
            .iter()
            .map(|m| m.offers.iter().map(|_| OfferHealth::new()).collect())
            .collect();
        Self {
            health,
            settings: settings.routing,
            epoch: tokio::time::Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX - 1)
    }

    fn health(&self, model: usize, offer: usize) -> Option<&OfferHealth> {
        self.health.get(model).and_then(|m| m.get(offer))
    }

    /// Order the allowed offers of model `model_index` by its strategy.
    pub fn order(
        &self,
        model_index: usize,
        model: &ModelSettings,
        allowed: &[usize],
        cost: &CostInputs<'_>,
    ) -> Vec<Candidate> {
        let needs_cost = cost.always || model.strategy == RoutingStrategy::Cheapest;
        let mut candidates: Vec<Candidate> = allowed
            .iter()
            .map(|&offer| Candidate {
                offer,
                expected_cost: if needs_cost {
                    self.expected_cost(model_index, model, offer, cost)
                } else {
                    None
                },
            })
            .collect();
        match model.strategy {
            RoutingStrategy::Priority => {}
            RoutingStrategy::Cheapest => {
                // Unpriced offers last: an unknown cost is never "cheapest".
                candidates.sort_by_key(|c| (c.expected_cost.is_none(), c.expected_cost));
            }
            RoutingStrategy::Latency => {
                candidates.sort_by_key(|c| {
                    self.health(model_index, c.offer)
                        .map_or(0, |h| h.ttfb_us.load(Ordering::Relaxed))
                });
            }
            RoutingStrategy::Weighted => {
                let weight =
                    |c: &Candidate| model.offers.get(c.offer).map_or(1, |o| u64::from(o.weight));
                candidates = weighted_shuffle(candidates, weight, &mut rand::rng());
            }
        }
        candidates
    }

    /// This request's expected cost on `offer`: the prompt's estimate (tokenizers differ
    /// by a few percent between vocabularies, far less than prices do, so one figure for
    /// every offer orders them by price); output from the offer's observed average (a model
    /// that thinks long is not cheap because its list price is), bounded by the request's
    /// limit.
    fn expected_cost(
        &self,
        model_index: usize,
        model: &ModelSettings,
        offer: usize,
        inputs: &CostInputs<'_>,
    ) -> Option<Decimal> {
        let o = model.offers.get(offer)?;
        let row = inputs.prices.lookup(o.price.as_deref()?, inputs.at)?;
        let input = inputs.prompt_tokens;
        let observed = self
            .health(model_index, offer)
            .map_or(0, |h| h.output_tokens.load(Ordering::Relaxed));
        let output = match (observed, inputs.max_output) {
            (0, Some(max)) => max,
            (0, None) => DEFAULT_EXPECTED_OUTPUT,
            (seen, Some(max)) => seen.min(max),
            (seen, None) => seen,
        };
        let tokens = TokenCounts {
            input,
            output,
            ..TokenCounts::default()
        };
        Some(catalog::cost(&tokens, row))
    }

    /// Whether `offer` may be tried now: its breaker is closed, or open past its
    /// cool-down with no other probe in flight (then this call takes the probe), and
    /// no `retry-after` is pending.
    pub fn try_acquire(&self, model: usize, offer: usize) -> bool {
        let Some(h) = self.health(model, offer) else {
            return false;
        };
        let now = self.now_ms();
        if h.not_before_ms.load(Ordering::Relaxed) > now {
            return false;
        }
        let opened = h.opened_at_ms.load(Ordering::Acquire);
        if opened == CLOSED {
            return true;
        }
        let cooldown =
            u64::try_from(self.settings.breaker_cooldown.as_millis()).unwrap_or(u64::MAX);
        if now.saturating_sub(opened) < cooldown {
            return false;
        }
        h.probing
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Give back a probe taken by [`Router::try_acquire`] when the attempt is not made
    /// after all (the offer's quota refused it).
    pub fn release_probe(&self, model: usize, offer: usize) {
        if let Some(h) = self.health(model, offer) {
            h.probing.store(false, Ordering::Release);
        }
    }

    /// The attempt succeeded: close the breaker and learn its latency and output size.
    pub fn record_success(
        &self,
        model: usize,
        offer: usize,
        ttfb: Duration,
        output_tokens: Option<u64>,
    ) {
        let Some(h) = self.health(model, offer) else {
            return;
        };
        h.consecutive_failures.store(0, Ordering::Relaxed);
        h.opened_at_ms.store(CLOSED, Ordering::Release);
        h.probing.store(false, Ordering::Release);
        ewma(
            &h.ttfb_us,
            u64::try_from(ttfb.as_micros()).unwrap_or(u64::MAX).max(1),
        );
        if let Some(n) = output_tokens.filter(|n| *n > 0) {
            ewma(&h.output_tokens, n);
        }
    }

    /// Learn output size from a stream that finished after the attempt was committed.
    pub fn record_output(&self, model: usize, offer: usize, output_tokens: u64) {
        if let Some(h) = self.health(model, offer).filter(|_| output_tokens > 0) {
            ewma(&h.output_tokens, output_tokens);
        }
    }

    /// The attempt failed in a way that says the offer is unhealthy (connect error,
    /// timeout, 5xx): count it, open the breaker at the threshold (or re-open it after
    /// a failed probe).
    pub fn record_failure(&self, model: usize, offer: usize) {
        let Some(h) = self.health(model, offer) else {
            return;
        };
        let failures = h
            .consecutive_failures
            .fetch_add(1, Ordering::AcqRel)
            .saturating_add(1);
        let was_probing = h.probing.swap(false, Ordering::AcqRel);
        if was_probing || failures >= self.settings.breaker_failures {
            h.opened_at_ms.store(self.now_ms(), Ordering::Release);
        }
    }

    /// The upstream asked to wait (`retry-after`): skip the offer until then.
    pub fn hold_off(&self, model: usize, offer: usize, wait: Duration) {
        if let Some(h) = self.health(model, offer) {
            let until = self
                .now_ms()
                .saturating_add(u64::try_from(wait.as_millis()).unwrap_or(u64::MAX));
            h.not_before_ms.fetch_max(until, Ordering::Relaxed);
            h.probing.store(false, Ordering::Release);
        }
    }

    /// The delays before each retry of one request, first retry first: `retry_backoff`,
    /// doubling up to `max_backoff`, without end (the attempt loop decides when to stop).
    pub fn backoff(&self) -> impl Iterator<Item = Duration> {
        backon::ExponentialBuilder::new()
            .with_min_delay(self.settings.retry_backoff)
            .with_max_delay(self.settings.max_backoff)
            .without_max_times()
            .build()
    }

    /// Milliseconds of `retry-after` left for `offer` (for a 429 when nothing else is left).
    pub fn held_off_for(&self, model: usize, offer: usize) -> Option<Duration> {
        let h = self.health(model, offer)?;
        let left = h
            .not_before_ms
            .load(Ordering::Relaxed)
            .saturating_sub(self.now_ms());
        (left > 0).then(|| Duration::from_millis(left))
    }
}

fn ewma(cell: &AtomicU64, sample: u64) {
    // A lost update under a race only delays the average by one sample; no lock needed.
    let old = cell.load(Ordering::Relaxed);
    let new = if old == 0 {
        sample
    } else {
        (old.saturating_mul(100 - EWMA_NEW_SAMPLE_PERCENT)
            + sample.saturating_mul(EWMA_NEW_SAMPLE_PERCENT))
            / 100
    };
    cell.store(new.max(1), Ordering::Relaxed);
}

/// Order by repeated weighted draws without replacement.
fn weighted_shuffle<T>(
    mut items: Vec<T>,
    weight: impl Fn(&T) -> u64,
    rng: &mut impl Rng,
) -> Vec<T> {
    let mut out = Vec::with_capacity(items.len());
    while !items.is_empty() {
        let total: u64 = items.iter().map(&weight).sum();
        let mut pick = rng.random_range(0..total.max(1));
        let index = items
            .iter()
            .position(|i| {
                let w = weight(i);
                if pick < w {
                    true
                } else {
                    pick -= w;
                    false
                }
            })
            .unwrap_or(0);
        out.push(items.swap_remove(index));
    }
    out
}

#[cfg(test)]
mod tests;
