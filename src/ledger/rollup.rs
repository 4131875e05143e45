//! Rollups: what a ledger record adds to the hourly and daily sums that usage,
//! savings and budget queries read instead of the records. This file owns the one
//! function that turns a record into its contribution ([`contribution`]) and the one
//! that merges contributions ([`Sums::merge`]); the writer, the migration backfill and
//! `tollgate ledger rebuild-rollups` all go through them, and so does the query for
//! the ragged edges of a window, so the semantics live in one place.
//!
//! Two tiers share the sums: `usage_hourly` keyed by hour × key × team × logical
//! model × provider × upstream model × jurisdiction × route × outcome, and
//! `usage_daily` keyed by UTC day × key × team × logical model × provider ×
//! jurisdiction (the dimensions the APIs group by), which is what keeps a month-long
//! query to a few thousand rows. Column names (`columns`) and query planning (`plan`,
//! `query`) are submodules; nothing here does I/O. Each backend stores its rollups in a
//! submodule of its own (`sqlite::rollups`, `postgres::rollups`), so this module
//! depends on no backend and the ledger's module graph has no cycle.

pub mod columns;
pub mod histogram;
pub mod money;
pub mod plan;
pub mod query;

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use super::{Outcome, PricingStatus, UsageRecord, UsageSource};
pub use histogram::{BucketPercentiles, Histogram, BOUNDS_MS};

/// Milliseconds per hour and per UTC day.
pub const HOUR_MS: i64 = 3_600_000;
pub const DAY_MS: i64 = 86_400_000;

/// The largest count a rollup holds: counts are `BIGINT`s, so sums saturate at
/// `i64::MAX` (in Rust and in both databases alike) instead of wrapping or failing.
pub const COUNT_MAX: u64 = i64::MAX as u64;

/// The schema version a migration list reaches with `step`: where rollups begin, found by
/// position so that steps appended later (by other features) never shift it.
pub fn introduced_by(migrations: &[&str], step: &str) -> i64 {
    migrations
        .iter()
        .position(|m| *m == step)
        .map_or(i64::MAX, |i| {
            i64::try_from(i).unwrap_or(i64::MAX).saturating_add(1)
        })
}

/// `a + b`, saturating at [`COUNT_MAX`].
pub fn saturating(a: u64, b: u64) -> u64 {
    a.saturating_add(b).min(COUNT_MAX)
}

/// The start of the period of length `period_ms` holding `ms` (floor, also before 1970).
pub fn floor_to(ms: i64, period_ms: i64) -> i64 {
    ms.div_euclid(period_ms).saturating_mul(period_ms)
}

/// Where a record's numbers are added: a period start and the dimensions. `None`
/// fields of the record are stored as `""` (so the unique key works) and read back as
/// `None`; a daily key leaves `upstream_model`, `route` and `outcome` empty.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct RollupKey {
    /// Start of the hour (or day) in Unix milliseconds, UTC.
    pub start_ms: i64,
    pub key_name: String,
    pub team: String,
    pub logical_model: String,
    pub provider: String,
    pub upstream_model: String,
    pub jurisdiction: String,
    pub route: String,
    pub outcome: String,
}

impl RollupKey {
    /// The daily key this hourly key rolls up into.
    pub fn daily(&self) -> Self {
        Self {
            start_ms: floor_to(self.start_ms, DAY_MS),
            upstream_model: String::new(),
            route: String::new(),
            outcome: String::new(),
            ..self.clone()
        }
    }
}

/// What records add up to. Counts saturate at [`COUNT_MAX`]; money is exact (see
/// `money`). The savings and drift fields follow `pricing::savings`' rules.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sums {
    pub requests: u64,
    /// Answered with an error status, or whose stream broke upstream.
    pub errors: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Usage counted by tollgate (no provider report, or an implausible one).
    pub estimated_requests: u64,
    /// Billable usage without a catalog price.
    pub unpriced_requests: u64,
    /// Records of a logical model with billable usage: the savings report's requests.
    pub billable_requests: u64,
    /// ... of which a cost was recorded (the savings report's priced requests).
    pub billable_costed_requests: u64,
    /// ... of which both cheaper alternatives were known too.
    pub compared_requests: u64,
    /// Provider-reported usage that tollgate also counted (drift).
    pub drift_requests: u64,
    pub drift_reported_tokens: u64,
    pub drift_counted_tokens: u64,
    /// ... of which the provider billed reasoning tollgate never saw.
    pub hidden_reasoning_requests: u64,
    /// Every recorded cost.
    pub cost_usd: Decimal,
    /// Costs of the billable requests.
    pub billable_cost_usd: Decimal,
    /// Costs of the compared requests.
    pub compared_cost_usd: Decimal,
    /// What the compared requests would have cost on the cheapest allowed offer.
    pub cheapest_allowed_usd: Decimal,
    /// ... and on the cheapest offer anywhere.
    pub cheapest_any_usd: Decimal,
    pub latency: Histogram,
    /// Over the requests that sent a first byte.
    pub ttfb: Histogram,
}

impl Sums {
    /// Add `other` into `self`.
    pub fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts_mut().into_iter().zip(other.counts()) {
            *a = saturating(*a, b);
        }
        for (a, b) in self.money_mut().into_iter().zip(other.money()) {
            *a = a.checked_add(b).unwrap_or(Decimal::MAX);
        }
        self.latency.merge(&other.latency);
        self.ttfb.merge(&other.ttfb);
    }

    /// The counters, in `columns::COUNTS` order.
    pub fn counts(&self) -> [u64; 16] {
        [
            self.requests,
            self.errors,
            self.input_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.output_tokens,
            self.reasoning_tokens,
            self.estimated_requests,
            self.unpriced_requests,
            self.billable_requests,
            self.billable_costed_requests,
            self.compared_requests,
            self.drift_requests,
            self.drift_reported_tokens,
            self.drift_counted_tokens,
            self.hidden_reasoning_requests,
        ]
    }

    /// The counters, in `columns::COUNTS` order, to write.
    pub fn counts_mut(&mut self) -> [&mut u64; 16] {
        [
            &mut self.requests,
            &mut self.errors,
            &mut self.input_tokens,
            &mut self.cached_input_tokens,
            &mut self.cache_write_tokens,
            &mut self.output_tokens,
            &mut self.reasoning_tokens,
            &mut self.estimated_requests,
            &mut self.unpriced_requests,
            &mut self.billable_requests,
            &mut self.billable_costed_requests,
            &mut self.compared_requests,
            &mut self.drift_requests,
            &mut self.drift_reported_tokens,
            &mut self.drift_counted_tokens,
            &mut self.hidden_reasoning_requests,
        ]
    }

    /// The amounts, in `columns::MONEY` order.
    pub fn money(&self) -> [Decimal; 5] {
        [
            self.cost_usd,
            self.billable_cost_usd,
            self.compared_cost_usd,
            self.cheapest_allowed_usd,
            self.cheapest_any_usd,
        ]
    }

    /// The amounts, in `columns::MONEY` order, to write.
    pub fn money_mut(&mut self) -> [&mut Decimal; 5] {
        [
            &mut self.cost_usd,
            &mut self.billable_cost_usd,
            &mut self.compared_cost_usd,
            &mut self.cheapest_allowed_usd,
            &mut self.cheapest_any_usd,
        ]
    }
}

/// The hourly key of `r` and what it adds there.
pub fn contribution(r: &UsageRecord) -> (RollupKey, Sums) {
    let text = |v: &Option<String>| v.clone().unwrap_or_default();
    let key = RollupKey {
        start_ms: floor_to(r.created_at.timestamp_millis(), HOUR_MS),
        key_name: r.key_name.clone(),
        team: text(&r.team),
        logical_model: text(&r.logical_model),
        provider: text(&r.provider),
        upstream_model: text(&r.upstream_model),
        jurisdiction: text(&r.jurisdiction),
        route: r.route.clone(),
        outcome: r.outcome.as_str().to_owned(),
    };
    (key, sums_of(r))
}

fn sums_of(r: &UsageRecord) -> Sums {
    let count = |v: Option<u64>| v.unwrap_or(0).min(COUNT_MAX);
    let cost = r.cost_usd.map(money::quantize);
    let mut s = Sums {
        requests: 1,
        errors: u64::from(r.status >= 400 || r.outcome == Outcome::UpstreamError),
        input_tokens: count(r.input_tokens),
        cached_input_tokens: count(r.cached_input_tokens),
        cache_write_tokens: count(r.cache_write_tokens),
        output_tokens: count(r.output_tokens),
        reasoning_tokens: count(r.reasoning_tokens),
        // Implausible reports were billed from tollgate's own count: estimates too.
        estimated_requests: u64::from(matches!(
            r.usage_source,
            UsageSource::Estimated | UsageSource::Implausible
        )),
        unpriced_requests: u64::from(r.pricing == PricingStatus::Unpriced),
        cost_usd: cost.unwrap_or_default(),
        latency: Histogram::of(r.latency_ms),
        ttfb: r.ttfb_ms.map(Histogram::of).unwrap_or_default(),
        ..Sums::default()
    };
    // The savings report counts only a model's requests with billable usage.
    if r.logical_model.is_none() || r.pricing == PricingStatus::NotApplicable {
        return s;
    }
    s.billable_requests = 1;
    if let Some(cost) = cost {
        s.billable_costed_requests = 1;
        s.billable_cost_usd = cost;
        if let (Some(allowed), Some(any)) = (
            r.audit.cheapest_allowed_cost_usd,
            r.audit.cheapest_any_cost_usd,
        ) {
            s.compared_requests = 1;
            s.compared_cost_usd = cost;
            s.cheapest_allowed_usd = money::quantize(allowed);
            s.cheapest_any_usd = money::quantize(any);
        }
    }
    if let (UsageSource::Reported, Some(_), Some((reported, counted))) =
        (r.usage_source, &r.provider, r.verifiable_pair())
    {
        s.drift_requests = 1;
        s.drift_reported_tokens = reported.min(COUNT_MAX);
        s.drift_counted_tokens = counted.min(COUNT_MAX);
        s.hidden_reasoning_requests = u64::from(r.audit.output_verifiable == Some(false));
    }
    s
}

/// Contributions folded by key: what one write (a batch, a backfill step) adds to
/// each tier. Sorted maps, so every writer upserts rows in the same order and two
/// replicas' transactions cannot deadlock on them.
#[derive(Debug, Default)]
pub struct RollupBatch {
    pub hourly: BTreeMap<RollupKey, Sums>,
    pub daily: BTreeMap<RollupKey, Sums>,
}

impl RollupBatch {
    /// Add a stored record.
    pub fn add(&mut self, r: &UsageRecord) {
        let (key, sums) = contribution(r);
        self.daily.entry(key.daily()).or_default().merge(&sums);
        self.hourly.entry(key).or_default().merge(&sums);
    }

    /// Rows held (to flush a long fold before it grows).
    pub fn len(&self) -> usize {
        self.hourly.len() + self.daily.len()
    }

    /// Whether nothing was added.
    pub fn is_empty(&self) -> bool {
        self.hourly.is_empty()
    }
}

/// What a rebuild did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RebuildReport {
    /// Records rolled up.
    pub records: u64,
    /// Rows now in `usage_hourly` and `usage_daily`.
    pub hourly_rows: u64,
    pub daily_rows: u64,
}

#[cfg(test)]
mod tests;
